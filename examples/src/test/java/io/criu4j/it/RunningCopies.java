package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.testing.Payload;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Assertions on where a payload runs: "exactly one running copy, at the expected pid, still
 * counting". A payload with children is one tree; its copy is identified by the root of the
 * tree (a payload process whose parent is not a payload process).
 */
final class RunningCopies {
  private static final Duration SETTLE = Duration.ofSeconds(10);
  private static final Duration PROGRESS = Duration.ofSeconds(10);

  private RunningCopies() {}

  /** Roots of the running copies of {@code payload}'s tree. */
  static List<Integer> roots(Payload payload) {
    List<Integer> all = payload.findCopies();
    return all.stream().filter(p -> !all.contains(parentOf(p))).sorted()
        .collect(Collectors.toList());
  }

  /**
   * Asserts that the payload runs as exactly one tree of {@code processes} processes rooted at
   * {@code pid}, and that it keeps counting there. Waits up to a few seconds for the other copy
   * (the source after a commit) to disappear.
   */
  static void assertOnlyCopyAt(Payload payload, int pid, int processes) {
    long deadline = System.nanoTime() + SETTLE.toNanos();
    while (!(roots(payload).equals(List.of(pid))
        && payload.findCopies().size() == processes) && System.nanoTime() < deadline) {
      sleep(20);
    }
    assertThat(roots(payload)).as("roots of the running copies of the payload (%s)",
        payload.describeState()).containsExactly(pid);
    assertThat(payload.findCopies()).as("processes of the payload's tree").hasSize(processes);
    long now = payload.counter();
    long later = payload.awaitCounterAbove(now + 10, PROGRESS);
    assertThat(later).isGreaterThan(now);
    assertThat(Payload.isRunning(pid)).as("pid %d still runs after counting on", pid).isTrue();
    assertThat(roots(payload)).as("roots after counting on").containsExactly(pid);
  }

  static int parentOf(int pid) {
    try {
      String stat = Files.readString(Paths.get("/proc", String.valueOf(pid), "stat"));
      return Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1]);
    } catch (IOException | RuntimeException gone) {
      return -1;
    }
  }

  /** The thread count of process {@code pid}. */
  static int threadsOf(int pid) throws IOException {
    try (var tasks = Files.list(Paths.get("/proc", String.valueOf(pid), "task"))) {
      return (int) tasks.count();
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}

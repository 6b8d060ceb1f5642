package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.Pipe;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.testing.FakeCriu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test that leaves a descriptor open in this JVM or a child process behind (running or
 * zombie). Descriptors are compared as "number -&gt; target" before and after the test, polling
 * for a few seconds because some are closed asynchronously (the thread draining CRIU's output
 * closes its pipe at end of stream; the fake closes its control connection when its process
 * ends). JVM noise is ignored: jars and JDK files opened by class loading, the random devices.
 * Leaked children are killed and reaped after being reported, so one failure does not cascade.
 *
 * <p>Register with {@code @ExtendWith(NoLeaks.class)}; the test class's own {@code @BeforeEach}
 * and {@code @AfterEach} run inside the checked window, so a fake opened and closed there counts.
 */
public final class NoLeaks implements BeforeAllCallback, BeforeEachCallback, AfterEachCallback {
  private static final long SETTLE_MILLIS = 5_000;
  private static volatile boolean warmedUp;

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    warmUp();
  }

  /** Opens once what the JVM keeps open forever after first use, before anything is measured. */
  private static synchronized void warmUp() throws Exception {
    if (warmedUp) {
      return;
    }
    Native.libc().getpid();
    Pipe.open().close();
    UnixSocket.pair(Native.SOCK_SEQPACKET).close();
    Path tmp = Files.createTempDirectory("criu4j-warmup-");
    Files.delete(tmp);
    FakeCriu.start().close();
    warmedUp = true;
  }

  @Override
  public void beforeEach(ExtensionContext context) {
    store(context).put("fds", openFds());
    store(context).put("children", children().keySet());
  }

  @Override
  @SuppressWarnings("unchecked")
  public void afterEach(ExtensionContext context) {
    Map<Integer, String> fdsBefore = (Map<Integer, String>) store(context).get("fds");
    Set<Long> childrenBefore = (Set<Long>) store(context).get("children");
    long deadline = System.nanoTime() + SETTLE_MILLIS * 1_000_000;
    Map<Integer, String> leakedFds;
    Map<Long, String> leakedChildren;
    while (true) {
      leakedFds = new TreeMap<>(openFds());
      leakedFds.entrySet().removeIf(e -> e.getValue().equals(fdsBefore.get(e.getKey())));
      leakedChildren = new TreeMap<>(children());
      leakedChildren.keySet().removeAll(childrenBefore);
      if ((leakedFds.isEmpty() && leakedChildren.isEmpty()) || System.nanoTime() > deadline) {
        break;
      }
      sleep(20);
    }
    for (long pid : leakedChildren.keySet()) {
      Native.libc().kill((int) pid, Native.SIGKILL);
      Native.libc().waitpid((int) pid, new int[1], 0);
    }
    assertThat(leakedChildren).as("child processes left behind (pid -> state, name)").isEmpty();
    assertThat(leakedFds).as("descriptors left open in the test JVM").isEmpty();
  }

  private static ExtensionContext.Store store(ExtensionContext context) {
    return context.getStore(
        ExtensionContext.Namespace.create(NoLeaks.class, context.getUniqueId()));
  }

  /** This JVM's open descriptors, number to target, without JVM noise. */
  static Map<Integer, String> openFds() {
    String self = "/proc/" + ProcessHandle.current().pid() + "/fd";
    String javaHome = System.getProperty("java.home");
    Map<Integer, String> fds = new HashMap<>();
    try (Stream<Path> list = Files.list(Path.of("/proc/self/fd"))) {
      for (Path p : list.collect(Collectors.toList())) {
        String target;
        try {
          target = Files.readSymbolicLink(p).toString();
        } catch (IOException gone) {
          continue; // closed meanwhile, e.g. the directory stream of this very listing
        }
        boolean noise = target.equals(self) || target.endsWith(".jar")
            || target.startsWith(javaHome) || target.equals("/dev/random")
            || target.equals("/dev/urandom");
        if (!noise) {
          fds.put(Integer.parseInt(p.getFileName().toString()), target);
        }
      }
    } catch (IOException e) {
      throw new AssertionError("cannot list /proc/self/fd", e);
    }
    return fds;
  }

  /** Child processes of this JVM, zombies included, as pid to "state name". */
  static Map<Long, String> children() {
    long self = ProcessHandle.current().pid();
    Map<Long, String> children = new HashMap<>();
    List<Path> procs = new ArrayList<>();
    try (Stream<Path> list = Files.list(Path.of("/proc"))) {
      list.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit))
          .forEach(procs::add);
    } catch (IOException e) {
      throw new AssertionError("cannot list /proc", e);
    }
    for (Path proc : procs) {
      String stat = readStat(proc);
      if (stat == null) {
        continue;
      }
      int close = stat.lastIndexOf(')');
      String[] fields = stat.substring(close + 2).split(" ");
      if (Long.parseLong(fields[1]) == self) {
        String name = stat.substring(stat.indexOf('(') + 1, close);
        children.put(Long.parseLong(proc.getFileName().toString()), fields[0] + " " + name);
      }
    }
    return children;
  }

  private static String readStat(Path proc) {
    try {
      return Files.readString(proc.resolve("stat"));
    } catch (IOException gone) {
      return null;
    }
  }

  /**
   * Asserts that process {@code pid} no longer exists: not running and not a zombie. A pid
   * already reused by an unrelated process (not our child) counts as gone.
   */
  public static void assertReaped(long pid) {
    String stat = readStat(Path.of("/proc", String.valueOf(pid)));
    if (stat == null) {
      return;
    }
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    assertThat(fields[0]).as("state of pid %d", pid).isNotEqualTo("Z");
    assertThat(Long.parseLong(fields[1])).as("parent of pid %d (%s)", pid, stat)
        .isNotEqualTo(ProcessHandle.current().pid());
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

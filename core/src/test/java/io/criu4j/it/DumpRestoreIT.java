package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.Criu;
import io.criu4j.CriuException;
import io.criu4j.CriuOptions;
import io.criu4j.DumpResult;
import io.criu4j.RestoreResult;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.RecordingNotifier;
import io.criu4j.testing.TmpfsDir;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Dump and restore of a real process tree through {@link Criu}: the payload (PID 1 of its own
 * PID namespace, with threads, a child process and memory) keeps counting after a restore, from
 * where it was dumped.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class DumpRestoreIT {
  private static final Duration PROGRESS = Duration.ofSeconds(10);

  private final List<AutoCloseable> cleanup = new ArrayList<>();

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  private <T extends AutoCloseable> T closeLater(T resource) {
    cleanup.add(resource);
    return resource;
  }

  private Payload startPayload() {
    Payload payload = closeLater(Payload.builder().memMib(32).threads(2).children(1)
        .intervalMillis(10).start());
    // It counts before anything is dumped.
    payload.awaitCounterAbove(payload.counter() + 2, PROGRESS);
    return payload;
  }

  @Test
  void restoredPayloadContinuesCountingWhereItWasDumped(Criu criu) throws Exception {
    Payload payload = startPayload();
    Path images = closeLater(TmpfsDir.create("criu4j-it-images-")).path();

    DumpResult dump = criu.dump(images, CriuOptions.builder().pid(payload.pid()).build());

    // Without leaveRunning CRIU kills the tree once the images are complete.
    assertThat(payload.isAlive()).isFalse();
    long atDump = payload.counter();
    assertThat(atDump).isPositive();
    assertThat(dump.imagesDir()).isEqualTo(images);
    assertThat(dump.stats().pagesWritten()).isGreaterThan(32L * 256);
    assertThat(dump.logFile()).exists();
    Thread.sleep(100);
    assertThat(payload.counter()).as("nothing counts after the dump").isEqualTo(atDump);

    RestoreResult restore = criu.restore(images, CriuOptions.DEFAULTS);
    payload.registerRestored(restore.pid());

    assertThat(restore.pid()).isPositive();
    assertThat(Payload.isRunning(restore.pid())).as("restored pid %d runs", restore.pid())
        .isTrue();
    assertThat(Files.readString(Path.of("/proc", String.valueOf(restore.pid()), "cmdline")))
        .contains(payload.counterFile().toString());
    assertThat(restore.logFile()).exists();
    // The counter goes on from the dumped value, never from 0, and keeps going: memory,
    // threads and the child came back (the payload stops counting otherwise).
    long previous = atDump;
    long deadline = System.nanoTime() + Duration.ofSeconds(1).toNanos();
    while (System.nanoTime() < deadline) {
      long now = payload.counter();
      assertThat(now).as("counter after restore").isGreaterThanOrEqualTo(previous);
      previous = now;
      Thread.sleep(5);
    }
    long after = payload.awaitCounterAbove(atDump + 20, PROGRESS);
    assertThat(Payload.isRunning(restore.pid())).isTrue();
    assertThat(after).isGreaterThan(atDump);
  }

  @Test
  void dumpWithLeaveRunningKeepsTheOriginalCounting(Criu criu) throws Exception {
    Payload payload = startPayload();
    Path images = closeLater(TmpfsDir.create("criu4j-it-images-")).path();

    DumpResult dump = criu.dump(images, CriuOptions.builder().pid(payload.pid())
        .leaveRunning(true).build());
    long afterDump = payload.counter();

    assertThat(payload.isAlive()).isTrue();
    payload.awaitCounterAbove(afterDump + 5, PROGRESS);
    assertThat(images.resolve("inventory.img")).isNotEmptyFile();
    assertThat(Files.list(images).map(p -> p.getFileName().toString()))
        .anyMatch(n -> n.startsWith("core-"))
        .anyMatch(n -> n.startsWith("pages-"))
        .anyMatch(n -> n.startsWith("pagemap-"));
    assertThat(dump.stats().pagesWritten()).isGreaterThan(32L * 256);
  }

  @Test
  void notificationsArriveInCriuOrder(Criu criu, TestReporter reporter) throws Exception {
    Payload payload = startPayload();
    Path images = closeLater(TmpfsDir.create("criu4j-it-images-")).path();

    RecordingNotifier onDump = new RecordingNotifier();
    criu.dump(images, CriuOptions.builder().pid(payload.pid()).build(), onDump);
    long atDump = payload.counter();
    Report.fact(reporter, "dump notifications", String.join(" ", onDump.events()));

    RecordingNotifier onRestore = new RecordingNotifier();
    RestoreResult restore = criu.restore(images, CriuOptions.DEFAULTS, onRestore);
    payload.registerRestored(restore.pid());
    Report.fact(reporter, "restore notifications", String.join(" ", onRestore.events()));

    // CRIU 4.1.1, no network namespace: query-ext-files is always sent in RPC notify mode.
    assertThat(onDump.names()).containsExactly("pre-dump", "query-ext-files", "post-dump");
    // The payload is PID 1 of its own namespace, which CRIU recreates: setup-namespaces and
    // post-setup-namespaces come with it.
    assertThat(onRestore.names()).containsExactly("pre-restore", "setup-namespaces",
        "post-setup-namespaces", "post-restore", "pre-resume", "post-resume");
    assertThat(onRestore.pids()).containsOnly(restore.pid());
    payload.awaitCounterAbove(atDump, PROGRESS);
  }

  @Test
  void postDumpVetoLeavesTheProcessRunning(Criu criu) throws Exception {
    Payload payload = startPayload();
    Path images = closeLater(TmpfsDir.create("criu4j-it-images-")).path();
    IllegalStateException veto = new IllegalStateException("destination not ready");
    RecordingNotifier notifier = new RecordingNotifier() {
      @Override
      public void postDump() throws Exception {
        super.postDump();
        throw veto;
      }
    };

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.dump(images, CriuOptions.builder().pid(payload.pid()).build(), notifier));

    assertThat(e).as("dump after a post-dump veto").isNotNull();
    assertThat(e.getCause()).isSameAs(veto);
    assertThat(e.request()).isEqualTo("DUMP");
    assertThat(notifier.names()).endsWith("post-dump");
    assertThat(payload.isAlive()).isTrue();
    long afterVeto = payload.counter();
    payload.awaitCounterAbove(afterVeto + 5, PROGRESS);
  }
}

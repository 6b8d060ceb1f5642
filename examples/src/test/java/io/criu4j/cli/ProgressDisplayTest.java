package io.criu4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.MigrationEvent;
import io.criu4j.MigrationPhase;
import io.criu4j.RoundStats;
import io.criu4j.TransferReport;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressDisplayTest {
  private final StringWriter text = new StringWriter();
  private final AtomicLong clock = new AtomicLong(1_000_000_000L);
  private final Instant at = Instant.EPOCH;

  private static TransferReport sent(long pageBytes) {
    return new TransferReport(2, 8192, pageBytes / 4096, pageBytes, Duration.ZERO);
  }

  private void advance(long millis) {
    clock.addAndGet(millis * 1_000_000L);
  }

  @Test
  void plainModePrintsLinesAndProgressAtMostOncePerSecond() {
    ProgressDisplay d = new ProgressDisplay(new PrintWriter(text), false, clock::get);
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.FINAL_DUMP));
    d.onEvent(new MigrationEvent.Frozen(at));
    advance(500);
    d.onEvent(new MigrationEvent.Progress(at, sent(512L << 20)));
    advance(100);
    d.onEvent(new MigrationEvent.Progress(at, sent(600L << 20))); // within 1 s: not shown
    advance(1000);
    d.onEvent(new MigrationEvent.Progress(at, sent(1024L << 20)));
    d.onEvent(new MigrationEvent.RoundFinished(at, new RoundStats(1, 300_000, 262_144, 0,
        1L << 30, Duration.ofMillis(1600), Duration.ofMillis(1600))));
    d.onEvent(new MigrationEvent.PhaseFinished(at, MigrationPhase.FINAL_DUMP,
        Duration.ofMillis(1600)));
    advance(400);
    d.onEvent(new MigrationEvent.Resumed(at, true, 77));
    d.finish();

    assertThat(text.toString()).isEqualTo(String.join(System.lineSeparator(),
        "[   0.000s] final-dump ...",
        "[   0.000s] process frozen",
        "[   0.500s] final-dump 512.0 MiB (131072 pages, 2 files) at 1.00 GiB/s",
        "[   1.600s] final-dump 1.00 GiB (262144 pages, 2 files) at 640.0 MiB/s",
        "[   1.600s] round 1: 262144 pages written, 0 skipped (in parent), 1.00 GiB, frozen "
            + "1600.0 ms",
        "[   1.600s] final-dump done in 1600.0 ms, 1.00 GiB (262144 pages, 2 files) at 640.0 "
            + "MiB/s",
        "[   2.000s] process running on the destination as pid 77 after 2000.0 ms frozen", ""));
  }

  @Test
  void terminalModeRewritesOneStatusLineAndKeepsFinishedPhases() {
    ProgressDisplay d = new ProgressDisplay(new PrintWriter(text), true, clock::get);
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.TRANSFER));
    advance(200);
    d.onEvent(new MigrationEvent.Progress(at, sent(64L << 20)));
    advance(200);
    d.onEvent(new MigrationEvent.PhaseFinished(at, MigrationPhase.TRANSFER,
        Duration.ofMillis(400)));
    d.finish();

    String s = text.toString();
    assertThat(s).contains("\r\033[Ktransfer  64.0 MiB (16384 pages, 2 files) at 320.0 MiB/s"
        + "  200.0 ms");
    assertThat(s).contains("\r\033[K[   0.400s] transfer done in 400.0 ms, 64.0 MiB (16384 "
        + "pages, 2 files) at 160.0 MiB/s" + System.lineSeparator());
    assertThat(s.substring(s.indexOf("transfer done"))).as("no status after the phase ended")
        .doesNotContain("transfer  ");
    assertThat(s).endsWith("at 160.0 MiB/s" + System.lineSeparator());
  }

  @Test
  void postCopySourceShowsThePostCopyPhaseAndEndsTheFreezeWhereItBegan() {
    ProgressDisplay d = new ProgressDisplay(new PrintWriter(text), false, clock::get, true);
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.FINAL_DUMP));
    d.onEvent(new MigrationEvent.Frozen(at));
    advance(100);
    d.onEvent(new MigrationEvent.PhaseFinished(at, MigrationPhase.FINAL_DUMP,
        Duration.ofMillis(100)));
    advance(50);
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.COMMIT));
    advance(1205);
    // The source hears of the post-copy only once all memory arrived, 1.2 s after it began.
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.POST_COPY));
    d.onEvent(new MigrationEvent.PhaseFinished(at, MigrationPhase.POST_COPY,
        Duration.ofMillis(1200)));
    d.onEvent(new MigrationEvent.Resumed(at, true, 77));
    d.onEvent(new MigrationEvent.PhaseFinished(at, MigrationPhase.COMMIT,
        Duration.ofMillis(5)));
    d.finish();

    assertThat(text.toString()).isEqualTo(String.join(System.lineSeparator(),
        "[   0.000s] final-dump ...",
        "[   0.000s] process frozen",
        "[   0.100s] final-dump done in 100.0 ms",
        "[   0.150s] commit ... (then post-copy: the tree runs on the destination while its "
            + "memory follows from the frozen source)",
        "[   1.355s] post-copy ...",
        "[   1.355s] post-copy done in 1200.0 ms: all memory arrived",
        "[   1.355s] process running on the destination as pid 77 after 155.0 ms frozen "
            + "(since the post-copy began)",
        "[   1.355s] commit done in 5.0 ms", ""));
  }

  @Test
  void postCopyOnATerminalShowsTheRunningCopyInsteadOfTheFreeze() {
    ProgressDisplay d = new ProgressDisplay(new PrintWriter(text), true, clock::get, true);
    d.onEvent(new MigrationEvent.Frozen(at));
    advance(100);
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.COMMIT));
    advance(2500);
    d.onEvent(new MigrationEvent.Note(at, "still going")); // a line, then the status again
    String status = text.toString().substring(text.toString().lastIndexOf("\r\033[K"));

    assertThat(status).isEqualTo("\r\033[Kpost-copy  2500.0 ms  running on the destination, "
        + "memory follows");
  }

  @Test
  void agentShowsThePostCopyAsItHappens() {
    ProgressDisplay d = new ProgressDisplay(new PrintWriter(text), false, clock::get);
    d.onEvent(new MigrationEvent.Resumed(at, true, 77));
    d.onEvent(new MigrationEvent.PhaseStarted(at, MigrationPhase.POST_COPY));
    advance(700);
    d.onEvent(new MigrationEvent.PhaseFinished(at, MigrationPhase.POST_COPY,
        Duration.ofMillis(700)));

    assertThat(text.toString()).isEqualTo(String.join(System.lineSeparator(),
        "[   0.000s] process running on the destination as pid 77",
        "[   0.000s] post-copy ... (the tree runs on the destination while its memory follows "
            + "from the frozen source)",
        "[   0.700s] post-copy done in 700.0 ms: all memory arrived", ""));
  }

  @Test
  void rollbackSaysWhereTheProcessRuns() {
    ProgressDisplay d = new ProgressDisplay(new PrintWriter(text), false, clock::get);
    d.onEvent(new MigrationEvent.Resumed(at, false, 4242));
    assertThat(text.toString()).contains("process running on the source (pid 4242)");
  }
}

package io.criu4j.cli;

import io.criu4j.CriuVersion;
import io.criu4j.MigrationCancelledException;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import io.criu4j.RoundStats;
import io.criu4j.TransferReport;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link Backend} that records what the commands ask for and plays a scripted outcome:
 * a report, an exception, or a migration that blocks until cancelled. Shutdown actions (what
 * Ctrl-C would run) are queued for the test to run.
 */
final class FakeBackend implements Backend {
  /** What {@link Migration#migrate()} does. */
  interface Outcome {
    MigrationReport run(FakeBackend fake, MigrationListener listener) throws MigrationException;
  }

  volatile MigrateSpec migrateSpec;
  volatile AgentSpec agentSpec;
  volatile Outcome outcome = (fake, listener) -> report(4242, 17);
  volatile MigrationException agentFailure;
  final CountDownLatch cancelled = new CountDownLatch(1);
  final CountDownLatch migrating = new CountDownLatch(1);
  final AtomicInteger cancels = new AtomicInteger();
  final AtomicInteger migrationsClosed = new AtomicInteger();
  final AtomicInteger agentsClosed = new AtomicInteger();
  final BlockingQueue<Runnable> shutdownActions = new LinkedBlockingQueue<>();
  final AtomicInteger shutdownWithdrawn = new AtomicInteger();

  @Override
  public Migration open(MigrateSpec spec, MigrationListener listener) {
    this.migrateSpec = spec;
    return new Migration() {
      @Override
      public MigrationReport migrate() throws MigrationException {
        migrating.countDown();
        return outcome.run(FakeBackend.this, listener);
      }

      @Override
      public void cancel() {
        cancels.incrementAndGet();
        cancelled.countDown();
      }

      @Override
      public void close() {
        migrationsClosed.incrementAndGet();
      }
    };
  }

  @Override
  public RunningAgent startAgent(AgentSpec spec, MigrationListener listener)
      throws MigrationException {
    this.agentSpec = spec;
    if (agentFailure != null) {
      throw agentFailure;
    }
    return new RunningAgent() {
      @Override
      public URI address() {
        return URI.create("tcp://127.0.0.1:40123");
      }

      @Override
      public void close() {
        agentsClosed.incrementAndGet();
      }
    };
  }

  @Override
  public Registration onShutdown(Runnable action) {
    shutdownActions.add(action);
    return shutdownWithdrawn::incrementAndGet;
  }

  /** An outcome that blocks until the migration is cancelled, then throws as the library does. */
  static Outcome blockUntilCancelled() {
    return (fake, listener) -> {
      try {
        if (!fake.cancelled.await(30, TimeUnit.SECONDS)) {
          throw new AssertionError("never cancelled");
        }
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      throw new MigrationCancelledException("cancelled before the commit point; source resumed");
    };
  }

  /** An outcome that reports a few events, then succeeds. */
  static Outcome withEvents() {
    return (fake, listener) -> {
      Instant t = Instant.EPOCH;
      listener.onEvent(new MigrationEvent.PhaseStarted(t, MigrationPhase.PREFLIGHT));
      listener.onEvent(new MigrationEvent.PhaseFinished(t, MigrationPhase.PREFLIGHT,
          Duration.ofMillis(12)));
      listener.onEvent(new MigrationEvent.Note(t, "pre-copy skipped: mem_track unavailable"));
      listener.onEvent(new MigrationEvent.Frozen(t));
      listener.onEvent(new MigrationEvent.PhaseStarted(t, MigrationPhase.FINAL_DUMP));
      listener.onEvent(new MigrationEvent.Progress(t, new TransferReport(3, 3000, 256,
          1 << 20, Duration.ofMillis(5))));
      listener.onEvent(new MigrationEvent.Resumed(t, true, 17));
      return report(4242, 17);
    };
  }

  /**
   * An outcome with a post-copy source's events, in the order the source sends them: the
   * post-copy phase only once all memory arrived, with how long it took, then the tree running.
   */
  static Outcome withPostCopyEvents() {
    return (fake, listener) -> {
      Instant t = Instant.EPOCH;
      listener.onEvent(new MigrationEvent.PhaseStarted(t, MigrationPhase.FINAL_DUMP));
      listener.onEvent(new MigrationEvent.Frozen(t));
      listener.onEvent(new MigrationEvent.PhaseFinished(t, MigrationPhase.FINAL_DUMP,
          Duration.ofMillis(30)));
      listener.onEvent(new MigrationEvent.PhaseStarted(t, MigrationPhase.COMMIT));
      listener.onEvent(new MigrationEvent.PhaseStarted(t, MigrationPhase.POST_COPY));
      listener.onEvent(new MigrationEvent.PhaseFinished(t, MigrationPhase.POST_COPY,
          Duration.ofMillis(900)));
      listener.onEvent(new MigrationEvent.Resumed(t, true, 17));
      listener.onEvent(new MigrationEvent.PhaseFinished(t, MigrationPhase.COMMIT,
          Duration.ofMillis(4)));
      return postCopyReport(4242, 17);
    };
  }

  /** A post-copy migration's report: 80 ms down, 1.2 s in all, 900 ms of it post-copy. */
  static MigrationReport postCopyReport(int oldPid, int newPid) {
    CriuVersion v = CriuVersion.of(4, 1, 1);
    return new MigrationReport(UUID.fromString("00000000-0000-0000-0000-000000000002"), oldPid,
        newPid, v, v, Map.of(MigrationPhase.PREFLIGHT, Duration.ofMillis(40),
            MigrationPhase.FINAL_DUMP, Duration.ofMillis(30), MigrationPhase.COMMIT,
            Duration.ofMillis(4), MigrationPhase.POST_COPY, Duration.ofMillis(900)),
        Duration.ofNanos(80_000_000), Duration.ofNanos(1_200_000_000), 64L << 20, 300_000, 40,
        16_384, List.of(new RoundStats(1, 16_500, 16_384, 0, 300_000, Duration.ofMillis(20),
            Duration.ofMillis(1100))), "pre-copy skipped: post-copy moves the memory after the "
            + "restore");
  }

  static MigrationReport report(int oldPid, int newPid) {
    CriuVersion v = CriuVersion.of(4, 1, 1);
    return new MigrationReport(UUID.fromString("00000000-0000-0000-0000-000000000001"), oldPid,
        newPid, v, v, Map.of(MigrationPhase.PREFLIGHT, Duration.ofMillis(40),
            MigrationPhase.FINAL_DUMP, Duration.ofMillis(120)),
        Duration.ofNanos(312_450_000), Duration.ofNanos(1_520_040_000), 64L << 20, 300_000, 40,
        16_384, List.of(new RoundStats(1, 16_500, 16_384, 0, 64L << 20, Duration.ofMillis(120),
            Duration.ofMillis(130))), "pre-copy skipped: mem_track unavailable");
  }
}

package io.criu4j;

import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * What happens during a migration, as a {@link MigrationListener} sees it. Every event carries
 * the instant it happened, on the clock of the side that reports it.
 *
 * @since 0.1
 */
public sealed interface MigrationEvent {
  /** When the event happened. */
  Instant at();

  /** A phase began. */
  record PhaseStarted(Instant at, MigrationPhase phase) implements MigrationEvent {
    public PhaseStarted {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(phase, "phase");
    }
  }

  /** A phase ended (successfully or not; the next events tell). */
  record PhaseFinished(Instant at, MigrationPhase phase, Duration took) implements MigrationEvent {
    public PhaseFinished {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(phase, "phase");
      Objects.requireNonNull(took, "took");
    }
  }

  /** Bytes and pages moved so far in the current round (source: sent; agent: received). */
  record Progress(Instant at, TransferReport sent) implements MigrationEvent {
    public Progress {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(sent, "sent");
    }
  }

  /** A memory round (pre-copy or final dump) finished. */
  record RoundFinished(Instant at, RoundStats stats) implements MigrationEvent {
    public RoundFinished {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(stats, "stats");
    }
  }

  /** The source tree was frozen for the final dump: downtime starts. */
  record Frozen(Instant at) implements MigrationEvent {
    public Frozen {
      Objects.requireNonNull(at, "at");
    }
  }

  /**
   * The tree runs again: on the destination ({@code onDestination}, with its new pid there), or
   * on the source after a rollback ({@code pid} is the source pid). Downtime ends.
   */
  record Resumed(Instant at, boolean onDestination, int pid) implements MigrationEvent {
    public Resumed {
      Objects.requireNonNull(at, "at");
    }
  }

  /** Something worth telling that is not a failure, such as a skipped pre-copy. */
  record Note(Instant at, String message) implements MigrationEvent {
    public Note {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(message, "message");
    }
  }
}

package io.criu4j.cli;

import io.criu4j.MigrationEvent;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationPhase;
import io.criu4j.RoundStats;
import io.criu4j.TransferReport;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Shows a migration's progress: on a terminal, one status line rewritten in place (phase,
 * bytes and pages moved, rate, time frozen) above which finished phases stay; elsewhere, plain
 * lines, with progress at most once a second. Thread-safe (events arrive on the session's
 * threads); {@link #finish()} ends the status line.
 *
 * <p>Post-copy, on the source: the tree runs on the destination from the commit on, while its
 * memory follows; the source learns how long that took only at the end, when the
 * {@link MigrationPhase#POST_COPY} phase is reported with its duration. From the commit on the
 * status line therefore shows the post-copy instead of the freeze, and the time frozen ends
 * where the post-copy began, as the report's downtime does.
 */
final class ProgressDisplay implements MigrationListener {
  private static final long TTY_INTERVAL_NANOS = 100_000_000L;
  private static final long PLAIN_INTERVAL_NANOS = 1_000_000_000L;
  private static final String CLEAR_LINE = "\r\033[K";

  private final PrintWriter out;
  private final boolean tty;
  private final LongSupplier clock;
  private final boolean postCopy;
  private final long start;
  private MigrationPhase phase;
  private long phaseStart;
  private TransferReport last;
  private long frozenAt = -1;
  /** Post-copy: when the tree began to run on the destination, once known; else -1. */
  private long runningAt = -1;
  private long lastShown;
  private boolean statusShown;

  ProgressDisplay(PrintWriter out, boolean tty, LongSupplier nanoClock) {
    this(out, tty, nanoClock, false);
  }

  /**
   * @param postCopy the events are a post-copy source's: the tree runs on the destination from
   *     the commit on
   */
  ProgressDisplay(PrintWriter out, boolean tty, LongSupplier nanoClock, boolean postCopy) {
    this.out = out;
    this.tty = tty;
    this.clock = nanoClock;
    this.postCopy = postCopy;
    this.start = nanoClock.getAsLong();
    this.lastShown = start - PLAIN_INTERVAL_NANOS;
  }

  @Override
  public synchronized void onEvent(MigrationEvent event) {
    long now = clock.getAsLong();
    if (event instanceof MigrationEvent.PhaseStarted s) {
      phase = s.phase();
      phaseStart = now;
      last = null;
      if (!tty) {
        line(now, name(s.phase()) + " ..." + hint(s.phase()));
      } else {
        status(now);
      }
    } else if (event instanceof MigrationEvent.PhaseFinished f) {
      StringBuilder sb = new StringBuilder(name(f.phase())).append(" done in ")
          .append(millis(f.took().toNanos()));
      if (last != null && last.totalBytes() > 0 && f.phase() == phase) {
        sb.append(", ").append(amount(last)).append(rate(last.totalBytes(), now - phaseStart));
      }
      if (f.phase() == MigrationPhase.POST_COPY) {
        // The tree has run since the post-copy began (on the source this event comes at its end).
        runningAt = now - f.took().toNanos();
        sb.append(": all memory arrived");
      }
      if (f.phase() == phase) {
        phase = null;
      }
      line(now, sb.toString());
      last = null;
    } else if (event instanceof MigrationEvent.Progress p) {
      last = p.sent();
      long interval = tty ? TTY_INTERVAL_NANOS : PLAIN_INTERVAL_NANOS;
      if (now - lastShown >= interval) {
        lastShown = now;
        if (tty) {
          status(now);
        } else {
          line(now, (phase == null ? "moved" : name(phase)) + " " + amount(last)
              + (phase == null ? "" : rate(last.totalBytes(), now - phaseStart)));
        }
      }
    } else if (event instanceof MigrationEvent.RoundFinished r) {
      RoundStats s = r.stats();
      line(now, String.format(Locale.ROOT, "round %d: %d pages written, %d skipped (in parent), "
          + "%s, frozen %s", s.round(), s.pagesWritten(), s.pagesSkippedParent(),
          bytes(s.bytes()), millis(s.frozen().toNanos())));
    } else if (event instanceof MigrationEvent.Frozen) {
      frozenAt = now;
      line(now, "process frozen");
    } else if (event instanceof MigrationEvent.Resumed r) {
      String where = r.onDestination() ? "on the destination as pid " + r.pid()
          : "on the source (pid " + r.pid() + ")";
      boolean sincePostCopy = r.onDestination() && runningAt >= 0;
      long until = sincePostCopy ? runningAt : now;
      line(now, "process running " + where + (frozenAt >= 0 ? " after "
          + millis(Math.max(0, until - frozenAt)) + " frozen" : "")
          + (sincePostCopy ? " (since the post-copy began)" : ""));
      frozenAt = -1;
      runningAt = -1;
    } else if (event instanceof MigrationEvent.Note n) {
      line(now, "note: " + n.message());
    }
  }

  /** Ends a pending status line. */
  synchronized void finish() {
    if (statusShown) {
      out.print(CLEAR_LINE);
      statusShown = false;
    }
    out.flush();
  }

  private void line(long now, String text) {
    if (statusShown) {
      out.print(CLEAR_LINE);
      statusShown = false;
    }
    out.printf(Locale.ROOT, "[%8.3fs] %s%n", (now - start) / 1e9, text);
    if (tty) {
      status(now);
    }
    out.flush();
  }

  private void status(long now) {
    if (phase == null) {
      return;
    }
    boolean memoryFollows = postCopyRunning();
    StringBuilder sb = new StringBuilder(CLEAR_LINE)
        .append(memoryFollows ? name(MigrationPhase.POST_COPY) : name(phase));
    if (last != null) {
      sb.append("  ").append(amount(last)).append(rate(last.totalBytes(), now - phaseStart));
    }
    sb.append("  ").append(millis(now - phaseStart));
    if (memoryFollows) {
      sb.append("  running on the destination, memory follows");
    } else if (frozenAt >= 0) {
      sb.append("  frozen ").append(millis(now - frozenAt));
    }
    out.print(sb);
    out.flush();
    statusShown = true;
  }

  /**
   * Whether the tree runs on the destination while its memory follows: a post-copy source from
   * the commit on (its post-copy phase is reported only at the end), or the post-copy phase.
   */
  private boolean postCopyRunning() {
    return phase == MigrationPhase.POST_COPY || postCopy && phase == MigrationPhase.COMMIT;
  }

  /** What a plain line adds to a phase's start; a post-copy source says it at the commit. */
  private String hint(MigrationPhase p) {
    if (postCopy && p == MigrationPhase.COMMIT) {
      return " (then post-copy: the tree runs on the destination while its memory follows from "
          + "the frozen source)";
    }
    if (!postCopy && p == MigrationPhase.POST_COPY) {
      return " (the tree runs on the destination while its memory follows from the frozen "
          + "source)";
    }
    return "";
  }

  static String name(MigrationPhase p) {
    return p == null ? "?" : p.name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  static String amount(TransferReport r) {
    return String.format(Locale.ROOT, "%s (%d pages, %d files)", bytes(r.totalBytes()),
        r.pages(), r.files());
  }

  static String rate(long bytes, long nanos) {
    if (nanos <= 0 || bytes <= 0) {
      return "";
    }
    return " at " + bytes((long) (bytes / (nanos / 1e9))) + "/s";
  }

  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    if (n < 1024 * 1024) {
      return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
    }
    if (n < 1024L * 1024 * 1024) {
      return String.format(Locale.ROOT, "%.1f MiB", n / (1024.0 * 1024));
    }
    return String.format(Locale.ROOT, "%.2f GiB", n / (1024.0 * 1024 * 1024));
  }

  static String millis(long nanos) {
    double ms = nanos / 1e6;
    return ms < 10_000 ? String.format(Locale.ROOT, "%.1f ms", ms)
        : String.format(Locale.ROOT, "%.2f s", ms / 1000);
  }
}

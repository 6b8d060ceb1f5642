package io.criu4j.cli;

import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import io.criu4j.RoundStats;
import java.io.PrintWriter;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;

/** A {@link MigrationReport} for people; its last line is the one scripts grep for. */
final class ReportText {
  private ReportText() {}

  static void print(PrintWriter out, MigrationReport r, URI to) {
    out.printf(Locale.ROOT, "migrated pid %d to %s, now pid %d there%n", r.sourcePid(), to,
        r.destinationPid());
    out.printf(Locale.ROOT, "  session    %s%n", r.sessionId());
    out.printf(Locale.ROOT, "  CRIU       %s here, %s there%n", r.sourceCriu(),
        r.destinationCriu());
    out.printf(Locale.ROOT, "  downtime   %s%n", ms(r.downtime()));
    out.printf(Locale.ROOT, "  total      %s%n", ms(r.total()));
    Duration post = r.phases().get(MigrationPhase.POST_COPY);
    if (post != null) {
      out.printf(Locale.ROOT, "  post-copy  %s: the tree ran on the destination while the rest "
          + "of its memory followed%n", ms(post));
    }
    StringBuilder phases = new StringBuilder();
    for (Map.Entry<MigrationPhase, Duration> e : r.phases().entrySet()) {
      phases.append(phases.length() == 0 ? "" : ", ")
          .append(ProgressDisplay.name(e.getKey())).append(' ').append(ms(e.getValue()));
    }
    out.printf(Locale.ROOT, "  phases     %s%n", phases);
    out.printf(Locale.ROOT, "  moved      %s: %d pages (%s), %d files (%s)%n",
        ProgressDisplay.bytes(r.totalBytes()), r.pages(), ProgressDisplay.bytes(r.pageBytes()),
        r.files(), ProgressDisplay.bytes(r.fileBytes()));
    for (RoundStats s : r.rounds()) {
      out.printf(Locale.ROOT, "  round %-4d %d pages scanned, %d written, %d in parent, %s, "
          + "frozen %s, took %s%n", s.round(), s.pagesScanned(), s.pagesWritten(),
          s.pagesSkippedParent(), ProgressDisplay.bytes(s.bytes()), ms(s.frozen()), ms(s.took()));
    }
    if (r.preCopyNote() != null) {
      out.printf(Locale.ROOT, "  pre-copy   %s%n", r.preCopyNote());
    }
    out.println(summaryLine(r));
  }

  /**
   * {@code migrated: old_pid=P new_pid=Q downtime_ms=D total_ms=T}, and after a post-copy
   * {@code post_copy_ms=C} (the part of the total after the tree ran on the destination).
   */
  static String summaryLine(MigrationReport r) {
    Duration post = r.phases().get(MigrationPhase.POST_COPY);
    return String.format(Locale.ROOT, "migrated: old_pid=%d new_pid=%d downtime_ms=%.1f "
        + "total_ms=%.1f", r.sourcePid(), r.destinationPid(), r.downtime().toNanos() / 1e6,
        r.total().toNanos() / 1e6)
        + (post == null ? "" : String.format(Locale.ROOT, " post_copy_ms=%.1f",
            post.toNanos() / 1e6));
  }

  private static String ms(Duration d) {
    return ProgressDisplay.millis(d.toNanos());
  }
}

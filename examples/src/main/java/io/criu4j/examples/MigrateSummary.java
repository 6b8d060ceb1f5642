package io.criu4j.examples;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The lines {@link MigrateBench} prints after its table of medians, from the median downtime of
 * each mode at one payload size (1024 MiB, or the largest measured), in order:
 *
 * <ul>
 *   <li>a note naming that size when it is not 1024 MiB;
 *   <li>{@code pageserver: criu4j_vs_cli_pageserver=R cli_pageserver_vs_tmpfs=R}, when
 *       {@code cli-pageserver} ran;
 *   <li>{@code held: criu4j_vs_cli_tmpfs_held=R cli_tmpfs_held_vs_tmpfs=R}, when
 *       {@code cli-tmpfs-held} ran;
 *   <li>{@code postcopy: criu4j_postcopy_vs_cli_lazy=R criu4j_postcopy_ms=X cli_lazy_ms=Y}:
 *       criu4j's post-copy against CRIU's own ({@code criu dump --lazy-pages} and
 *       {@code criu lazy-pages});
 *   <li>{@code stopcopy: downtime_vs_tmpfs=R downtime_vs_disk=R}: criu4j's stop-and-copy
 *       ({@code criu4j}) against {@code cli-tmpfs} and {@code cli-disk};
 *   <li>last, {@code migrate: downtime_vs_tmpfs=R downtime_vs_disk=R mode=M}: the same ratios
 *       for the better of criu4j's two modes that ran (the lower median downtime; post-copy on a
 *       tie), named by {@code mode=criu4j-postcopy} or {@code mode=criu4j}, or
 *       {@code mode=none} if neither ran.
 * </ul>
 *
 * <p>Pageserver and held compare CRIU's page streaming and held source with criu4j's
 * stop-and-copy, which has the same, so they do not change with post-copy. A ratio or time of a
 * mode that was not measured is {@code n/a}. Stateless; thread-safe.
 */
final class MigrateSummary {
  private MigrateSummary() {}

  /**
   * @param size the payload size (MiB) of the medians
   * @param modes the modes that ran
   * @param downtime median downtime (ms) at {@code size} per mode; a missing mode or
   *     {@code NaN} means not measured
   */
  static List<String> lines(int size, Collection<String> modes, Map<String, Double> downtime) {
    List<String> lines = new ArrayList<>();
    if (size != 1024) {
      lines.add(String.format(Locale.ROOT, "(ratios below are for %d MiB: 1024 MiB was not "
          + "measured)", size));
    }
    double stopCopy = ms(downtime, MigrateBench.CRIU4J);
    double postCopy = ms(downtime, MigrateBench.CRIU4J_POSTCOPY);
    double tmpfs = ms(downtime, MigrateBench.CLI_TMPFS);
    double disk = ms(downtime, MigrateBench.CLI_DISK);
    if (modes.contains(MigrateBench.CLI_PAGESERVER)) {
      double pageServer = ms(downtime, MigrateBench.CLI_PAGESERVER);
      lines.add("pageserver: criu4j_vs_cli_pageserver=" + ratio(stopCopy, pageServer)
          + " cli_pageserver_vs_tmpfs=" + ratio(pageServer, tmpfs));
    }
    if (modes.contains(MigrateBench.CLI_TMPFS_HELD)) {
      double held = ms(downtime, MigrateBench.CLI_TMPFS_HELD);
      lines.add("held: criu4j_vs_cli_tmpfs_held=" + ratio(stopCopy, held)
          + " cli_tmpfs_held_vs_tmpfs=" + ratio(held, tmpfs));
    }
    double lazy = ms(downtime, MigrateBench.CLI_LAZY);
    lines.add("postcopy: criu4j_postcopy_vs_cli_lazy=" + ratio(postCopy, lazy)
        + " criu4j_postcopy_ms=" + millis(postCopy) + " cli_lazy_ms=" + millis(lazy));
    lines.add("stopcopy: downtime_vs_tmpfs=" + ratio(stopCopy, tmpfs) + " downtime_vs_disk="
        + ratio(stopCopy, disk));
    String best;
    if (!Double.isNaN(postCopy) && (Double.isNaN(stopCopy) || postCopy <= stopCopy)) {
      best = MigrateBench.CRIU4J_POSTCOPY;
    } else if (!Double.isNaN(stopCopy)) {
      best = MigrateBench.CRIU4J;
    } else {
      best = "none";
    }
    double b = ms(downtime, best);
    lines.add("migrate: downtime_vs_tmpfs=" + ratio(b, tmpfs) + " downtime_vs_disk="
        + ratio(b, disk) + " mode=" + best);
    return lines;
  }

  private static double ms(Map<String, Double> downtime, String mode) {
    Double v = downtime.get(mode);
    return v == null ? Double.NaN : v;
  }

  static String ratio(double a, double b) {
    return Double.isNaN(a) || Double.isNaN(b) ? "n/a" : String.format(Locale.ROOT, "%.3f", a / b);
  }

  private static String millis(double ms) {
    return Double.isNaN(ms) ? "n/a" : String.format(Locale.ROOT, "%.1f", ms);
  }
}

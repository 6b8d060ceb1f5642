package io.criu4j.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("The migration benchmark's summary")
class MigrateSummaryTest {
  /** Median downtimes (ms) of every mode. */
  private static Map<String, Double> all() {
    Map<String, Double> m = new HashMap<>();
    m.put(MigrateBench.CRIU4J, 2400.0);
    m.put(MigrateBench.CRIU4J_POSTCOPY, 300.0);
    m.put(MigrateBench.CLI_TMPFS, 1600.0);
    m.put(MigrateBench.CLI_DISK, 3000.0);
    m.put(MigrateBench.CLI_PAGESERVER, 2000.0);
    m.put(MigrateBench.CLI_TMPFS_HELD, 1500.0);
    m.put(MigrateBench.CLI_LAZY, 250.0);
    return m;
  }

  @Test
  void ends_with_postcopy_stopcopy_and_the_migrate_line_of_the_better_criu4j_mode() {
    List<String> lines = MigrateSummary.lines(1024, MigrateBench.MODES, all());

    assertThat(lines).containsExactly(
        "pageserver: criu4j_vs_cli_pageserver=1.200 cli_pageserver_vs_tmpfs=1.250",
        "held: criu4j_vs_cli_tmpfs_held=1.600 cli_tmpfs_held_vs_tmpfs=0.938",
        "postcopy: criu4j_postcopy_vs_cli_lazy=1.200 criu4j_postcopy_ms=300.0 "
            + "cli_lazy_ms=250.0",
        "stopcopy: downtime_vs_tmpfs=1.500 downtime_vs_disk=0.800",
        "migrate: downtime_vs_tmpfs=0.188 downtime_vs_disk=0.100 mode=criu4j-postcopy");
  }

  @Test
  void migrate_line_takes_stop_and_copy_when_it_was_faster_or_post_copy_did_not_run() {
    Map<String, Double> slowPostCopy = all();
    slowPostCopy.put(MigrateBench.CRIU4J_POSTCOPY, 2500.0);
    List<String> lines = MigrateSummary.lines(1024, MigrateBench.MODES, slowPostCopy);
    assertThat(lines.get(lines.size() - 1))
        .isEqualTo("migrate: downtime_vs_tmpfs=1.500 downtime_vs_disk=0.800 mode=criu4j");

    Map<String, Double> noPostCopy = all();
    noPostCopy.remove(MigrateBench.CRIU4J_POSTCOPY);
    noPostCopy.put(MigrateBench.CLI_LAZY, Double.NaN);
    lines = MigrateSummary.lines(1024, List.of(MigrateBench.CRIU4J, MigrateBench.CLI_TMPFS,
        MigrateBench.CLI_DISK), noPostCopy);
    assertThat(lines).containsExactly(
        "postcopy: criu4j_postcopy_vs_cli_lazy=n/a criu4j_postcopy_ms=n/a cli_lazy_ms=n/a",
        "stopcopy: downtime_vs_tmpfs=1.500 downtime_vs_disk=0.800",
        "migrate: downtime_vs_tmpfs=1.500 downtime_vs_disk=0.800 mode=criu4j");
  }

  @Test
  void without_stop_and_copy_the_migrate_line_is_post_copys_and_stopcopy_is_na() {
    Map<String, Double> m = all();
    m.remove(MigrateBench.CRIU4J);
    List<String> lines = MigrateSummary.lines(1024, List.of(MigrateBench.CRIU4J_POSTCOPY,
        MigrateBench.CLI_TMPFS, MigrateBench.CLI_DISK, MigrateBench.CLI_LAZY), m);

    assertThat(lines).containsExactly(
        "postcopy: criu4j_postcopy_vs_cli_lazy=1.200 criu4j_postcopy_ms=300.0 "
            + "cli_lazy_ms=250.0",
        "stopcopy: downtime_vs_tmpfs=n/a downtime_vs_disk=n/a",
        "migrate: downtime_vs_tmpfs=0.188 downtime_vs_disk=0.100 mode=criu4j-postcopy");
  }

  @Test
  void no_criu4j_mode_names_none() {
    Map<String, Double> m = all();
    m.remove(MigrateBench.CRIU4J);
    m.remove(MigrateBench.CRIU4J_POSTCOPY);
    List<String> lines = MigrateSummary.lines(1024, List.of(MigrateBench.CLI_TMPFS), m);

    assertThat(lines.get(lines.size() - 1))
        .isEqualTo("migrate: downtime_vs_tmpfs=n/a downtime_vs_disk=n/a mode=none");
  }

  @Test
  void names_the_size_when_1024_mib_was_not_measured() {
    List<String> lines = MigrateSummary.lines(64, MigrateBench.MODES, all());

    assertThat(lines.get(0)).isEqualTo("(ratios below are for 64 MiB: 1024 MiB was not "
        + "measured)");
    assertThat(lines.get(lines.size() - 1)).startsWith("migrate: ");
  }
}

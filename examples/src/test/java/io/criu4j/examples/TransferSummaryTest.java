package io.criu4j.examples;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.examples.TransferBench.Run;
import io.criu4j.examples.TransferBench.Side;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("The transfer benchmark's summary")
class TransferSummaryTest {
  private static final long GB = 1_000_000_000L;

  /**
   * A run moving 1 GB at {@code mbPerSecond}, with these CPU s/GB and peak RSS (MiB) during the
   * measured transfer; the whole-life peaks are 30 MiB more.
   */
  private static Run run(double mbPerSecond, double cpuSender, double cpuReceiver,
      long rssSenderMib, long rssReceiverMib) {
    return run(mbPerSecond, cpuSender, cpuReceiver, rssSenderMib, rssReceiverMib,
        rssSenderMib + 30, rssReceiverMib + 30);
  }

  private static Run run(double mbPerSecond, double cpuSender, double cpuReceiver,
      long rssSenderMib, long rssReceiverMib, long lifeSenderMib, long lifeReceiverMib) {
    long wall = Math.round(GB / (mbPerSecond * 1e6) * 1e9);
    return new Run(
        new Side(GB, wall, Math.round(cpuSender * 1e9), rssSenderMib * 1024,
            lifeSenderMib * 1024),
        new Side(GB, wall, Math.round(cpuReceiver * 1e9), rssReceiverMib * 1024,
            lifeReceiverMib * 1024));
  }

  private static Map<String, Run> plainMedians() {
    Map<String, Run> m = new HashMap<>();
    m.put("tcp/raw", run(2000, 0.2, 0.1, 60, 60));
    m.put("tcp/criu4j", run(500, 0.7, 0.6, 120, 110));
    m.put("unix/raw", run(4000, 0.1, 0.1, 60, 60));
    m.put("unix/criu4j", run(1000, 0.4, 0.45, 150, 124));
    return m;
  }

  private static Map<String, Run> allMedians() {
    Map<String, Run> m = plainMedians();
    m.put("tls/raw", run(800, 0.9, 0.8, 100, 95));
    m.put("tls/criu4j", run(250, 1.9, 1.7, 400, 390));
    return m;
  }

  /** Every configuration of the default modes, relay included. */
  private static Map<String, Run> relayMedians() {
    Map<String, Run> m = allMedians();
    m.put("tcp/relay", run(800, 0.5, 0.4, 70, 65));
    m.put("unix/relay", run(1600, 0.3, 0.3, 72, 66));
    m.put("tls/relay", run(400, 1.2, 1.0, 110, 100));
    return m;
  }

  @Test
  void ends_with_the_tls_line_and_then_the_transfer_line() {
    List<String> lines = TransferSummary.lines(allMedians());

    assertThat(lines.get(lines.size() - 2)).isEqualTo("tls: criu4j_tls_mb_s=250.0 "
        + "criu4j_plain_mb_s=500.0 tls_vs_plain=0.500 raw_tls_mb_s=800.0 raw_plain_mb_s=2000.0 "
        + "raw_tls_vs_plain=0.400");
    assertThat(lines.get(lines.size() - 1)).isEqualTo("transfer: tcp_ratio=0.250 "
        + "unix_ratio=0.250 cpu_s_per_gb=0.700 overhead_rss_mib=90");
  }

  @Test
  void the_median_table_lists_every_configuration_in_a_fixed_order() {
    List<String> lines = TransferSummary.lines(allMedians());

    assertThat(lines.get(0)).isEmpty();
    assertThat(lines.get(1)).startsWith("median").contains("MB/s", "RSS MiB rcv");
    assertThat(lines.subList(2, 8)).extracting(l -> l.split(" +")[0]).containsExactly(
        "tcp/raw", "tcp/criu4j", "unix/raw", "unix/criu4j", "tls/raw", "tls/criu4j");
    assertThat(lines.get(7).split(" +")).containsExactly("tls/criu4j", "250.0", "1.900",
        "1.700", "400", "390", "430", "420");
    assertThat(lines).hasSize(10);
  }

  @Test
  void tls_does_not_change_the_transfer_line_although_its_sides_cost_more() {
    String withTls = TransferSummary.transferLine(allMedians()).orElseThrow();
    String withoutTls = TransferSummary.transferLine(plainMedians()).orElseThrow();

    assertThat(withTls).isEqualTo(withoutTls).contains("cpu_s_per_gb=0.700",
        "overhead_rss_mib=90");
  }

  @Test
  void without_tls_the_output_is_the_table_of_tcp_and_unix_and_the_transfer_line() {
    List<String> lines = TransferSummary.lines(plainMedians());

    assertThat(lines).hasSize(7);
    assertThat(lines).noneMatch(l -> l.startsWith("tls"));
    assertThat(lines.get(6)).startsWith("transfer: ");
  }

  @Test
  void tcp_and_tls_alone_give_the_tls_line_last_and_no_transfer_line() {
    Map<String, Run> m = allMedians();
    m.remove("unix/raw");
    m.remove("unix/criu4j");

    List<String> lines = TransferSummary.lines(m);

    assertThat(lines).hasSize(7);
    assertThat(lines.get(6)).startsWith("tls: ");
    assertThat(lines).noneMatch(l -> l.startsWith("transfer:") || l.startsWith("unix/"));
  }

  @Test
  void a_run_that_can_make_no_summary_line_prints_nothing_after_its_runs() {
    Map<String, Run> tlsOnly = new HashMap<>(allMedians());
    tlsOnly.keySet().retainAll(List.of("tls/raw", "tls/criu4j"));
    Map<String, Run> criu4jOnly = new HashMap<>(allMedians());
    criu4jOnly.keySet().removeIf(k -> k.endsWith("/raw"));

    assertThat(TransferSummary.lines(tlsOnly)).isEmpty();
    assertThat(TransferSummary.lines(criu4jOnly)).isEmpty();
    assertThat(TransferSummary.lines(Map.of())).isEmpty();
  }

  @Test
  void a_tls_line_needs_the_plain_tcp_figures_of_both_modes() {
    Map<String, Run> m = allMedians();
    m.remove("tcp/raw");

    assertThat(TransferSummary.tlsLine(m)).isEmpty();
    assertThat(TransferSummary.transferLine(m)).isEmpty();
  }

  @Test
  void a_side_parses_its_result_line() {
    Side side = Side.parse("RESULT bytes=2000000000 wall_ns=4000000000 cpu_ns=1000000000 "
        + "hwm_kib=65536 life_hwm_kib=98304");

    assertThat(side).isEqualTo(new Side(2_000_000_000L, 4_000_000_000L, 1_000_000_000L,
        65536, 98304));
    assertThat(side.cpuSecondsPerGb()).isEqualTo(0.5);
    assertThat(new Run(side, side).mbPerSecond()).isEqualTo(500.0);
  }

  @Test
  void a_side_writes_the_result_line_it_parses() {
    Side side = new Side(1_073_741_824L, 2_500_000_000L, 700_000_000L, 80_000, 120_000);

    assertThat(side.resultLine()).isEqualTo("RESULT bytes=1073741824 wall_ns=2500000000 "
        + "cpu_ns=700000000 hwm_kib=80000 life_hwm_kib=120000");
    assertThat(Side.parse(side.resultLine())).isEqualTo(side);
  }

  @Test
  void a_result_line_without_a_whole_life_peak_takes_the_measured_one() {
    Side side = Side.parse("RESULT bytes=1 wall_ns=2 cpu_ns=3 hwm_kib=4096");

    assertThat(side.lifeHwmKib()).isEqualTo(4096);
    assertThat(side.withLifeHwmKib(8192)).isEqualTo(new Side(1, 2, 3, 4096, 8192));
  }

  @Test
  void with_relay_rows_the_relay_line_comes_before_the_tls_and_transfer_lines() {
    List<String> lines = TransferSummary.lines(relayMedians());

    assertThat(lines.get(lines.size() - 3)).isEqualTo("relay: tcp_criu4j_vs_relay=0.625 "
        + "unix_criu4j_vs_relay=0.625 tcp_relay_vs_raw=0.400 unix_relay_vs_raw=0.400");
    assertThat(lines.get(lines.size() - 2)).startsWith("tls: ");
    assertThat(lines.get(lines.size() - 1)).isEqualTo("transfer: tcp_ratio=0.250 "
        + "unix_ratio=0.250 cpu_s_per_gb=0.700 overhead_rss_mib=90");
  }

  @Test
  void relay_rows_sit_between_raw_and_criu4j_of_their_transport() {
    List<String> lines = TransferSummary.lines(relayMedians());

    assertThat(lines.subList(2, 11)).extracting(l -> l.split(" +")[0]).containsExactly(
        "tcp/raw", "tcp/relay", "tcp/criu4j", "unix/raw", "unix/relay", "unix/criu4j",
        "tls/raw", "tls/relay", "tls/criu4j");
    assertThat(lines.get(3).split(" +")).containsExactly("tcp/relay", "800.0", "0.500",
        "0.400", "70", "65", "100", "95");
    assertThat(lines).hasSize(14);
  }

  @Test
  void the_table_heads_the_measured_and_the_whole_life_peaks() {
    String header = TransferSummary.lines(relayMedians()).get(1);

    assertThat(header).startsWith("median").containsSubsequence("MB/s", "cpu s/GB snd",
        "cpu s/GB rcv", "RSS MiB snd", "RSS MiB rcv", "life MiB snd", "life MiB rcv");
  }

  @Test
  void relay_rows_change_neither_the_transfer_line_nor_the_tls_line() {
    Map<String, Run> withRelay = relayMedians();
    Map<String, Run> without = allMedians();

    assertThat(TransferSummary.transferLine(withRelay))
        .isEqualTo(TransferSummary.transferLine(without));
    assertThat(TransferSummary.tlsLine(withRelay)).isEqualTo(TransferSummary.tlsLine(without));
  }

  @Test
  void the_relay_line_needs_tcp_and_unix_in_all_three_modes() {
    for (String missing : List.of("tcp/raw", "tcp/relay", "tcp/criu4j", "unix/raw",
        "unix/relay", "unix/criu4j")) {
      Map<String, Run> m = relayMedians();
      m.remove(missing);

      assertThat(TransferSummary.relayLine(m)).as("without " + missing).isEmpty();
      assertThat(TransferSummary.lines(m)).as("without " + missing)
          .noneMatch(l -> l.startsWith("relay:"));
    }
    Map<String, Run> noTls = relayMedians();
    noTls.keySet().removeIf(k -> k.startsWith("tls/"));
    assertThat(TransferSummary.relayLine(noTls)).isPresent();
  }

  @Test
  void one_transport_in_all_three_modes_makes_no_summary_line() {
    Map<String, Run> m = relayMedians();
    m.keySet().retainAll(List.of("tcp/raw", "tcp/relay", "tcp/criu4j"));

    assertThat(TransferSummary.lines(m)).isEmpty();
  }

  @Test
  void the_rss_overhead_compares_the_peaks_of_the_measured_transfers_not_whole_lives() {
    Map<String, Run> m = plainMedians();
    // criu4j sides whose warm-up peaked far above their measured transfer
    m.put("tcp/criu4j", run(500, 0.7, 0.6, 120, 110, 900, 800));
    m.put("unix/criu4j", run(1000, 0.4, 0.45, 150, 124, 900, 800));

    assertThat(TransferSummary.transferLine(m).orElseThrow()).endsWith("overhead_rss_mib=90");
  }

  @Test
  void a_run_line_shows_both_peaks_of_each_side() {
    Run r = run(321.6, 0.614, 0.557, 95, 63, 130, 64);

    assertThat(TransferSummary.runLine("tcp", "relay", 0, r)).isEqualTo("  tcp  relay  run 1:"
        + "    321.6 MB/s  cpu s/GB sender 0.614 receiver 0.557  peak RSS MiB sender 95 "
        + "receiver 63 (whole life 130, 64)");
  }
}

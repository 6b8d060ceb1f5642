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

  /** A run moving 1 GB at {@code mbPerSecond}, with these CPU s/GB and peak RSS (MiB). */
  private static Run run(double mbPerSecond, double cpuSender, double cpuReceiver,
      long rssSenderMib, long rssReceiverMib) {
    long wall = Math.round(GB / (mbPerSecond * 1e6) * 1e9);
    return new Run(new Side(GB, wall, Math.round(cpuSender * 1e9), rssSenderMib * 1024),
        new Side(GB, wall, Math.round(cpuReceiver * 1e9), rssReceiverMib * 1024));
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
        "1.700", "400", "390");
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
        + "hwm_kib=65536");

    assertThat(side).isEqualTo(new Side(2_000_000_000L, 4_000_000_000L, 1_000_000_000L,
        65536));
    assertThat(side.cpuSecondsPerGb()).isEqualTo(0.5);
    assertThat(new Run(side, side).mbPerSecond()).isEqualTo(500.0);
  }
}

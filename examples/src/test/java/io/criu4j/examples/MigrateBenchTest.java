package io.criu4j.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

@DisplayName("The migration benchmark")
class MigrateBenchTest {
  @Test
  void measures_both_criu4j_modes_and_every_baseline_by_default() {
    MigrateBench bench = new MigrateBench();
    new CommandLine(bench).parseArgs();

    assertThat(bench.modes).containsExactly("criu4j", "criu4j-postcopy", "cli-tmpfs",
        "cli-disk", "cli-pageserver", "cli-tmpfs-held", "cli-lazy");
    assertThat(bench.modes).containsExactlyElementsOf(MigrateBench.MODES);
  }

  @Test
  void refuses_an_unknown_mode_before_doing_anything() {
    StringWriter err = new StringWriter();
    int exit = new CommandLine(new MigrateBench()).setErr(new PrintWriter(err, true))
        .execute("--modes", "criu4j-postcopy,cli-lazy,cli-teleport");

    assertThat(exit).isEqualTo(2);
    assertThat(err.toString()).contains("unknown mode: cli-teleport")
        .doesNotContain("unknown mode: criu4j-postcopy", "unknown mode: cli-lazy");
  }

  @Test
  void sees_a_page_server_listening_on_loopback_in_proc_net_tcp() {
    String procNetTcp = String.join("\n",
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
            + "timeout inode",
        "   0: 0100007F:69F3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
            + "        0 3434084 1 0000000000000000 100 0 0 10 0",
        "   1: 0100007F:69F4 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0"
            + "        0 3434085 1 0000000000000000 20 4 30 10 -1",
        "   2: 00000000:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
            + "        0 3434086 1 0000000000000000 100 0 0 10 0", "");

    assertThat(MigrateBench.listens(procNetTcp, 0x69F3)).isTrue();
    assertThat(MigrateBench.listens(procNetTcp, 0x69F4)).as("connected, not listening")
        .isFalse();
    assertThat(MigrateBench.listens(procNetTcp, 7000)).as("listening on 0.0.0.0 only")
        .isFalse();
    assertThat(MigrateBench.listens(procNetTcp, 27124)).isFalse();
  }
}

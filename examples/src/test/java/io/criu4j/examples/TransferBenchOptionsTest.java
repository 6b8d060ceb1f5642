package io.criu4j.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

@DisplayName("The transfer benchmark's options")
class TransferBenchOptionsTest {
  @TempDir
  Path tmp;

  private final StringWriter err = new StringWriter();

  private int execute(String... args) {
    return new CommandLine(new TransferBench()).setErr(new PrintWriter(err, true))
        .execute(args);
  }

  @Test
  void measures_tcp_unix_and_tls_in_the_raw_relay_and_criu4j_modes_by_default() {
    TransferBench bench = new TransferBench();
    new CommandLine(bench).parseArgs();

    assertThat(bench.transports).containsExactly("tcp", "unix", "tls");
    assertThat(bench.modes).containsExactly("raw", "relay", "criu4j");
  }

  @Test
  void relay_is_a_mode_of_its_own() {
    Path work = tmp.resolve("work");

    // Refused for its --tls-dir only: the mode itself passed the check.
    int exit = execute("--modes", "relay", "--work-dir", work.toString());

    assertThat(exit).isEqualTo(2);
    assertThat(err.toString()).doesNotContain("unknown mode").contains("--tls-dir");
    assertThat(execute("--modes", "raw,Relay", "--transports", "tcp")).isEqualTo(2);
    assertThat(err.toString()).contains("unknown mode 'Relay'", "known: raw, relay, criu4j");
  }

  @Test
  void side_jvms_get_the_relay_mode() {
    TransferBench driver = new TransferBench();
    new CommandLine(driver).parseArgs("--transports", "unix", "--modes", "relay", "--files",
        "1000");

    List<String> cmd = driver.sideCommand("receiver", "relay", "unix", "unix:///w/s.sock",
        Path.of("/w"));
    TransferBench side = new TransferBench();
    new CommandLine(side).parseArgs(cmd.subList(cmd.indexOf(TransferBench.class.getName()) + 1,
        cmd.size()).toArray(String[]::new));

    assertThat(side.mode).isEqualTo("relay");
    assertThat(side.role).isEqualTo("receiver");
    assertThat(side.files).isEqualTo(1000);
  }

  @Test
  void tls_without_tls_dir_is_refused_before_anything_runs() {
    Path work = tmp.resolve("work");

    int exit = execute("--transports", "tls", "--work-dir", work.toString());

    assertThat(exit).isEqualTo(2);
    assertThat(err.toString()).contains("the tls transport needs --tls-dir DIR",
        "scripts/certs.sh");
    assertThat(work).doesNotExist();
  }

  @Test
  void the_default_transports_need_tls_dir_too() {
    assertThat(execute("--work-dir", tmp.resolve("work").toString())).isEqualTo(2);
    assertThat(err.toString()).contains("--tls-dir");
  }

  @Test
  void a_tls_dir_without_the_certificates_is_refused_naming_what_is_missing()
      throws Exception {
    Files.writeString(tmp.resolve("ca.pem"), "");
    Files.writeString(tmp.resolve("sender.pem"), "");
    Files.writeString(tmp.resolve("sender-key.pem"), "");

    int exit = execute("--transports", "tcp,tls", "--tls-dir", tmp.toString(), "--work-dir",
        tmp.resolve("work").toString());

    assertThat(exit).isEqualTo(2);
    assertThat(err.toString()).contains("lacks [receiver.pem, receiver-key.pem] (make them");
    assertThat(tmp.resolve("work")).doesNotExist();
  }

  @Test
  void unknown_transports_and_modes_are_refused() {
    assertThat(execute("--transports", "tcp,udp")).isEqualTo(2);
    assertThat(err.toString()).contains("unknown transport 'udp'");
    assertThat(execute("--transports", "unix", "--modes", "raw,fast")).isEqualTo(2);
    assertThat(err.toString()).contains("unknown mode 'fast'");
  }

  @Test
  void side_jvms_get_the_certificate_directory() {
    TransferBench driver = new TransferBench();
    new CommandLine(driver).parseArgs("--tls-dir", "/certs", "--page-mib", "8");

    List<String> cmd = driver.sideCommand("sender", "criu4j", "tls", "tls://127.0.0.1:4000",
        Path.of("/work/d"));
    List<String> args = cmd.subList(cmd.indexOf(TransferBench.class.getName()) + 1,
        cmd.size());
    TransferBench side = new TransferBench();
    new CommandLine(side).parseArgs(args.toArray(String[]::new));

    assertThat(side.tlsDir).isEqualTo(Path.of("/certs"));
    assertThat(side.role).isEqualTo("sender");
    assertThat(side.transport).isEqualTo("tls");
    assertThat(side.address).isEqualTo("tls://127.0.0.1:4000");
    assertThat(side.pageMib).isEqualTo(8);
  }

  @Test
  void side_jvms_get_no_certificate_directory_when_none_was_given() {
    TransferBench driver = new TransferBench();
    new CommandLine(driver).parseArgs("--transports", "tcp");

    assertThat(driver.sideCommand("receiver", "raw", "tcp", "tcp://127.0.0.1:0",
        Path.of("/work/d"))).doesNotContain("--tls-dir");
  }
}

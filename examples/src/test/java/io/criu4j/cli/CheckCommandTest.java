package io.criu4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.CriuFeatures;
import io.criu4j.testing.FakeCriu;
import io.criu4j.testing.FakeCriu.Script;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code criu4j check} against the fake CRIU: what it runs, prints, and its exit code. */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CheckCommandTest {
  private final FakeCriu fake = FakeCriu.start();
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  @TempDir
  Path dir;

  @AfterEach
  void closeFake() {
    fake.close();
  }

  private int run(String... args) {
    String[] all = new String[args.length + 4];
    all[0] = "--criu";
    all[1] = fake.binary().toString();
    all[2] = "check";
    all[3] = "--dir=" + dir;
    System.arraycopy(args, 0, all, 4, args.length);
    return Criu4jCommand.commandLine(new FakeBackend()).setOut(new PrintWriter(out, true))
        .setErr(new PrintWriter(err, true)).execute(all);
  }

  @Test
  @DisplayName("a ready host passes: version, kernel check, features, CPU, space; exit 0")
  void readyHost() throws Exception {
    fake.features(new CriuFeatures(true, true, true));
    fake.enqueue(Script.succeed()).enqueue(Script.succeed()).enqueue(Script.succeed())
        .enqueue(Script.succeed());

    assertThat(run()).isZero();

    String text = out.toString();
    assertThat(text).contains("criu      ok       CRIU 4.1.1 at " + fake.binary()
        + ", page-server header 24 bytes");
    assertThat(text).contains("kernel    ok", "features  ok       mem_track=yes lazy_pages=yes "
        + "pidfd_store=yes", "cpu       ok", "space     ");
    assertThat(text).doesNotContain("FAILED");
    assertThat(fake.takeRequestSkippingVersion().type()).isEqualTo("CHECK");
    assertThat(fake.takeRequestSkippingVersion().type()).isEqualTo("FEATURE_CHECK");
    assertThat(fake.takeRequestSkippingVersion().type()).isEqualTo("CPUINFO_DUMP");
    assertThat(fake.takeRequestSkippingVersion().type()).isEqualTo("CPUINFO_CHECK");
  }

  @Test
  @DisplayName("a failed kernel check and too little space fail the check with exit 1")
  void failuresExitOne() {
    fake.enqueue(Script.fail(0, "CRIU can't work on this kernel")).enqueue(Script.succeed())
        .enqueue(Script.succeed()).enqueue(Script.fail(0, "CPU mismatch"));

    assertThat(run("--min-free", "1T")).isEqualTo(1);

    String text = out.toString();
    assertThat(text).contains("kernel    FAILED", "CRIU can't work on this kernel");
    assertThat(text).contains("features  warning  mem_track=no", "without mem_track there is "
        + "no pre-copy");
    assertThat(text).contains("cpu       FAILED", "CPU mismatch");
    assertThat(text).contains("less than --min-free 1024.00 GiB");
    assertThat(text).contains("result: 3 check(s) failed");
    assertThat(err.toString()).doesNotContain("\tat ");
  }

  @Test
  @DisplayName("a missing CRIU fails at once and skips what needs it")
  void missingCriu() {
    int code = Criu4jCommand.commandLine(new FakeBackend()).setOut(new PrintWriter(out, true))
        .setErr(new PrintWriter(err, true))
        .execute("--criu", dir.resolve("no-such-criu").toString(), "check", "--dir=" + dir);

    assertThat(code).isEqualTo(1);
    assertThat(out.toString()).contains("criu      FAILED", "no-such-criu")
        .doesNotContain("kernel").contains("space ");
  }
}

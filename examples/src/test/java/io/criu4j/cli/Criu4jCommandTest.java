package io.criu4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.CriuOptions;
import io.criu4j.MigrationException;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationSession;
import io.criu4j.internal.migrate.SourceMigration;
import io.criu4j.internal.migrate.SourceSettings;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Field;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code criu4j} command line: what each option turns into, what goes to stdout and stderr,
 * and the exit codes (0 ok, 1 refused or failed, 2 usage), with a fake backend in place of
 * criu4j.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class Criu4jCommandTest {
  private final FakeBackend backend = new FakeBackend();
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    return Criu4jCommand.commandLine(backend).setOut(new PrintWriter(out, true))
        .setErr(new PrintWriter(err, true)).execute(args);
  }

  @Test
  @DisplayName("no command at all is a usage error")
  void noCommandIsUsageError() {
    assertThat(run()).isEqualTo(2);
    assertThat(err.toString()).contains("a command is required");
  }

  @Test
  @DisplayName("an unknown command is a usage error")
  void unknownCommandIsUsageError() {
    assertThat(run("teleport")).isEqualTo(2);
    assertThat(err.toString()).contains("teleport");
  }

  @Test
  @DisplayName("--help and --version succeed")
  void helpAndVersion() {
    assertThat(run("--help")).isZero();
    assertThat(out.toString()).contains("agent", "migrate", "check", "Exit codes");
    assertThat(run("--version")).isZero();
    assertThat(out.toString()).contains("criu4j ");
    assertThat(run("migrate", "--help")).isZero();
    assertThat(out.toString()).contains("--phase-timeout", "--tcp-established");
  }

  @Nested
  @DisplayName("criu4j migrate")
  class Migrate {
    @Test
    @DisplayName("passes every option through to the session")
    void everyOptionReachesTheSpec() {
      int code = run("--criu", "/opt/x/criu", "migrate", "--pid", "123", "--to",
          "tcp://10.0.0.2:7070", "--insecure-plain",
          "--tcp-established", "--shell-job", "--ext-unix-sk",
          "--file-locks", "--link-remap", "--external", "tty[88:1]:zz", "--external",
          "mnt[/data]:d", "--manage-cgroups", "soft", "--network-lock", "NFTABLES",
          "--criu-log-level", "4", "--phase-timeout", "final-dump=2m", "--phase-timeout",
          "RESTORE=1500ms", "--phase-timeout", "preflight=PT10S", "--no-pre-copy",
          "--post-copy", "--staging-dir", "/run/stage", "--progress", "none");

      assertThat(code).isZero();
      MigrateSpec s = backend.migrateSpec;
      assertThat(s.pid()).isEqualTo(123);
      assertThat(s.destination()).isEqualTo(URI.create("tcp://10.0.0.2:7070"));
      assertThat(s.tcpEstablished()).isTrue();
      assertThat(s.shellJob()).isTrue();
      assertThat(s.extUnixSockets()).isTrue();
      assertThat(s.fileLocks()).isTrue();
      assertThat(s.linkRemap()).isTrue();
      assertThat(s.externals()).containsExactly("tty[88:1]:zz", "mnt[/data]:d");
      assertThat(s.manageCgroups()).isEqualTo(CriuOptions.CgroupMode.SOFT);
      assertThat(s.networkLock()).isEqualTo(CriuOptions.NetworkLockMethod.NFTABLES);
      assertThat(s.criuLogLevel()).isEqualTo(4);
      assertThat(s.phaseTimeouts()).containsOnly(
          java.util.Map.entry(MigrationPhase.FINAL_DUMP, Duration.ofMinutes(2)),
          java.util.Map.entry(MigrationPhase.RESTORE, Duration.ofMillis(1500)),
          java.util.Map.entry(MigrationPhase.PREFLIGHT, Duration.ofSeconds(10)));
      assertThat(s.preCopy()).isFalse();
      assertThat(s.postCopy()).isTrue();
      assertThat(s.stagingDirectory()).isEqualTo(Path.of("/run/stage"));
      assertThat(s.criuBinary()).isEqualTo(Path.of("/opt/x/criu"));
      assertThat(backend.migrationsClosed).hasValue(1);
      assertThat(backend.shutdownWithdrawn).as("Ctrl-C hook withdrawn").hasValue(1);
    }

    @Test
    @DisplayName("defaults: CRIU's own choices, pre-copy on, nothing extra")
    void defaults() {
      assertThat(run("migrate", "-p", "9", "-t", "unix:///run/criu4j.sock", "--progress",
          "none")).isZero();
      MigrateSpec s = backend.migrateSpec;
      assertThat(s.tcpEstablished() || s.shellJob() || s.extUnixSockets() || s.fileLocks()
          || s.linkRemap()).isFalse();
      assertThat(s.externals()).isEmpty();
      assertThat(s.manageCgroups()).isNull();
      assertThat(s.networkLock()).isNull();
      assertThat(s.criuLogLevel()).isNull();
      assertThat(s.phaseTimeouts()).isEmpty();
      assertThat(s.preCopy()).isTrue();
      assertThat(s.postCopy()).isFalse();
      assertThat(s.stagingDirectory()).isNull();
      assertThat(s.criuBinary()).isNull();
    }

    @Test
    @DisplayName("the spec becomes a session builder the library accepts")
    void specBuildsARealSession() {
      run("migrate", "--pid", "123", "--to", "tcp://127.0.0.1:7070", "--insecure-plain",
          "--tcp-established",
          "--external", "tty[88:1]:zz", "--manage-cgroups", "ignore", "--network-lock", "skip",
          "--criu-log-level", "1", "--phase-timeout", "commit=5s", "--no-pre-copy",
          "--progress", "none");
      try (MigrationSession session = backend.migrateSpec.toBuilder(MigrationListener.NONE)
          .build()) {
        assertThat(session.toString()).contains("123", "tcp://127.0.0.1:7070");
      }
    }

    @Test
    @DisplayName("--post-copy turns on the session's lazy pages; without it they stay off")
    void postCopyReachesTheSession() throws Exception {
      run("migrate", "--pid", "123", "--to", "tcp://127.0.0.1:7070", "--insecure-plain",
          "--post-copy", "--progress", "none");
      try (MigrationSession session = backend.migrateSpec.toBuilder(MigrationListener.NONE)
          .build()) {
        assertThat(settingsOf(session).options().lazyPages()).isTrue();
      }
      run("migrate", "--pid", "123", "--to", "tcp://127.0.0.1:7070", "--insecure-plain",
          "--progress", "none");
      try (MigrationSession session = backend.migrateSpec.toBuilder(MigrationListener.NONE)
          .build()) {
        assertThat(settingsOf(session).options().lazyPages()).isFalse();
      }
    }

    /** What the session was built with: the public API has no getter for it, by design. */
    private SourceSettings settingsOf(MigrationSession session) throws Exception {
      Field f = MigrationSession.class.getDeclaredField("migration");
      f.setAccessible(true);
      return ((SourceMigration) f.get(session)).settings();
    }

    @Test
    @DisplayName("--help describes --post-copy and lists its phase")
    void postCopyHelp() {
      assertThat(run("migrate", "--help")).isZero();
      assertThat(out.toString().replaceAll("\\s+", " ")).contains("--post-copy",
          "memory follows from the frozen source", "kills the copy and resumes the source",
          "commit, post-copy, cleanup");
    }

    @Test
    @DisplayName("a post-copy report names the post-copy phase and its share of the total")
    void postCopyReport() {
      backend.outcome = FakeBackend.withPostCopyEvents();
      assertThat(run("migrate", "--pid", "4242", "--to", "unix:///run/a.sock", "--post-copy",
          "--progress", "plain")).isZero();
      String text = out.toString();
      String[] lines = text.strip().split("\n");
      assertThat(text).contains("post-copy done in 900.0 ms: all memory arrived",
          "process running on the destination as pid 17",
          "  downtime   80.0 ms", "  total      1200.0 ms",
          "  post-copy  900.0 ms: the tree ran on the destination while the rest of its memory "
              + "followed",
          "  phases     preflight 40.0 ms, final-dump 30.0 ms, commit 4.0 ms, post-copy 900.0 ms");
      assertThat(lines[lines.length - 1]).isEqualTo("migrated: old_pid=4242 new_pid=17 "
          + "downtime_ms=80.0 total_ms=1200.0 post_copy_ms=900.0");
    }

    @Test
    @DisplayName("success prints a report whose last line is the summary")
    void successPrintsReport() {
      assertThat(run("migrate", "--pid", "4242", "--to", "unix:///run/a.sock", "--progress",
          "none")).isZero();
      String[] lines = out.toString().strip().split("\n");
      assertThat(lines[0]).isEqualTo("migrated pid 4242 to unix:///run/a.sock, now pid 17 "
          + "there");
      assertThat(out.toString()).contains("downtime   312.5 ms", "pre-copy skipped")
          .doesNotContain("post-copy");
      assertThat(lines[lines.length - 1])
          .isEqualTo("migrated: old_pid=4242 new_pid=17 downtime_ms=312.5 total_ms=1520.0");
      assertThat(err.toString()).isEmpty();
    }

    @Test
    @DisplayName("--json prints exactly the report's JSON on stdout, progress on stderr")
    void jsonOnStdout() {
      backend.outcome = FakeBackend.withEvents();
      assertThat(run("migrate", "--pid", "4242", "--to", "tcp://h:1", "--insecure-plain",
          "--json", "--progress",
          "plain")).isZero();
      assertThat(out.toString()).isEqualTo(FakeBackend.report(4242, 17).toJson()
          + System.lineSeparator());
      assertThat(err.toString()).contains("preflight done in 12.0 ms",
          "note: pre-copy skipped", "process running on the destination as pid 17");
    }

    @Test
    @DisplayName("plain progress without --json goes to stdout before the report")
    void plainProgressOnStdout() {
      backend.outcome = FakeBackend.withEvents();
      assertThat(run("migrate", "--pid", "4242", "--to", "tcp://h:1", "--insecure-plain",
          "--progress", "plain"))
          .isZero();
      String text = out.toString();
      assertThat(text.indexOf("final-dump ...")).isGreaterThanOrEqualTo(0)
          .isLessThan(text.indexOf("migrated pid 4242"));
      assertThat(text).doesNotContain("\r");
    }

    @Test
    @DisplayName("a refused migration exits 1 with the reason on stderr and no stack trace")
    void refusedExitsOne() {
      backend.outcome = (fake, listener) -> {
        throw new MigrationException("pre-flight refused: no process 4242",
            new java.io.IOException("ESRCH"));
      };
      assertThat(run("migrate", "--pid", "4242", "--to", "tcp://h:1", "--insecure-plain",
          "--progress", "none"))
          .isEqualTo(1);
      assertThat(err.toString()).contains("failed: pre-flight refused: no process 4242: ESRCH")
          .doesNotContain("\tat ");
      assertThat(out.toString()).isEmpty();
    }

    @Test
    @DisplayName("--verbose adds the stack trace")
    void verboseAddsStackTrace() {
      backend.outcome = (fake, listener) -> {
        throw new MigrationException("agent unreachable");
      };
      assertThat(run("migrate", "--pid", "4242", "--to", "tcp://h:1", "--insecure-plain",
          "--progress", "none",
          "--verbose")).isEqualTo(1);
      assertThat(err.toString()).contains("agent unreachable", "\tat ");
    }

    @Test
    @DisplayName("an unexpected error also exits 1, named, without a stack trace")
    void unexpectedErrorExitsOne() {
      backend.outcome = (fake, listener) -> {
        throw new IllegalStateException("migrate() already called");
      };
      assertThat(run("migrate", "--pid", "1", "--to", "tcp://h:1", "--insecure-plain",
          "--progress", "none"))
          .isEqualTo(1);
      assertThat(err.toString()).contains("migrate() already called").doesNotContain("\tat ");
    }

    @Test
    @DisplayName("Ctrl-C cancels the session, waits for the rollback, and exits 1")
    void ctrlCCancels() throws Exception {
      backend.outcome = FakeBackend.blockUntilCancelled();
      CompletableFuture<Integer> code = CompletableFuture.supplyAsync(() -> run("migrate",
          "--pid", "4242", "--to", "tcp://h:1", "--insecure-plain", "--progress", "none"));
      assertThat(backend.migrating.await(20, TimeUnit.SECONDS)).isTrue();
      Runnable ctrlC = backend.shutdownActions.poll(20, TimeUnit.SECONDS);
      assertThat(ctrlC).isNotNull();

      ctrlC.run(); // as the JVM runs a shutdown hook: returns once the command is done

      assertThat(backend.migrationsClosed).as("session closed before the hook returns")
          .hasValue(1);
      assertThat(code.get(20, TimeUnit.SECONDS)).isEqualTo(1);
      assertThat(backend.cancels).hasValue(1);
      assertThat(err.toString()).contains("cancelled (interrupted); pid 4242 runs on here");
      assertThat(backend.migrationsClosed).hasValue(1);
    }

    @Test
    @DisplayName("missing --pid or --to is a usage error naming the option")
    void missingRequired() {
      assertThat(run("migrate", "--to", "tcp://h:1", "--insecure-plain")).isEqualTo(2);
      assertThat(err.toString()).contains("--pid");
      assertThat(run("migrate", "--pid", "3")).isEqualTo(2);
      assertThat(err.toString()).contains("--to");
      assertThat(backend.migrateSpec).isNull();
    }

    @Test
    @DisplayName("bad values are usage errors naming the value")
    void badValues() {
      String[][] cases = {
          {"--pid", "0"}, {"--pid", "-5"}, {"--pid", "abc"},
          {"--to", "no-scheme"},
          {"--manage-cgroups", "sometimes"}, {"--network-lock", "ufw"},
          {"--criu-log-level", "7"},
          {"--phase-timeout", "final-dump"}, {"--phase-timeout", "warp=5s"},
          {"--phase-timeout", "restore=soon"}, {"--phase-timeout", "restore=0s"},
          {"--external", " "},
          {"--progress", "fancy"},
      };
      for (String[] c : cases) {
        StringWriter e = new StringWriter();
        int code = Criu4jCommand.commandLine(backend).setOut(new PrintWriter(new StringWriter()))
            .setErr(new PrintWriter(e, true)).execute(withDefaults(c));
        assertThat(code).as("%s %s", c[0], c[1]).isEqualTo(2);
        assertThat(e.toString()).as("%s %s", c[0], c[1]).contains(c[1].strip().isEmpty()
            ? c[0] : c[1].contains("=") ? c[1].substring(0, c[1].indexOf('=')) : c[1]);
      }
      assertThat(backend.migrateSpec).isNull();
    }

    private String[] withDefaults(String[] c) {
      java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("migrate"));
      if (!c[0].equals("--pid")) {
        args.addAll(java.util.List.of("--pid", "5"));
      }
      if (!c[0].equals("--to")) {
        args.addAll(java.util.List.of("--to", "tcp://h:1", "--insecure-plain"));
      }
      args.addAll(java.util.List.of(c));
      return args.toArray(String[]::new);
    }
  }

  @Nested
  @DisplayName("link security: TLS by default, plain TCP only on request")
  class Security {
    @TempDir
    Path pki;

    private Path file(String name) throws Exception {
      return java.nio.file.Files.writeString(pki.resolve(name), "-----BEGIN X-----\n");
    }

    @Test
    @DisplayName("tls:// with a key pair and CA reaches both specs, with the allowed peers")
    void tlsOptionsReachTheSpecs() throws Exception {
      Path cert = file("a.pem");
      Path key = file("a-key.pem");
      Path ca = file("ca.pem");
      assertThat(run("migrate", "--pid", "7", "--to", "tls://node-b:7070", "--tls-cert",
          cert.toString(), "--tls-key", key.toString(), "--tls-ca", ca.toString(),
          "--allow-peer", "CN=node-b", "--progress", "none")).isZero();
      assertThat(backend.migrateSpec.security()).isEqualTo(
          LinkSecurity.tls(cert, key, ca, java.util.List.of("CN=node-b")));
      assertThat(err.toString()).doesNotContain("WARNING");
      backend.shutdownActions.clear(); // the migrate command's own

      CompletableFuture<Integer> code = CompletableFuture.supplyAsync(() -> run("agent",
          "--listen", "tls://0.0.0.0:7070", "--tls-cert", cert.toString(), "--tls-key",
          key.toString(), "--tls-ca", ca.toString(), "--allow-peer", "CN=node-a",
          "--allow-peer", "CN=node-c", "--dir", pki.toString()));
      Runnable ctrlC = backend.shutdownActions.poll(20, TimeUnit.SECONDS);
      assertThat(ctrlC).as("agent running; stderr: %s", err).isNotNull();
      ctrlC.run();
      assertThat(code.get(20, TimeUnit.SECONDS)).isZero();
      assertThat(backend.agentSpec.security().allowedPeers())
          .containsExactly("CN=node-a", "CN=node-c");
      assertThat(backend.agentSpec.security().insecurePlain()).isFalse();
    }

    @Test
    @DisplayName("tcp:// without --insecure-plain is refused, pointing to scripts/certs.sh")
    void plainTcpIsRefused() {
      assertThat(run("migrate", "--pid", "7", "--to", "tcp://node-b:7070")).isEqualTo(2);
      assertThat(err.toString()).contains("plain TCP is refused", "tls://node-b:7070",
          "scripts/certs.sh", "--insecure-plain");
      assertThat(run("agent", "--listen", "tcp://0.0.0.0:7070", "--dir", pki.toString()))
          .isEqualTo(2);
      assertThat(backend.migrateSpec).isNull();
      assertThat(backend.agentSpec).isNull();
    }

    @Test
    @DisplayName("--insecure-plain allows tcp:// with a warning on stderr")
    void insecurePlainWarns() {
      assertThat(run("migrate", "--pid", "7", "--to", "tcp://node-b:7070", "--insecure-plain",
          "--progress", "none")).isZero();
      assertThat(backend.migrateSpec.security().insecurePlain()).isTrue();
      assertThat(err.toString()).contains("WARNING: --insecure-plain", "unencrypted");
    }

    @Test
    @DisplayName("tls:// without all three PEM files names the missing ones and scripts/certs.sh")
    void tlsNeedsAllThreeFiles() throws Exception {
      Path cert = file("a.pem");
      assertThat(run("migrate", "--pid", "7", "--to", "tls://node-b:7070", "--tls-cert",
          cert.toString())).isEqualTo(2);
      assertThat(err.toString()).contains("--tls-key, --tls-ca", "scripts/certs.sh");
      assertThat(run("migrate", "--pid", "7", "--to", "tls://node-b:7070", "--tls-cert",
          cert.toString(), "--tls-key", pki.resolve("missing.pem").toString(), "--tls-ca",
          cert.toString())).isEqualTo(2);
      assertThat(err.toString()).contains("cannot read " + pki.resolve("missing.pem"));
      assertThat(backend.migrateSpec).isNull();
    }

    @Test
    @DisplayName("options that do not fit the address are usage errors")
    void mismatchedOptions() throws Exception {
      Path cert = file("a.pem");
      assertThat(run("migrate", "--pid", "7", "--to", "unix:///run/a.sock",
          "--insecure-plain")).isEqualTo(2);
      assertThat(err.toString()).contains("--insecure-plain applies to tcp://");
      assertThat(run("migrate", "--pid", "7", "--to", "tcp://h:1", "--insecure-plain",
          "--tls-cert", cert.toString())).isEqualTo(2);
      assertThat(run("migrate", "--pid", "7", "--to", "tls://h:1", "--tls-cert",
          cert.toString(), "--tls-key", cert.toString(), "--tls-ca", cert.toString(),
          "--allow-peer", "node-b")).isEqualTo(2);
      assertThat(err.toString()).contains("'node-b' is not a certificate subject");
      assertThat(backend.migrateSpec).isNull();
    }

    @Test
    @DisplayName("unix:// needs no TLS options (its peers are checked by uid)")
    void unixNeedsNothing() {
      assertThat(run("migrate", "--pid", "7", "--to", "unix:///run/a.sock", "--progress",
          "none")).isZero();
      assertThat(backend.migrateSpec.security()).isEqualTo(LinkSecurity.NONE);
    }

    @Test
    @DisplayName("the spec turns real PEM files into a TLS transport, and refuses a bare tcp://")
    void specBuildsTransports() throws Exception {
      Path script = Path.of("..", "scripts", "certs.sh").toAbsolutePath().normalize();
      for (String[] a : new String[][] {{"init", pki.toString()},
          {"issue", pki.toString(), "node-a", "127.0.0.1"}}) {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("bash",
            script.toString()));
        cmd.addAll(java.util.List.of(a));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertThat(p.waitFor()).isZero();
      }
      LinkSecurity tls = LinkSecurity.tls(pki.resolve("node-a.pem"),
          pki.resolve("node-a-key.pem"), pki.resolve("ca.pem"), java.util.List.of("CN=x"));
      assertThat(tls.transport(URI.create("tls://127.0.0.1:1")).toString())
          .contains("TLSv1.3", "node-a.pem", "allowedPeers=[CN=x]");
      assertThat(org.assertj.core.api.Assertions.catchThrowable(() -> LinkSecurity.NONE
          .transport(URI.create("tcp://127.0.0.1:1"))))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--insecure-plain");
    }
  }

  @Nested
  @DisplayName("criu4j agent")
  class Agent {
    @TempDir
    Path dir;

    @Test
    @DisplayName("starts the agent, prints its address and stops on Ctrl-C with exit 0")
    void servesUntilShutdown() throws Exception {
      CompletableFuture<Integer> code = CompletableFuture.supplyAsync(() -> run("agent",
          "--listen", "tcp://0.0.0.0:0", "--insecure-plain",
          "--dir", dir.toString(), "--memory-limit", "512M",
          "--max-sessions", "2", "--criu-log-level", "3", "--max-image-bytes", "8G",
          "--max-files", "5000", "--max-frame-bytes", "64K", "--handshake-timeout", "3s",
          "--idle-timeout", "2m"));
      Runnable ctrlC = backend.shutdownActions.poll(20, TimeUnit.SECONDS);
      assertThat(ctrlC).isNotNull();
      assertThat(code).isNotDone();

      ctrlC.run();

      assertThat(code.get(20, TimeUnit.SECONDS)).isZero();
      AgentSpec s = backend.agentSpec;
      assertThat(s.listen()).isEqualTo(URI.create("tcp://0.0.0.0:0"));
      assertThat(s.directory()).isEqualTo(dir);
      assertThat(s.memoryLimit()).isEqualTo(512L << 20);
      assertThat(s.maxSessions()).isEqualTo(2);
      assertThat(s.criuLogLevel()).isEqualTo(3);
      assertThat(s.limits()).isEqualTo(new AgentSpec.Limits(8L << 30, 5000, 64 * 1024,
          Duration.ofSeconds(3), Duration.ofMinutes(2)));
      assertThat(out.toString()).contains("criu4j agent listening on tcp://127.0.0.1:40123",
          "criu4j agent stopped");
      assertThat(backend.agentsClosed.get()).isPositive();
    }

    @Test
    @DisplayName("the spec becomes an agent builder the library accepts")
    void specIsAccepted() {
      AgentSpec s = new AgentSpec(URI.create("tcp://127.0.0.1:0"), dir, 1L << 20, 3, 2,
          Path.of("/usr/sbin/criu"), LinkSecurity.insecurePlainTcp(),
          new AgentSpec.Limits(1L << 30, 500, 65536, Duration.ofSeconds(3),
              Duration.ofSeconds(30)));
      assertThat(s.toBuilder(MigrationListener.NONE)).isNotNull();
    }

    @Test
    @DisplayName("an agent that cannot start exits 1 with the reason")
    void failureToStart() {
      backend.agentFailure = new MigrationException("cannot bind 10.9.9.9:7070: Cannot assign "
          + "requested address");
      assertThat(run("agent", "--listen", "tcp://10.9.9.9:7070", "--insecure-plain",
          "--dir", dir.toString()))
          .isEqualTo(1);
      assertThat(err.toString()).contains("cannot bind 10.9.9.9:7070").doesNotContain("\tat ");
    }

    @Test
    @DisplayName("bad values are usage errors")
    void badValues() {
      assertThat(run("agent", "--dir", dir.toString())).isEqualTo(2);
      assertThat(err.toString()).contains("--listen");
      assertThat(run("agent", "--listen", "tcp://h:1", "--insecure-plain", "--dir", dir.toString(),
          "--memory-limit", "lots")).isEqualTo(2);
      assertThat(err.toString()).contains("lots");
      assertThat(run("agent", "--listen", "tcp://h:1", "--insecure-plain", "--dir", dir.toString(),
          "--memory-limit", "1K")).isEqualTo(2);
      assertThat(run("agent", "--listen", "tcp://h:1", "--insecure-plain",
          "--dir", dir.resolve("missing")
          .toString())).isEqualTo(2);
      assertThat(err.toString()).contains("is not a directory");
      assertThat(run("agent", "--listen", "tcp://h:1", "--insecure-plain", "--dir", dir.toString(),
          "--max-sessions", "0")).isEqualTo(2);
      assertThat(run("agent", "--listen", "tcp://h:1", "--insecure-plain", "--dir",
          dir.toString(), "--max-frame-bytes", "2M")).isEqualTo(2);
      assertThat(err.toString()).contains("--max-frame-bytes must be 4K..1M");
      assertThat(run("agent", "--listen", "tcp://h:1", "--insecure-plain", "--dir",
          dir.toString(), "--idle-timeout", "0s")).isEqualTo(2);
      assertThat(backend.agentSpec).isNull();
    }
  }
}

package io.criu4j.it;

import io.criu4j.transport.tcp.TlsTransport;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A certificate authority in a directory, made with the project's own {@code scripts/certs.sh}
 * (so the tests also check what the demo and the documentation tell users to run), and TLS
 * transports from its host certificates.
 */
final class Pki {
  private static final Path SCRIPT = Path.of("..", "scripts", "certs.sh").toAbsolutePath()
      .normalize();

  private final Path dir;

  private Pki(Path dir) {
    this.dir = dir;
  }

  /** {@code certs.sh init dir}. */
  static Pki init(Path dir) throws IOException, InterruptedException {
    run("init", dir.toString());
    return new Pki(dir);
  }

  /** The authority that {@link #init} made in {@code dir} earlier (another JVM may have). */
  static Pki at(Path dir) {
    if (!Files.isRegularFile(dir.resolve("ca.pem"))) {
      throw new IllegalArgumentException("no certificate authority in " + dir);
    }
    return new Pki(dir);
  }

  /** The directory holding the authority and the host certificates. */
  Path directory() {
    return dir;
  }

  /** {@code certs.sh issue dir name sans...}; returns this. */
  Pki issue(String name, String... sans) throws IOException, InterruptedException {
    List<String> args = new ArrayList<>(List.of("issue", dir.toString(), name));
    args.addAll(List.of(sans));
    run(args.toArray(String[]::new));
    return this;
  }

  Path certificate(String name) {
    return dir.resolve(name + ".pem");
  }

  Path key(String name) {
    return dir.resolve(name + "-key.pem");
  }

  Path ca() {
    return dir.resolve("ca.pem");
  }

  /** A transport presenting {@code name}'s certificate and trusting this CA. */
  TlsTransport.Builder transport(String name) {
    return TlsTransport.builder().keyPair(certificate(name), key(name)).trust(ca());
  }

  private static void run(String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of("bash", SCRIPT.toString()));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException("certs.sh " + String.join(" ", args) + " failed: " + output);
    }
    if (!Files.isRegularFile(SCRIPT)) {
      throw new IOException("no " + SCRIPT);
    }
  }
}

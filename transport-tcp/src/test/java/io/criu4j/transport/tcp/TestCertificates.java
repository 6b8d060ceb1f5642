package io.criu4j.transport.tcp;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Certificates for the TLS tests, made once per build by {@code scripts/certs.sh} (openssl, no
 * network) under {@code target/test-certs}: CA "a" with a node certificate for the loopback
 * names, one for another host name, and one that expired in 2020; CA "b" with a stranger's
 * certificate for the loopback names.
 */
final class TestCertificates {
  static final Path ROOT = Path.of("target", "test-certs").toAbsolutePath();
  static final Path CA_A = ROOT.resolve("a");
  static final Path CA_B = ROOT.resolve("b");
  private static final Path SCRIPT =
      Path.of(System.getProperty("criu4j.certs.script", "../scripts/certs.sh")).toAbsolutePath();
  private static boolean made;

  private TestCertificates() {}

  /** Makes the certificates (idempotent) and returns the directory of CA "a". */
  static synchronized void make() {
    if (made) {
      return;
    }
    run(Map.of(), "init", CA_A);
    run(Map.of(), "issue", CA_A, "node", "localhost", "127.0.0.1", "::1");
    run(Map.of(), "issue", CA_A, "other-host", "other.example");
    run(Map.of("CERTS_NOT_BEFORE", "20200101000000Z", "CERTS_NOT_AFTER", "20200102000000Z"),
        "issue", CA_A, "expired", "localhost", "127.0.0.1", "::1");
    run(Map.of("CERTS_CA_NAME", "another CA"), "init", CA_B);
    run(Map.of(), "issue", CA_B, "stranger", "localhost", "127.0.0.1", "::1");
    made = true;
  }

  static Path certificate(Path ca, String name) {
    make();
    return ca.resolve(name + ".pem");
  }

  static Path key(Path ca, String name) {
    make();
    return ca.resolve(name + "-key.pem");
  }

  static Path caCertificate(Path ca) {
    make();
    return ca.resolve("ca.pem");
  }

  /** A transport with {@code name}'s key from {@code ca}, trusting the given CAs. */
  static TlsTransport.Builder transport(Path ca, String name, Path... trusted) {
    TlsTransport.Builder builder = TlsTransport.builder()
        .keyPair(certificate(ca, name), key(ca, name));
    for (Path anchor : trusted) {
      builder.trust(caCertificate(anchor));
    }
    return builder;
  }

  private static void run(Map<String, String> environment, Object... arguments) {
    List<String> command = new ArrayList<>();
    command.add(SCRIPT.toString());
    for (Object argument : arguments) {
      command.add(argument.toString());
    }
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().putAll(environment);
    try {
      Process process = builder.start();
      String output = new String(process.getInputStream().readAllBytes(),
          StandardCharsets.UTF_8);
      if (process.waitFor() != 0) {
        throw new IllegalStateException(command + " failed:\n" + output);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    if (!Files.isDirectory(ROOT)) {
      throw new IllegalStateException("no certificates in " + ROOT);
    }
  }
}

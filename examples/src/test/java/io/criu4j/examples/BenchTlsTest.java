package io.criu4j.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.transport.tcp.TlsTransport;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@DisplayName("The transfer benchmark's TLS set-up")
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BenchTlsTest {
  private static final Path CERTS_SH = Path.of("..", "scripts", "certs.sh").toAbsolutePath()
      .normalize();
  private static final InetSocketAddress ANY_LOOPBACK_PORT = new InetSocketAddress("127.0.0.1",
      0);

  @TempDir
  static Path tmp;

  /** What bench-transfer.sh makes: one CA, a certificate per side. */
  static Path dir;

  /** The same names from another CA. */
  static Path strangers;

  @BeforeAll
  static void certificates() throws Exception {
    dir = tmp.resolve("tls");
    strangers = tmp.resolve("strangers");
    for (Path d : List.of(dir, strangers)) {
      certs("init", d.toString());
      for (String role : BenchTls.ROLES) {
        certs("issue", d.toString(), role, "127.0.0.1", "localhost");
      }
    }
  }

  private static void certs(String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of("bash", CERTS_SH.toString()));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("certs.sh %s: %s", args, out).isZero();
  }

  @Test
  void names_every_file_it_lacks_and_nothing_once_certs_sh_made_them() throws IOException {
    Path empty = Files.createDirectories(tmp.resolve("empty"));
    Files.writeString(empty.resolve("ca.pem"), "");

    assertThat(BenchTls.missingFiles(empty)).extracting(p -> p.getFileName().toString())
        .containsExactly("sender.pem", "sender-key.pem", "receiver.pem", "receiver-key.pem");
    assertThat(BenchTls.missingFiles(tmp.resolve("absent"))).hasSize(5);
    assertThat(BenchTls.missingFiles(dir)).isEmpty();
  }

  @Test
  void raw_sockets_speak_mutually_authenticated_tls_1_3() throws Exception {
    try (SSLServerSocket server = BenchTls.rawServer(dir, "receiver", ANY_LOOPBACK_PORT)) {
      CompletableFuture<SSLSession> accepted = CompletableFuture.supplyAsync(() -> {
        try (SSLSocket s = (SSLSocket) server.accept()) {
          s.startHandshake();
          InputStream in = s.getInputStream();
          OutputStream out = s.getOutputStream();
          out.write(in.read() + 1);
          out.flush();
          return s.getSession();
        } catch (IOException e) {
          throw new IllegalStateException(e);
        }
      });
      try (SSLSocket client = BenchTls.rawClient(dir, "sender",
          new InetSocketAddress("127.0.0.1", server.getLocalPort()))) {
        client.getOutputStream().write(41);
        client.getOutputStream().flush();
        assertThat(client.getInputStream().read()).isEqualTo(42);
        assertThat(client.getSession().getProtocol()).isEqualTo("TLSv1.3");
        assertThat(client.getSession().getPeerPrincipal().getName()).isEqualTo("CN=receiver");
      }
      SSLSession serverSide = accepted.get(20, TimeUnit.SECONDS);
      assertThat(serverSide.getPeerPrincipal().getName()).isEqualTo("CN=sender");
    }
  }

  @Test
  void a_raw_server_turns_away_a_client_certificate_of_another_ca() throws Exception {
    try (SSLServerSocket server = BenchTls.rawServer(dir, "receiver", ANY_LOOPBACK_PORT)) {
      CompletableFuture<Throwable> refusal = CompletableFuture.supplyAsync(() -> {
        try (SSLSocket s = (SSLSocket) server.accept()) {
          s.startHandshake();
          return null;
        } catch (IOException e) {
          return e;
        }
      });
      // The stranger trusts our CA, so only the server's check of its certificate can fail.
      Path mixed = Files.createDirectories(tmp.resolve("mixed"));
      Files.copy(dir.resolve("ca.pem"), mixed.resolve("ca.pem"));
      Files.copy(BenchTls.certificate(strangers, "sender"), mixed.resolve("sender.pem"));
      Files.copy(BenchTls.key(strangers, "sender"), mixed.resolve("sender-key.pem"));
      try (SSLSocket client = BenchTls.rawClient(mixed, "sender",
          new InetSocketAddress("127.0.0.1", server.getLocalPort()))) {
        assertThatThrownBy(() -> {
          client.startHandshake();
          client.getInputStream().read(); // TLS 1.3 reports the refusal after the handshake
        }).isInstanceOf(IOException.class);
      }
      assertThat(refusal.get(20, TimeUnit.SECONDS)).isInstanceOf(SSLException.class);
    }
  }

  @Test
  void criu4j_sides_accept_each_other_and_only_each_other() throws Exception {
    TlsTransport receiver = BenchTls.transport(dir, "receiver");
    try (Listener listener = receiver.listen(URI.create("tls://127.0.0.1:0"))) {
      try (Connection c = BenchTls.transport(dir, "sender").connect(listener.address(),
              Duration.ofSeconds(20));
          Connection accepted = listener.accept(Duration.ofSeconds(20))) {
        assertThat(accepted.peer().principal().orElseThrow().getName()).isEqualTo("CN=sender");
        assertThat(c.peer().principal().orElseThrow().getName()).isEqualTo("CN=receiver");
      }
      // Same CA, but the receiver's certificate is not the sender's.
      assertThatThrownBy(() -> receiver.connect(listener.address(), Duration.ofSeconds(20))
          .close()).isInstanceOf(TransportException.class);
    }
  }

  @Test
  void a_role_other_than_sender_or_receiver_has_no_peer() {
    assertThat(BenchTls.peerOf("sender")).isEqualTo("receiver");
    assertThat(BenchTls.peerOf("receiver")).isEqualTo("sender");
    assertThatThrownBy(() -> BenchTls.peerOf("driver"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("driver");
  }
}

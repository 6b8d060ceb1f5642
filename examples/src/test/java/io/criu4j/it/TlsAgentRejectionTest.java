package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.Criu;
import io.criu4j.CriuFeatures;
import io.criu4j.MigrationAgent;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationSession;
import io.criu4j.Notifier;
import io.criu4j.TransportException;
import io.criu4j.spi.Transport;
import io.criu4j.testing.FakeCriu;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.RecordedRequest;
import io.criu4j.testing.TmpfsDir;
import io.criu4j.transport.tcp.TlsTransport;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end over {@code tls://}: a {@link MigrationAgent} listening with mutual TLS turns away
 * every peer that cannot prove who it is (a source with another CA's certificate, a TLS client
 * without a certificate, a plain TCP client speaking the control protocol, a source whose
 * subject is not allowed) before any byte of theirs reaches a session: the agent's CRIU is never
 * asked anything (not even the pre-flight's FEATURE_CHECK), no session starts, no event is
 * emitted and nothing is written to its directory. The same set-up with a good certificate does
 * reach the pre-flight, so the checks are not passing vacuously. CRIU is faked on both sides.
 */
@Timeout(value = 90, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TlsAgentRejectionTest {
  private static final CriuFeatures FEATURES = new CriuFeatures(false, true, true);
  private static final Duration PATIENCE = Duration.ofSeconds(20);

  @TempDir
  static Path pkiRoot;
  private static Pki pki;
  private static Pki rogue;

  private FakeCriu srcFake;
  private FakeCriu dstFake;
  private TmpfsDir staging;
  private TmpfsDir images;
  private Process victim;
  private MigrationAgent agent;
  private final List<MigrationEvent> agentEvents = new CopyOnWriteArrayList<>();
  private final AtomicInteger restores = new AtomicInteger();

  @BeforeAll
  static void certificates() throws Exception {
    pki = Pki.init(pkiRoot.resolve("ca")).issue("node-a", "127.0.0.1")
        .issue("node-b", "127.0.0.1");
    rogue = Pki.init(pkiRoot.resolve("rogue")).issue("node-a", "127.0.0.1");
  }

  @BeforeEach
  void setUp() throws Exception {
    srcFake = FakeCriu.start();
    dstFake = FakeCriu.start();
    staging = TmpfsDir.create("tls-src-");
    images = TmpfsDir.create("tls-dst-");
    victim = new ProcessBuilder("sleep", "300").start();
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (agent != null) {
        agent.close();
      }
      assertThat(srcFake.errors()).isEmpty();
      assertThat(dstFake.errors()).isEmpty();
    } finally {
      victim.destroyForcibly().waitFor();
      srcFake.close();
      dstFake.close();
      staging.close();
      images.close();
    }
  }

  private void startAgent(TlsTransport transport) throws Exception {
    agent = MigrationAgent.builder().listen(transport, URI.create("tls://127.0.0.1:0"))
        .directory(images.path()).criu(dstCriu()).listener(agentEvents::add)
        .restoreNotifier(new Notifier() {
          @Override
          public void preRestore() {
            restores.incrementAndGet();
          }
        }).start();
  }

  private Criu dstCriu() {
    return Criu.builder().binary(dstFake.binary()).timeout(Duration.ofSeconds(30)).build();
  }

  private MigrationException migrateWith(Transport transport) {
    srcFake.enqueue(Script.features(FEATURES, true));
    srcFake.enqueue(Script.succeed()); // CPUINFO_DUMP
    Criu criu = Criu.builder().binary(srcFake.binary()).timeout(Duration.ofSeconds(30)).build();
    try (MigrationSession s = MigrationSession.builder().pid((int) victim.pid())
        .destination(transport, agent.address()).criu(criu)
        .stagingDirectory(staging.path()).build()) {
      return catchThrowableOfType(s::migrate, MigrationException.class);
    }
  }

  private static List<String> requestTypes(FakeCriu fake) throws InterruptedException {
    List<String> out = new ArrayList<>();
    while (fake.pendingRequests() > 0) {
      RecordedRequest r = fake.takeRequest();
      out.add(r.type());
    }
    return out;
  }

  /** Nothing of the peer reached a session; the source was never frozen. */
  private void assertAgentUntouched() throws Exception {
    assertThat(requestTypes(dstFake)).as("requests to the agent's CRIU")
        .doesNotContain("FEATURE_CHECK", "CPUINFO_CHECK", "RESTORE");
    assertThat(agentEvents).as("agent events").isEmpty();
    assertThat(restores).hasValue(0);
    assertThat(agent.activeSessions()).isZero();
    assertThat(agent.completedSessions()).isZero();
    try (Stream<Path> s = Files.list(images.path())) {
      assertThat(s.toList()).as("written to the agent's directory").isEmpty();
    }
    assertThat(victim.isAlive()).isTrue();
  }

  private static ByteBuffer controlPreamble() {
    return ByteBuffer.wrap("C4JC\0\0\0\1".getBytes(StandardCharsets.ISO_8859_1));
  }

  @Test
  @DisplayName("a source with another CA's certificate fails to connect; the agent sees nothing")
  void aSourceFromAnotherCaIsRejected() throws Exception {
    startAgent(pki.transport("node-b").build());

    MigrationException e = migrateWith(rogue.transport("node-a").build());

    assertThat(e).isInstanceOf(TransportException.class).hasMessageContaining("TLS handshake");
    assertThat(requestTypes(srcFake)).doesNotContain("DUMP");
    assertAgentUntouched();
  }

  @Test
  @DisplayName("a TLS client without a certificate is cut off before its first byte is read")
  void aClientWithoutCertificateIsRejected() throws Exception {
    startAgent(pki.transport("node-b").build());
    TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
    KeyStore anchors = KeyStore.getInstance("PKCS12");
    anchors.load(null, null);
    try (InputStream in = Files.newInputStream(pki.ca())) {
      anchors.setCertificateEntry("ca", java.security.cert.CertificateFactory
          .getInstance("X.509").generateCertificate(in));
    }
    trust.init(anchors);
    SSLContext anonymous = SSLContext.getInstance("TLSv1.3");
    anonymous.init(null, trust.getTrustManagers(), null);

    try (SSLSocket socket = (SSLSocket) anonymous.getSocketFactory()
        .createSocket("127.0.0.1", agent.address().getPort())) {
      socket.setSoTimeout((int) PATIENCE.toMillis());
      socket.getOutputStream().write(controlPreamble().array());
      socket.getOutputStream().write(new byte[64 * 1024]); // "images"
      assertThat(catchThrowableOfType(() -> socket.getInputStream().read(), IOException.class))
          .as("the agent answers nothing but a TLS alert").isNotNull();
    } catch (IOException expected) {
      // the agent may already have reset the connection while the client was writing
    }
    assertAgentUntouched();
  }

  @Test
  @DisplayName("a plain TCP client speaking the control protocol gets nothing back")
  void aPlainTcpClientIsRejected() throws Exception {
    startAgent(pki.transport("node-b").build());
    try (Socket socket = new Socket("127.0.0.1", agent.address().getPort())) {
      socket.setSoTimeout((int) PATIENCE.toMillis());
      socket.getOutputStream().write(controlPreamble().array());
      socket.getOutputStream().flush();
      byte[] answer;
      try {
        answer = socket.getInputStream().readAllBytes();
      } catch (IOException reset) {
        answer = new byte[0];
      }
      // At most a TLS alert record (content type 21), then the end: never a protocol answer.
      if (answer.length > 0) {
        assertThat(answer[0]).as("record type of the agent's answer").isEqualTo((byte) 21);
        assertThat(answer.length).isLessThan(16);
      }
    }
    assertAgentUntouched();
  }

  @Test
  @DisplayName("a source of the right CA but a subject the agent does not allow is rejected")
  void aSubjectNotAllowedIsRejected() throws Exception {
    startAgent(pki.transport("node-b").allowPeers("CN=node-c").build());

    MigrationException e = migrateWith(pki.transport("node-a").build());

    assertThat(e).isInstanceOf(TransportException.class).hasMessageContaining("TLS handshake");
    assertAgentUntouched();
  }

  @Test
  @DisplayName("control: a source with a good certificate does reach the agent's pre-flight")
  void aGoodCertificateReachesThePreflight() throws Exception {
    startAgent(pki.transport("node-b").allowPeers("CN=node-a").build());
    dstFake.enqueue(Script.fail(1, "refused by the test after the handshake"));

    MigrationException e = migrateWith(pki.transport("node-a").build());

    assertThat(e).hasMessageContaining("refused by the test after the handshake");
    assertThat(requestTypes(dstFake)).contains("FEATURE_CHECK");
    assertThat(requestTypes(srcFake)).doesNotContain("DUMP");
    assertThat(victim.isAlive()).isTrue();
  }
}

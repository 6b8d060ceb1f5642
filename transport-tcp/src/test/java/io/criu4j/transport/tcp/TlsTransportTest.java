package io.criu4j.transport.tcp;

import static io.criu4j.transport.tcp.TestCertificates.CA_A;
import static io.criu4j.transport.tcp.TestCertificates.CA_B;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transports;
import io.criu4j.testing.transport.Streams;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who the TLS transport lets in: only peers with a valid certificate from a trusted CA, over
 * TLS 1.3, with the server's certificate naming the host the client asked for. Rejected peers
 * are never handed out by the listener, which keeps serving others.
 */
@Timeout(value = 30, unit = SECONDS)
class TlsTransportTest {
  private static final Duration PATIENCE = Duration.ofSeconds(10);
  /** Long enough for a handshake on a busy machine; a rejected peer never shows up at all. */
  private static final Duration NOT_ACCEPTED = Duration.ofMillis(1500);

  private final Deque<AutoCloseable> resources = new ArrayDeque<>();

  @AfterEach
  void closeEverything() throws Exception {
    while (!resources.isEmpty()) {
      resources.pop().close();
    }
  }

  private <T extends AutoCloseable> T track(T resource) {
    resources.push(resource);
    return resource;
  }

  private static TlsTransport node() {
    return TestCertificates.transport(CA_A, "node", CA_A).build();
  }

  private Listener listen(TlsTransport transport) throws IOException {
    return track(transport.listen(URI.create("tls://127.0.0.1:0")));
  }

  /** The listener hands out nothing, then still accepts a good client. */
  private void assertRejectedAndStillServing(Listener listener) throws IOException {
    assertThatThrownBy(() -> listener.accept(NOT_ACCEPTED))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ETIMEDOUT"));
    Connection good = track(node().connect(listener.address(), PATIENCE));
    Connection accepted = track(listener.accept(PATIENCE));
    Streams.writeUtf8(good, "still serving");
    good.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(accepted)).isEqualTo("still serving");
  }

  @Test
  void eachSideSeesThePeersCertificateSubjectAsPrincipal() throws Exception {
    Listener listener = listen(node());
    TlsTransport otherHost = TestCertificates.transport(CA_A, "other-host", CA_A).build();

    Connection connection = track(otherHost.connect(listener.address(), PATIENCE));
    Connection accepted = track(listener.accept(PATIENCE));

    assertThat(accepted.peer().principal()).hasValueSatisfying(
        p -> assertThat(p.getName()).isEqualTo("CN=other-host"));
    assertThat(connection.peer().principal()).hasValueSatisfying(
        p -> assertThat(p.getName()).isEqualTo("CN=node"));
    assertThat(accepted.peer().address()).startsWith("tls://127.0.0.1:");
    assertThat(connection.peer().address()).isEqualTo(listener.address().toString());
    assertThat(accepted.peer().toString()).contains("principal=CN=other-host");
  }

  @Test
  void aClientWithoutCertificateIsRejectedDuringTheHandshake() throws Exception {
    Listener listener = listen(node());
    SSLContext anonymous = rawContext("TLSv1.3", null, CA_A);

    try (SSLSocket socket = rawSocket(anonymous, listener.address())) {
      socket.getOutputStream().write("images!".getBytes(StandardCharsets.UTF_8));
      assertThatThrownBy(() -> socket.getInputStream().read())
          .isInstanceOf(IOException.class)
          .hasMessageContaining("bad_certificate");
    }

    assertRejectedAndStillServing(listener);
  }

  @Test
  void aClientCertificateFromAnotherCaIsRejected() throws Exception {
    Listener listener = listen(node());
    TlsTransport stranger = TestCertificates.transport(CA_B, "stranger", CA_A, CA_B).build();

    assertThatThrownBy(() -> track(stranger.connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("TLS handshake with " + listener.address() + " failed")
        .hasMessageContaining("certificate");

    assertRejectedAndStillServing(listener);
  }

  @Test
  void aServerCertificateFromAnotherCaIsRejectedByTheClient() throws Exception {
    TlsTransport stranger = TestCertificates.transport(CA_B, "stranger", CA_A, CA_B).build();
    Listener listener = listen(stranger);

    assertThatThrownBy(() -> track(node().connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("TLS handshake with " + listener.address() + " failed")
        .hasMessageContaining("PKIX path");
    assertThatThrownBy(() -> listener.accept(NOT_ACCEPTED))
        .isInstanceOf(TransportException.class);
  }

  @Test
  void anExpiredClientCertificateIsRejected() throws Exception {
    Listener listener = listen(node());
    TlsTransport expired = TestCertificates.transport(CA_A, "expired", CA_A).build();

    assertThatThrownBy(() -> track(expired.connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("certificate");

    assertRejectedAndStillServing(listener);
  }

  @Test
  void anExpiredServerCertificateIsRejectedByTheClient() throws Exception {
    Listener listener = listen(TestCertificates.transport(CA_A, "expired", CA_A).build());

    assertThatThrownBy(() -> track(node().connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("validity check failed");
  }

  @Test
  void aServerCertificateForAnotherHostNameIsRejected() throws Exception {
    Listener listener = listen(TestCertificates.transport(CA_A, "other-host", CA_A).build());

    assertThatThrownBy(() -> track(node().connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("127.0.0.1");
    URI byName = URI.create("tls://localhost:" + listener.address().getPort());
    assertThatThrownBy(() -> track(node().connect(byName, PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("localhost");
  }

  @Test
  void aPinnedServerNameIsCheckedInsteadOfTheAddressHost() throws Exception {
    Listener listener = listen(TestCertificates.transport(CA_A, "other-host", CA_A).build());

    TlsTransport pinned = TestCertificates.transport(CA_A, "node", CA_A)
        .expectedServerName("other.example").build();
    Connection connection = track(pinned.connect(listener.address(), PATIENCE));
    track(listener.accept(PATIENCE));
    assertThat(connection.peer().principal()).hasValueSatisfying(
        p -> assertThat(p.getName()).isEqualTo("CN=other-host"));

    Listener nodeListener = listen(node());
    assertThatThrownBy(() -> track(pinned.connect(nodeListener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("other.example");
  }

  @Test
  void aListenerWithAllowedPeersRejectsOtherSubjectsOfTheSameCa() throws Exception {
    Listener listener = listen(TestCertificates.transport(CA_A, "node", CA_A)
        .allowPeers("cn=Other-Host").build());
    TlsTransport sameCaOtherName = TestCertificates.transport(CA_A, "node", CA_A).build();

    assertThatThrownBy(() -> track(sameCaOtherName.connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("TLS handshake with " + listener.address() + " failed");
    assertThatThrownBy(() -> listener.accept(NOT_ACCEPTED))
        .isInstanceOf(TransportException.class);

    TlsTransport allowed = TestCertificates.transport(CA_A, "other-host", CA_A).build();
    track(allowed.connect(listener.address(), PATIENCE));
    Connection accepted = track(listener.accept(PATIENCE));
    assertThat(accepted.peer().principal()).hasValueSatisfying(
        p -> assertThat(p.getName()).isEqualTo("CN=other-host"));
  }

  @Test
  void aClientWithAllowedPeersRefusesAServerWithAnotherSubject() throws Exception {
    Listener listener = listen(node());
    TlsTransport picky = TestCertificates.transport(CA_A, "node", CA_A)
        .allowPeers("CN=node-b").build();

    assertThatThrownBy(() -> track(picky.connect(listener.address(), PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("CN=node is not an allowed peer [CN=node-b]");
    assertThatThrownBy(() -> TlsTransport.builder().allowPeers("node-b"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'node-b'");
  }

  @Test
  void aTls12OnlyClientIsRejected() throws Exception {
    Listener listener = listen(node());
    SSLContext tls12 = rawContext("TLSv1.2", "node", CA_A);

    assertThatThrownBy(() -> {
      try (SSLSocket socket = rawSocket(tls12, listener.address())) {
        socket.setEnabledProtocols(new String[] {"TLSv1.2"});
        socket.startHandshake();
      }
    }).isInstanceOf(IOException.class).hasMessageContaining("protocol_version");

    assertRejectedAndStillServing(listener);
  }

  @Test
  void aPlainTcpClientIsRejectedAndNeverSeesData() throws Exception {
    Listener listener = listen(node());
    InetSocketAddress address =
        new InetSocketAddress("127.0.0.1", listener.address().getPort());

    try (SocketChannel plain = SocketChannel.open(address)) {
      plain.write(ByteBuffer.wrap("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.UTF_8)));
      ByteBuffer reply = ByteBuffer.allocate(4096);
      while (plain.read(reply) >= 0 && reply.hasRemaining()) {
        // the listener answers with at most a TLS alert, then closes
      }
      reply.flip();
      assertThat(reply.remaining()).isLessThan(64);
    } catch (IOException reset) {
      // a reset is as good as a close
    }

    assertRejectedAndStillServing(listener);
  }

  @Test
  void aSilentPeerNeitherBlocksOthersNorOutlivesTheHandshakeTimeout() throws Exception {
    TlsTransport impatient = TestCertificates.transport(CA_A, "node", CA_A)
        .handshakeTimeout(Duration.ofMillis(500)).build();
    Listener listener = listen(impatient);
    InetSocketAddress address =
        new InetSocketAddress("127.0.0.1", listener.address().getPort());

    try (SocketChannel silent = SocketChannel.open(address)) {
      Connection good = track(impatient.connect(listener.address(), PATIENCE));
      Connection accepted = track(listener.accept(PATIENCE));
      assertThat(accepted.peer().principal()).isPresent();
      assertThat(good.isOpen()).isTrue();

      long start = System.nanoTime();
      int n = silent.read(ByteBuffer.allocate(64));
      assertThat(n).as("the listener hung up on the silent peer").isEqualTo(-1);
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(PATIENCE);
    }
    assertThatThrownBy(() -> listener.accept(Duration.ofMillis(200)))
        .isInstanceOf(TransportException.class);
  }

  @Test
  void aServerThatIsNotTlsMakesConnectFailInsteadOfHanging() throws Exception {
    Listener plain = track(TcpTransport.create().listen(URI.create("tcp://127.0.0.1:0")));
    URI asTls = URI.create("tls://127.0.0.1:" + plain.address().getPort());
    TlsTransport impatient = TestCertificates.transport(CA_A, "node", CA_A)
        .handshakeTimeout(Duration.ofMillis(400)).build();

    assertThatThrownBy(() -> track(impatient.connect(asTls, Duration.ZERO)))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ETIMEDOUT"))
        .hasMessageContaining(asTls.toString());
  }

  @Test
  void isDiscoveredByTheTlsSchemeWithKeysFromSystemProperties() {
    URI uri = URI.create("tls://example.org:4000");
    assertThat(new TlsTransportProvider().isAvailable()).isTrue();
    assertThatThrownBy(() -> Transports.forUri(uri))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining(TlsTransport.CERTIFICATE_PROPERTY)
        .hasMessageContaining(TlsTransport.KEY_PROPERTY)
        .hasMessageContaining(TlsTransport.TRUST_PROPERTY);

    System.setProperty(TlsTransport.CERTIFICATE_PROPERTY,
        TestCertificates.certificate(CA_A, "node").toString());
    System.setProperty(TlsTransport.KEY_PROPERTY, TestCertificates.key(CA_A, "node").toString());
    System.setProperty(TlsTransport.TRUST_PROPERTY,
        TestCertificates.caCertificate(CA_A).toString());
    try {
      assertThat(Transports.forUri(uri)).isInstanceOf(TlsTransport.class)
          .hasToString(Transports.forUri(uri).toString())
          .asString().contains("TLSv1.3", "node.pem");
    } finally {
      System.clearProperty(TlsTransport.CERTIFICATE_PROPERTY);
      System.clearProperty(TlsTransport.KEY_PROPERTY);
      System.clearProperty(TlsTransport.TRUST_PROPERTY);
    }
  }

  @Test
  void theBuilderInsistsOnKeysAndTrustAndNamesBadFiles(@TempDir Path directory)
      throws Exception {
    Path cert = TestCertificates.certificate(CA_A, "node");
    Path key = TestCertificates.key(CA_A, "node");
    assertThatThrownBy(() -> TlsTransport.builder().trust(cert).build())
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("no key material");
    assertThatThrownBy(() -> TlsTransport.builder().keyPair(cert, key).build())
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("no trust anchors");
    assertThatThrownBy(() -> TlsTransport.builder().keyPair(cert, key).keyPair(cert, key))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining(cert.toString());

    Path missing = directory.resolve("missing.pem");
    assertThatThrownBy(() -> TlsTransport.builder().keyPair(missing, key))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(missing.toString());
    Path notPem = Files.writeString(directory.resolve("junk.pem"), "junk");
    assertThatThrownBy(() -> TlsTransport.builder().trust(notPem))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(notPem.toString());
    Path sec1 = Files.writeString(directory.resolve("sec1.pem"),
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    assertThatThrownBy(() -> TlsTransport.builder().keyPair(cert, sec1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(sec1.toString())
        .hasMessageContaining("openssl pkcs8 -topk8");
    assertThatThrownBy(() -> TlsTransport.builder().handshakeTimeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("PT-1S");
    assertThatThrownBy(() -> TlsTransport.builder().expectedServerName(" "))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void keysCanComeFromAKeyStore() throws Exception {
    KeyStore store = KeyStore.getInstance("PKCS12");
    store.load(null, null);
    char[] password = "changeit".toCharArray();
    store.setKeyEntry("node", Pem.privateKey(TestCertificates.key(CA_A, "node")), password,
        Pem.certificates(TestCertificates.certificate(CA_A, "node"))
            .toArray(new java.security.cert.X509Certificate[0]));
    TlsTransport fromStore = TlsTransport.builder().keyStore(store, password)
        .trust(TestCertificates.caCertificate(CA_A)).build();
    Listener listener = listen(node());

    Connection connection = track(fromStore.connect(listener.address(), PATIENCE));
    Connection accepted = track(listener.accept(PATIENCE));
    Streams.writeUtf8(connection, "from a key store");
    connection.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(accepted)).isEqualTo("from a key store");
    assertThat(accepted.peer().principal().orElseThrow().getName()).isEqualTo("CN=node");
  }

  /** A plain JDK TLS client, to try what the transport itself never does. */
  private static SSLContext rawContext(String protocol, String keyName, Path trustedCa)
      throws Exception {
    KeyManagerFactory keys = null;
    if (keyName != null) {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      char[] password = "test".toCharArray();
      store.setKeyEntry(keyName, Pem.privateKey(TestCertificates.key(CA_A, keyName)), password,
          Pem.certificates(TestCertificates.certificate(CA_A, keyName))
              .toArray(new java.security.cert.X509Certificate[0]));
      keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      keys.init(store, password);
    }
    KeyStore trustStore = KeyStore.getInstance("PKCS12");
    trustStore.load(null, null);
    List<java.security.cert.X509Certificate> anchors =
        Pem.certificates(TestCertificates.caCertificate(trustedCa));
    trustStore.setCertificateEntry("ca", anchors.get(0));
    TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
    trust.init(trustStore);
    SSLContext context = SSLContext.getInstance(protocol);
    context.init(keys == null ? null : keys.getKeyManagers(), trust.getTrustManagers(), null);
    return context;
  }

  private static SSLSocket rawSocket(SSLContext context, URI address) throws IOException {
    SSLSocket socket = (SSLSocket) context.getSocketFactory()
        .createSocket("127.0.0.1", address.getPort());
    socket.setSoTimeout((int) PATIENCE.toMillis());
    return socket;
  }
}

package io.criu4j.transport.tcp;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.NioSockets;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;
import javax.security.auth.x500.X500Principal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The TLS {@link Transport}: addresses {@code tls://host:port}, TCP connections protected by
 * TLS 1.3 with <em>mutual</em> X.509 authentication. Both ends present a certificate, and both
 * check the other's against the configured trust anchors (normally one small private CA, see
 * {@code scripts/certs.sh}); the connecting side also checks that the server's certificate
 * names the host it connected to (or a {@linkplain Builder#expectedServerName pinned name}).
 *
 * <pre>{@code
 * Transport tls = TlsTransport.builder()
 *     .keyPair(Path.of("certs/node-a.pem"), Path.of("certs/node-a-key.pem"))
 *     .trust(Path.of("certs/ca.pem"))
 *     .build();
 * try (Listener listener = tls.listen(URI.create("tls://0.0.0.0:4000"));
 *     Connection connection = listener.accept()) {
 *   Principal who = connection.peer().principal().orElseThrow(); // CN=node-b
 * }
 * }</pre>
 *
 * <p><b>What a listener hands out.</b> The handshake runs in the background as soon as a peer
 * connects, within the {@linkplain Builder#handshakeTimeout handshake timeout}; a peer without a
 * valid certificate (none, another CA's, expired, not for client use) or without TLS 1.3 is
 * rejected during the handshake, logged at WARN, and never returned by
 * {@link Listener#accept()}, so no application byte from it is ever read. Each connection's
 * {@link io.criu4j.spi.PeerIdentity#principal()} is the X.500 subject of the peer's
 * certificate, for authorization decisions beyond "signed by our CA".
 *
 * <p><b>What connect does.</b> {@link #connect(URI, Duration)} returns only after the handshake
 * and a one-byte confirmation from the listener, so a rejected client certificate makes
 * {@code connect} fail rather than the first read. The connect timeout covers the TCP
 * connection, the handshake and the confirmation (the handshake timeout applies when the
 * connect timeout is zero).
 *
 * <p><b>Defaults.</b> TLS 1.3 only, the JDK's TLS 1.3 cipher suites, client certificates
 * required, host name verification on, handshake timeout 10 s, backlog 50, {@code TCP_NODELAY}
 * and {@code SO_KEEPALIVE} on. There is no way to turn off peer authentication; for an
 * unauthenticated, unencrypted link use {@link TcpTransport} explicitly.
 *
 * <p><b>Streams.</b> Connections keep the {@link Connection} contract: half-close sends TLS
 * {@code close_notify} (TLS 1.3 keeps the other direction open), close sends it too when it
 * can, and a TCP end of stream without {@code close_notify} is reported as an error, so a
 * truncated stream is never mistaken for a complete one. Large direct buffers (256 KiB and up)
 * give the best throughput.
 *
 * <p>Immutable and thread-safe. Holds no operating-system resources; listeners (with their
 * accept and handshake threads) and connections belong to the caller.
 *
 * @since 0.1
 */
public final class TlsTransport implements Transport {
  /** The URI scheme, {@value}. */
  public static final String SCHEME = "tls";
  /** The only protocol version enabled, {@value}. */
  public static final String PROTOCOL = "TLSv1.3";
  /** The default handshake timeout: 10 seconds. */
  public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);

  /** System property with the PEM certificate chain, for {@link #fromSystemProperties()}. */
  public static final String CERTIFICATE_PROPERTY = "criu4j.tls.certificate";
  /** System property with the PEM PKCS#8 private key, for {@link #fromSystemProperties()}. */
  public static final String KEY_PROPERTY = "criu4j.tls.key";
  /** System property with the PEM trust anchors, for {@link #fromSystemProperties()}. */
  public static final String TRUST_PROPERTY = "criu4j.tls.trust";

  private static final Logger log = LoggerFactory.getLogger(TlsTransport.class);

  private final SSLContext context;
  private final String expectedServerName;
  private final long handshakeTimeoutNanos;
  private final int backlog;
  private final String keySource;
  private final Set<X500Principal> allowedPeers;
  private final TlsConnection.PeerCheck peerCheck;

  private TlsTransport(Builder builder, SSLContext context) {
    this.context = context;
    this.expectedServerName = builder.expectedServerName;
    this.handshakeTimeoutNanos = Timeouts.toNanos("handshakeTimeout", builder.handshakeTimeout);
    this.backlog = builder.backlog;
    this.keySource = builder.keySource;
    this.allowedPeers = Set.copyOf(builder.allowedPeers);
    this.peerCheck = allowedPeers.isEmpty() ? TlsConnection.PeerCheck.ANY : this::refusal;
  }

  private String refusal(Principal principal) {
    if (principal instanceof X500Principal x && allowedPeers.contains(x)) {
      return null;
    }
    return "peer " + (principal == null ? "without a principal" : principal.getName())
        + " is not an allowed peer " + allowedPeers.stream().map(X500Principal::getName)
            .sorted().toList();
  }

  TlsConnection.PeerCheck peerCheck() {
    return peerCheck;
  }

  /** A builder; key material and trust anchors are required. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * A transport configured by the system properties {@value #CERTIFICATE_PROPERTY},
   * {@value #KEY_PROPERTY} and {@value #TRUST_PROPERTY} (PEM file paths), as used when the
   * transport is found by its scheme through {@link io.criu4j.spi.Transports#forUri(URI)}.
   *
   * @throws IllegalStateException naming the missing properties if any is unset
   * @throws IllegalArgumentException if a file cannot be read or holds no usable key material
   */
  public static TlsTransport fromSystemProperties() {
    String certificate = System.getProperty(CERTIFICATE_PROPERTY);
    String key = System.getProperty(KEY_PROPERTY);
    String trust = System.getProperty(TRUST_PROPERTY);
    if (certificate == null || key == null || trust == null) {
      throw new IllegalStateException("the tls transport needs key material: set the system "
          + "properties " + CERTIFICATE_PROPERTY + ", " + KEY_PROPERTY + " and "
          + TRUST_PROPERTY + " to PEM files (see scripts/certs.sh), or build one with "
          + "TlsTransport.builder()");
    }
    return builder().keyPair(Path.of(certificate), Path.of(key)).trust(Path.of(trust)).build();
  }

  @Override
  public String scheme() {
    return SCHEME;
  }

  long handshakeTimeoutNanos() {
    return handshakeTimeoutNanos;
  }

  @Override
  public Listener listen(URI address) throws TransportException {
    InetSocketAddress local = resolve(TcpAddresses.parse(address, SCHEME, true), address);
    ServerSocketChannel server = null;
    try {
      server = ServerSocketChannel.open();
      server.bind(local, backlog);
      URI bound = URI.create(
          TcpAddresses.format((InetSocketAddress) server.getLocalAddress(), SCHEME));
      TlsListener listener = TlsListener.start(this, server, bound, backlog);
      log.debug("listening on {} (TLS 1.3, client certificates required)", bound);
      return listener;
    } catch (IOException | RuntimeException e) {
      if (server != null) {
        NioSockets.closeQuietly(server);
      }
      IOException io = e instanceof IOException x ? x : new IOException(e);
      throw new TransportException(
          "cannot listen on " + address + ": " + e.getMessage(), Errnos.of(io), e);
    }
  }

  /** A server-side connection for an accepted channel; the caller runs the handshake. */
  TlsConnection serverConnection(SocketChannel channel, String description, String remote)
      throws IOException {
    channel.configureBlocking(true);
    configure(channel);
    SSLEngine engine = context.createSSLEngine();
    engine.setUseClientMode(false);
    SSLParameters parameters = parameters();
    parameters.setNeedClientAuth(true);
    engine.setSSLParameters(parameters);
    return new TlsConnection(channel, engine, description, remote);
  }

  @Override
  public Connection connect(URI address, Duration timeout) throws TransportException {
    InetSocketAddress unresolved = TcpAddresses.parse(address, SCHEME, false);
    long timeoutNanos = Timeouts.toNanos("timeout", timeout);
    long start = System.nanoTime();
    InetSocketAddress remote = resolve(unresolved, address);
    SocketChannel channel;
    try {
      channel = SocketChannel.open();
      try {
        configure(channel);
      } catch (IOException e) {
        NioSockets.closeQuietly(channel);
        throw e;
      }
    } catch (IOException e) {
      throw new TransportException(
          "cannot connect to " + address + ": " + e.getMessage(), Errnos.of(e), e);
    }
    NioSockets.connect(channel, remote, address, timeoutNanos);

    long handshakeNanos = handshakeTimeoutNanos;
    if (timeoutNanos != 0) {
      long left = Math.max(1, timeoutNanos - (System.nanoTime() - start));
      handshakeNanos = handshakeNanos == 0 ? left : Math.min(left, handshakeNanos);
    }
    TlsConnection connection = null;
    try {
      String local = TcpAddresses.format((InetSocketAddress) channel.getLocalAddress(), SCHEME);
      String peerHost = expectedServerName != null ? expectedServerName
          : unresolved.getHostString();
      SSLEngine engine = context.createSSLEngine(peerHost, remote.getPort());
      engine.setUseClientMode(true);
      SSLParameters parameters = parameters();
      parameters.setEndpointIdentificationAlgorithm("HTTPS");
      engine.setSSLParameters(parameters);
      connection = new TlsConnection(channel, engine, local + " -> " + address,
          TcpAddresses.format(remote, SCHEME));
      connection.handshake(handshakeNanos, peerCheck);
      return connection;
    } catch (IOException | RuntimeException e) {
      if (connection != null) {
        connection.close();
      }
      NioSockets.closeQuietly(channel);
      if (e instanceof TlsConnection.HandshakeTimeoutException) {
        throw new TransportException("connect to " + address + " timed out after "
            + Timeouts.format(handshakeNanos) + " in the TLS handshake", Errnos.ETIMEDOUT, e);
      }
      if (e instanceof ClosedByInterruptException) {
        throw new TransportException(
            "interrupted while connecting to " + address, Errnos.ECANCELED, e);
      }
      IOException io = e instanceof IOException x ? x : new IOException(e);
      throw new TransportException("TLS handshake with " + address + " failed: "
          + describe(e), Errnos.of(io), e);
    }
  }

  private static String describe(Throwable e) {
    String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    Throwable cause = e.getCause();
    if (cause != null && cause.getMessage() != null && !message.contains(cause.getMessage())) {
      message += " (" + cause.getMessage() + ")";
    }
    return message;
  }

  private SSLParameters parameters() {
    SSLParameters parameters = context.getDefaultSSLParameters();
    parameters.setProtocols(new String[] {PROTOCOL});
    return parameters;
  }

  private static void configure(SocketChannel channel) throws IOException {
    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
    channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
  }

  private static InetSocketAddress resolve(InetSocketAddress unresolved, URI address)
      throws TransportException {
    InetSocketAddress resolved =
        new InetSocketAddress(unresolved.getHostString(), unresolved.getPort());
    if (resolved.isUnresolved()) {
      throw new TransportException(
          "cannot resolve host '" + unresolved.getHostString() + "' of " + address);
    }
    return resolved;
  }

  @Override
  public String toString() {
    return "TlsTransport{protocol=" + PROTOCOL + ", key=" + keySource
        + (expectedServerName == null ? "" : ", expectedServerName=" + expectedServerName)
        + ", handshakeTimeout=" + Timeouts.format(Math.max(1, handshakeTimeoutNanos))
        + ", backlog=" + backlog
        + (allowedPeers.isEmpty() ? "" : ", allowedPeers=" + allowedPeers) + "}";
  }

  /**
   * Settings of a {@link TlsTransport}: exactly one source of this node's key and certificate
   * ({@link #keyPair} or {@link #keyStore}) and at least one source of trust anchors
   * ({@link #trust(Path)} or {@link #trustStore}). Not thread-safe; {@link #build()} makes an
   * immutable transport.
   *
   * @since 0.1
   */
  public static final class Builder {
    private KeyStore keyStore;
    private char[] keyPassword;
    private String keySource;
    private KeyStore trustStore;
    private int trustAnchors;
    private boolean ownTrustStore;
    private String expectedServerName;
    private Duration handshakeTimeout = DEFAULT_HANDSHAKE_TIMEOUT;
    private int backlog = 50;
    private final Set<X500Principal> allowedPeers = new LinkedHashSet<>();

    private Builder() {}

    /**
     * Restricts the peers to certificates with one of these subjects, such as
     * {@code CN=node-a} (X.500 names, compared in canonical form, so case and spacing do not
     * matter); may be called several times. Applies to both ends: a listener rejects other
     * clients during the handshake (never handing them out), and {@code connect} fails if the
     * server's subject is not listed. Default: any peer whose certificate the trust anchors
     * vouch for.
     *
     * @throws IllegalArgumentException if a name is not an X.500 distinguished name
     */
    public Builder allowPeers(String... subjects) {
      for (String subject : subjects) {
        Objects.requireNonNull(subject, "subject");
        try {
          allowedPeers.add(new X500Principal(subject));
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("not an X.500 name (such as CN=node-a): '"
              + subject + "'", e);
        }
      }
      return this;
    }

    /**
     * This node's certificate chain (PEM, leaf first) and its private key (unencrypted PKCS#8
     * PEM, {@code -----BEGIN PRIVATE KEY-----}), as {@code scripts/certs.sh issue} writes them.
     * The files are read now.
     *
     * @throws IllegalArgumentException naming the file if it cannot be read or parsed
     * @throws IllegalStateException if key material was already set
     */
    public Builder keyPair(Path certificateChainPem, Path privateKeyPem) {
      Objects.requireNonNull(certificateChainPem, "certificateChainPem");
      Objects.requireNonNull(privateKeyPem, "privateKeyPem");
      checkNoKey();
      List<X509Certificate> chain = Pem.certificates(certificateChainPem);
      PrivateKey key = Pem.privateKey(privateKeyPem);
      char[] password = randomPassword();
      try {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setKeyEntry("node", key, password, chain.toArray(new X509Certificate[0]));
        this.keyStore = store;
      } catch (GeneralSecurityException | IOException e) {
        throw new IllegalArgumentException("the private key in " + privateKeyPem
            + " does not fit the certificate in " + certificateChainPem + ": " + e, e);
      }
      this.keyPassword = password;
      this.keySource = certificateChainPem.toString();
      return this;
    }

    /**
     * This node's key and certificate chain from a key store holding one private-key entry
     * (if it holds several, the JDK picks one that suits the handshake).
     *
     * @param password the password of the key entry; copied
     * @throws IllegalStateException if key material was already set
     */
    public Builder keyStore(KeyStore keyStore, char[] password) {
      Objects.requireNonNull(keyStore, "keyStore");
      Objects.requireNonNull(password, "password");
      checkNoKey();
      this.keyStore = keyStore;
      this.keyPassword = password.clone();
      this.keySource = "KeyStore(" + keyStore.getType() + ")";
      return this;
    }

    /**
     * Adds the certificates in a PEM file (normally the CA certificate, {@code ca.pem}) to the
     * trust anchors: a peer is accepted if its certificate chains up to one of them. Replaces
     * a {@link #trustStore} set before.
     *
     * @throws IllegalArgumentException naming the file if it cannot be read or parsed
     */
    public Builder trust(Path trustedCertificatesPem) {
      Objects.requireNonNull(trustedCertificatesPem, "trustedCertificatesPem");
      List<X509Certificate> certificates = Pem.certificates(trustedCertificatesPem);
      try {
        if (!ownTrustStore) {
          trustStore = KeyStore.getInstance("PKCS12");
          trustStore.load(null, null);
          ownTrustStore = true;
        }
        for (X509Certificate certificate : certificates) {
          trustStore.setCertificateEntry("anchor-" + trustAnchors++, certificate);
        }
      } catch (GeneralSecurityException | IOException e) {
        throw new IllegalArgumentException(
            "cannot use the certificates in " + trustedCertificatesPem + ": " + e, e);
      }
      return this;
    }

    /**
     * Uses the trusted-certificate entries of {@code trustStore} as the trust anchors,
     * replacing any set before. Do not pass the JDK's public {@code cacerts}: any certificate a
     * public CA issued would then be accepted.
     */
    public Builder trustStore(KeyStore trustStore) {
      this.trustStore = Objects.requireNonNull(trustStore, "trustStore");
      this.ownTrustStore = false;
      return this;
    }

    /**
     * The name the server's certificate must carry, checked instead of the host of the
     * {@code tls://} address, for example when connecting by an IP address that is not in the
     * certificate. Default: none, the address's host is checked.
     *
     * @throws IllegalArgumentException if {@code name} is blank
     */
    public Builder expectedServerName(String name) {
      Objects.requireNonNull(name, "name");
      if (name.isBlank()) {
        throw new IllegalArgumentException("expectedServerName is blank: '" + name + "'");
      }
      this.expectedServerName = name.toLowerCase(Locale.ROOT);
      return this;
    }

    /**
     * How long a handshake may take, on both sides; {@link Duration#ZERO} means no limit
     * (not recommended for listeners: a silent peer would hold a handshake thread until
     * TCP gives up). Default {@link #DEFAULT_HANDSHAKE_TIMEOUT}.
     *
     * @throws IllegalArgumentException if {@code timeout} is negative
     */
    public Builder handshakeTimeout(Duration timeout) {
      Timeouts.toNanos("handshakeTimeout", timeout);
      this.handshakeTimeout = timeout;
      return this;
    }

    /**
     * How many connections a listener handshakes or holds for {@code accept} at a time, and
     * the operating system's backlog beyond that; default 50.
     */
    public Builder backlog(int backlog) {
      if (backlog < 1) {
        throw new IllegalArgumentException("backlog < 1: " + backlog);
      }
      this.backlog = backlog;
      return this;
    }

    /**
     * An immutable transport with these settings.
     *
     * @throws IllegalStateException if the key material or the trust anchors are missing
     * @throws IllegalArgumentException if the JDK cannot use them
     */
    public TlsTransport build() {
      if (keyStore == null) {
        throw new IllegalStateException(
            "no key material: call keyPair(certificatePem, keyPem) or keyStore(...)");
      }
      if (trustStore == null) {
        throw new IllegalStateException(
            "no trust anchors: call trust(caPem) or trustStore(...)");
      }
      try {
        KeyManagerFactory keys =
            KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(keyStore, keyPassword);
        TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
        trust.init(trustStore);
        SSLContext context = SSLContext.getInstance(PROTOCOL);
        context.init(keys.getKeyManagers(), trust.getTrustManagers(), new SecureRandom());
        return new TlsTransport(this, context);
      } catch (GeneralSecurityException e) {
        throw new IllegalArgumentException("cannot set up TLS with key " + keySource + ": " + e,
            e);
      }
    }

    private void checkNoKey() {
      if (keyStore != null) {
        throw new IllegalStateException("key material already set from " + keySource);
      }
    }

    private static char[] randomPassword() {
      SecureRandom random = new SecureRandom();
      char[] password = new char[24];
      for (int i = 0; i < password.length; i++) {
        password[i] = (char) ('a' + random.nextInt(26));
      }
      return password;
    }
  }
}

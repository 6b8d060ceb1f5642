package io.criu4j.examples;

import io.criu4j.transport.tcp.TlsTransport;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * The TLS set-up of {@link TransferBench}'s {@code tls} transport: a directory made by
 * {@code scripts/certs.sh} holding {@code ca.pem} and one certificate per side,
 * {@code sender.pem}/{@code sender-key.pem} and {@code receiver.pem}/{@code receiver-key.pem},
 * each good for 127.0.0.1. The criu4j sides use {@link TlsTransport} with it; the raw sides use
 * plain JDK {@link SSLSocket}s with the same certificates and the same rules (TLS 1.3 only,
 * client certificate required, server name checked), so that the two rows differ by criu4j's
 * work and not by the TLS set-up.
 *
 * <p>Stateless; thread-safe.
 */
final class BenchTls {
  /** The side names, which are also the certificates' names and common names. */
  static final List<String> ROLES = List.of("sender", "receiver");

  private static final String KEY_BEGIN = "-----BEGIN PRIVATE KEY-----";
  private static final String KEY_END = "-----END PRIVATE KEY-----";

  private BenchTls() {}

  static Path ca(Path dir) {
    return dir.resolve("ca.pem");
  }

  static Path certificate(Path dir, String role) {
    return dir.resolve(role + ".pem");
  }

  static Path key(Path dir, String role) {
    return dir.resolve(role + "-key.pem");
  }

  /** Every file the benchmark needs in {@code dir}, for a check before any side starts. */
  static List<Path> requiredFiles(Path dir) {
    List<Path> files = new ArrayList<>(List.of(ca(dir)));
    for (String role : ROLES) {
      files.add(certificate(dir, role));
      files.add(key(dir, role));
    }
    return files;
  }

  /** The files of {@link #requiredFiles} that are missing or unreadable. */
  static List<Path> missingFiles(Path dir) {
    return requiredFiles(dir).stream().filter(f -> !Files.isReadable(f)).toList();
  }

  /** The other side's name. */
  static String peerOf(String role) {
    return switch (role) {
      case "sender" -> "receiver";
      case "receiver" -> "sender";
      default -> throw new IllegalArgumentException("role is not sender or receiver: " + role);
    };
  }

  /**
   * The criu4j transport of side {@code role}: its own certificate, the CA as the only trust
   * anchor, and only the other side's subject allowed, as a deployment restricted with
   * {@code --allow-peer} would be.
   */
  static TlsTransport transport(Path dir, String role) {
    return TlsTransport.builder().keyPair(certificate(dir, role), key(dir, role))
        .trust(ca(dir)).allowPeers("CN=" + peerOf(role)).build();
  }

  /** A raw TLS 1.3 server socket on {@code address} that requires a client certificate. */
  static SSLServerSocket rawServer(Path dir, String role, InetSocketAddress address)
      throws IOException {
    SSLServerSocket server = (SSLServerSocket) context(dir, role).getServerSocketFactory()
        .createServerSocket();
    SSLParameters parameters = server.getSSLParameters();
    parameters.setProtocols(new String[] {TlsTransport.PROTOCOL});
    parameters.setNeedClientAuth(true);
    server.setSSLParameters(parameters);
    server.bind(address);
    return server;
  }

  /**
   * A raw TLS 1.3 client socket connected to {@code address}; the handshake, which checks that
   * the server's certificate names the address's host, runs at the caller's
   * {@link SSLSocket#startHandshake()} or first read or write.
   */
  static SSLSocket rawClient(Path dir, String role, InetSocketAddress address)
      throws IOException {
    SSLSocket socket = (SSLSocket) context(dir, role).getSocketFactory()
        .createSocket(address.getHostString(), address.getPort());
    try {
      SSLParameters parameters = socket.getSSLParameters();
      parameters.setProtocols(new String[] {TlsTransport.PROTOCOL});
      parameters.setEndpointIdentificationAlgorithm("HTTPS");
      socket.setSSLParameters(parameters);
      return socket;
    } catch (RuntimeException e) {
      socket.close();
      throw e;
    }
  }

  /** A TLS 1.3 context presenting {@code role}'s certificate and trusting only the CA. */
  static SSLContext context(Path dir, String role) throws IOException {
    try {
      char[] password = new char[0];
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      keys.setKeyEntry(role, privateKey(key(dir, role)), password,
          certificates(certificate(dir, role)).toArray(new Certificate[0]));
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      int i = 0;
      for (Certificate anchor : certificates(ca(dir))) {
        trust.setCertificateEntry("ca-" + i++, anchor);
      }
      KeyManagerFactory kmf =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, password);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(trust);
      SSLContext context = SSLContext.getInstance(TlsTransport.PROTOCOL);
      context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), new SecureRandom());
      return context;
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot set up TLS for " + role + " from " + dir + ": " + e, e);
    }
  }

  private static Collection<? extends Certificate> certificates(Path pem)
      throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(pem)) {
      Collection<? extends Certificate> all =
          CertificateFactory.getInstance("X.509").generateCertificates(in);
      if (all.isEmpty()) {
        throw new IOException("no certificate in " + pem);
      }
      return all;
    }
  }

  /** The unencrypted PKCS#8 key that {@code scripts/certs.sh} writes (EC; RSA also read). */
  private static PrivateKey privateKey(Path pem) throws IOException, GeneralSecurityException {
    String text = Files.readString(pem, StandardCharsets.US_ASCII);
    int begin = text.indexOf(KEY_BEGIN);
    int end = text.indexOf(KEY_END);
    if (begin < 0 || end < begin) {
      throw new IOException("no unencrypted PKCS#8 key (" + KEY_BEGIN + ") in " + pem);
    }
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(
        Base64.getMimeDecoder().decode(text.substring(begin + KEY_BEGIN.length(), end)));
    GeneralSecurityException last = null;
    for (String algorithm : List.of("EC", "RSA")) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(spec);
      } catch (GeneralSecurityException e) {
        last = e;
      }
    }
    throw new IOException("neither an EC nor an RSA key in " + pem, last);
  }
}

package io.criu4j.cli;

import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import io.criu4j.transport.tcp.TcpTransport;
import io.criu4j.transport.tcp.TlsTransport;
import java.net.URI;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the commands protect their link, once the command line is parsed: the TLS key pair and
 * CA for {@code tls://} addresses, the allowed peer subjects, and whether plain {@code tcp://}
 * was explicitly accepted. {@link #transport(URI)} builds the transport for an address.
 *
 * @param certificate this host's certificate chain (PEM), {@code null} unless {@code tls://}
 * @param key this host's PKCS#8 private key (PEM), {@code null} unless {@code tls://}
 * @param ca the trusted CA certificate(s) (PEM), {@code null} unless {@code tls://}
 * @param allowedPeers certificate subjects the peer must have (empty: any the CA signed)
 * @param insecurePlain {@code --insecure-plain}: plain TCP accepted
 */
record LinkSecurity(Path certificate, Path key, Path ca, List<String> allowedPeers,
    boolean insecurePlain) {
  private static final Logger log = LoggerFactory.getLogger(LinkSecurity.class);

  /** What {@code unix://} and {@code mem://} addresses use: their transports' own checks. */
  static final LinkSecurity NONE = new LinkSecurity(null, null, null, List.of(), false);

  LinkSecurity {
    allowedPeers = List.copyOf(allowedPeers);
  }

  /** The mutual-TLS settings of a {@code tls://} address. */
  static LinkSecurity tls(Path certificate, Path key, Path ca, List<String> allowedPeers) {
    return new LinkSecurity(Objects.requireNonNull(certificate, "certificate"),
        Objects.requireNonNull(key, "key"), Objects.requireNonNull(ca, "ca"), allowedPeers,
        false);
  }

  /** Plain TCP, explicitly accepted. */
  static LinkSecurity insecurePlainTcp() {
    return new LinkSecurity(null, null, null, List.of(), true);
  }

  /**
   * The transport for {@code address}: TLS with this key pair and CA for {@code tls://}, plain
   * TCP (with a warning in the log) for {@code tcp://} when accepted, and the scheme's default
   * transport otherwise.
   *
   * @throws IllegalArgumentException if a PEM file cannot be read or used, or plain TCP was not
   *     accepted
   */
  Transport transport(URI address) {
    String scheme = address.getScheme();
    if (TlsTransport.SCHEME.equals(scheme)) {
      if (certificate == null) {
        throw new IllegalArgumentException("tls:// needs a key pair and a CA: " + address);
      }
      return TlsTransport.builder().keyPair(certificate, key).trust(ca)
          .allowPeers(allowedPeers.toArray(String[]::new)).build();
    }
    if (TcpTransport.SCHEME.equals(scheme)) {
      if (!insecurePlain) {
        throw new IllegalArgumentException("plain tcp:// needs --insecure-plain: " + address);
      }
      log.warn("--insecure-plain: {} is plain TCP; the peer is not authenticated and the "
          + "process's memory crosses the network unencrypted", address);
      return TcpTransport.create();
    }
    return Transports.forUri(address);
  }
}

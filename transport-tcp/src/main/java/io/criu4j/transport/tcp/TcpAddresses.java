package io.criu4j.transport.tcp;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.Locale;
import java.util.Objects;

/**
 * Parsing and formatting of {@code tcp://host:port} and {@code tls://host:port} addresses.
 *
 * <p>Thread-safe; stateless.
 */
final class TcpAddresses {
  private TcpAddresses() {}

  /**
   * The host and port of {@code uri}, unresolved.
   *
   * @param forListening whether port 0 (an ephemeral port) is allowed
   * @throws IllegalArgumentException naming {@code uri} if it is not {@code tcp://host:port}
   */
  static InetSocketAddress parse(URI uri, boolean forListening) {
    return parse(uri, TcpTransport.SCHEME, forListening);
  }

  /** Like {@link #parse(URI, boolean)}, for addresses of {@code scheme} ({@code tcp} or
   * {@code tls}). */
  static InetSocketAddress parse(URI uri, String scheme, boolean forListening) {
    Objects.requireNonNull(uri, "address");
    if (uri.getScheme() == null || !scheme.equals(uri.getScheme().toLowerCase(Locale.ROOT))) {
      throw invalid(uri, scheme, "not a " + scheme + ":// address");
    }
    if (uri.isOpaque() || uri.getHost() == null) {
      throw invalid(uri, scheme, "no host (a host name needs letters, digits, '-' and '.' only)");
    }
    if (uri.getPort() == -1) {
      throw invalid(uri, scheme, "no port");
    }
    if (uri.getPort() > 0xFFFF) {
      throw invalid(uri, scheme, "port out of range");
    }
    if (uri.getPort() == 0 && !forListening) {
      throw invalid(uri, scheme, "port 0 means 'any port' and is only valid for listening");
    }
    String path = uri.getRawPath();
    if (uri.getRawUserInfo() != null || !(path.isEmpty() || path.equals("/"))
        || uri.getRawQuery() != null || uri.getRawFragment() != null) {
      throw invalid(uri, scheme, "only host and port are allowed");
    }
    String host = uri.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return InetSocketAddress.createUnresolved(host, uri.getPort());
  }

  private static IllegalArgumentException invalid(URI uri, String scheme, String reason) {
    return new IllegalArgumentException("invalid " + scheme.toUpperCase(Locale.ROOT)
        + " address '" + uri + "': " + reason + " (expected " + scheme + "://host:port)");
  }

  /** {@code tcp://ip:port} for a resolved address; IPv6 addresses in brackets. */
  static String format(InetSocketAddress address) {
    return format(address, TcpTransport.SCHEME);
  }

  /** {@code scheme://ip:port} for a resolved address; IPv6 addresses in brackets. */
  static String format(InetSocketAddress address, String scheme) {
    InetAddress ip = address.getAddress();
    if (ip == null) {
      return scheme + "://" + address.getHostString() + ":" + address.getPort();
    }
    String host = ip instanceof Inet6Address ? "[" + compress(ip.getAddress()) + "]"
        : ip.getHostAddress();
    return scheme + "://" + host + ":" + address.getPort();
  }

  /** RFC 5952 text of an IPv6 address: lower-case hex, longest run of zero groups as "::". */
  static String compress(byte[] ipv6) {
    int[] groups = new int[8];
    for (int i = 0; i < 8; i++) {
      groups[i] = ((ipv6[2 * i] & 0xFF) << 8) | (ipv6[2 * i + 1] & 0xFF);
    }
    int bestStart = -1;
    int bestLength = 1; // a single zero group is not compressed
    for (int i = 0; i < 8; ) {
      if (groups[i] != 0) {
        i++;
        continue;
      }
      int j = i;
      while (j < 8 && groups[j] == 0) {
        j++;
      }
      if (j - i > bestLength) {
        bestStart = i;
        bestLength = j - i;
      }
      i = j;
    }
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < 8; i++) {
      if (i == bestStart) {
        text.append("::");
        i += bestLength - 1;
        continue;
      }
      if (text.length() > 0 && text.charAt(text.length() - 1) != ':') {
        text.append(':');
      }
      text.append(Integer.toHexString(groups[i]));
    }
    return text.toString();
  }
}

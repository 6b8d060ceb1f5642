package io.criu4j.transport.unix;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;

/**
 * Parsing and formatting of {@code unix:///absolute/path} addresses.
 *
 * <p>Thread-safe; stateless.
 */
final class UnixAddresses {
  /** {@code sizeof(sun_path)} on Linux, including the terminating NUL. */
  private static final int SUN_PATH_SIZE = 108;

  private UnixAddresses() {}

  /**
   * The socket file of {@code uri}.
   *
   * @throws IllegalArgumentException naming {@code uri} if it is not {@code unix:///abs/path}
   */
  static Path parse(URI uri) {
    Objects.requireNonNull(uri, "address");
    if (uri.getScheme() == null
        || !UnixTransport.SCHEME.equals(uri.getScheme().toLowerCase(Locale.ROOT))) {
      throw invalid(uri, "not a unix: address");
    }
    if (uri.isOpaque() || uri.getPath() == null || !uri.getPath().startsWith("/")) {
      throw invalid(uri, "the path must be absolute");
    }
    if (uri.getRawAuthority() != null && !uri.getRawAuthority().isEmpty()) {
      throw invalid(uri, "a host is not allowed");
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null) {
      throw invalid(uri, "a query or fragment is not allowed");
    }
    String path = uri.getPath();
    if (path.endsWith("/")) {
      throw invalid(uri, "the path names a directory");
    }
    if (path.indexOf('\0') >= 0) {
      throw invalid(uri, "the path contains NUL");
    }
    int length = path.getBytes(StandardCharsets.UTF_8).length;
    if (length >= SUN_PATH_SIZE) {
      throw invalid(uri, "the path is " + length + " bytes long, the limit is "
          + (SUN_PATH_SIZE - 1));
    }
    return Path.of(path);
  }

  private static IllegalArgumentException invalid(URI uri, String reason) {
    return new IllegalArgumentException(
        "invalid Unix socket address '" + uri + "': " + reason + " (expected unix:///abs/path)");
  }

  /** {@code unix:///path} for an absolute path. */
  static URI format(Path socketFile) {
    Objects.requireNonNull(socketFile, "socketFile");
    if (!socketFile.isAbsolute()) {
      throw new IllegalArgumentException("socket path is not absolute: '" + socketFile + "'");
    }
    try {
      URI pathOnly = new URI(null, null, socketFile.toString(), null);
      return new URI(UnixTransport.SCHEME + "://" + pathOnly.getRawPath());
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("socket path cannot be a URI: '" + socketFile + "'", e);
    }
  }
}

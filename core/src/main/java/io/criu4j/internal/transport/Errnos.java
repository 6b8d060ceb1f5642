package io.criu4j.internal.transport;

import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.util.Locale;

/**
 * Recovers the errno behind a JDK socket exception, which the JDK reports only as text (the
 * {@code strerror} message), so {@link io.criu4j.TransportException#errno()} is meaningful.
 *
 * <p>Thread-safe; stateless.
 */
public final class Errnos {
  public static final int ENOENT = 2;
  public static final int EEXIST = 17;
  public static final int EPIPE = 32;
  public static final int EADDRINUSE = 98;
  public static final int ENETUNREACH = 101;
  public static final int ECONNRESET = 104;
  public static final int ENOTCONN = 107;
  public static final int ETIMEDOUT = 110;
  public static final int ECONNREFUSED = 111;
  public static final int EHOSTUNREACH = 113;
  public static final int ECANCELED = 125;

  private Errnos() {}

  /** The errno that {@code e} most likely stands for, or {@code 0} if unknown. */
  public static int of(IOException e) {
    String message = e.getMessage() == null ? "" : e.getMessage().toLowerCase(Locale.ROOT);
    if (message.contains("connection reset")) {
      return ECONNRESET;
    }
    if (message.contains("broken pipe")) {
      return EPIPE;
    }
    if (message.contains("connection refused")) {
      return ECONNREFUSED;
    }
    if (message.contains("no such file")) {
      return ENOENT;
    }
    if (message.contains("address already in use")) {
      return EADDRINUSE;
    }
    if (message.contains("timed out")) {
      return ETIMEDOUT;
    }
    if (message.contains("network is unreachable")) {
      return ENETUNREACH;
    }
    if (message.contains("no route to host") || e instanceof NoRouteToHostException) {
      return EHOSTUNREACH;
    }
    if (message.contains("not connected")) {
      return ENOTCONN;
    }
    if (e instanceof ConnectException) {
      return ECONNREFUSED;
    }
    return 0;
  }
}

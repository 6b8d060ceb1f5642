package io.criu4j.internal.transport.mem;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The in-memory transport behind {@link io.criu4j.spi.Transports#inMemory()}: addresses
 * {@code mem://name}, JVM-wide listener names, and connections made of two bounded byte
 * buffers ({@value #PIPE_CAPACITY} bytes per direction) with the blocking, half-close, close and
 * timeout behaviour of the socket transports. A listener queues at most {@value #BACKLOG}
 * connections that were not accepted yet; further connects wait, like TCP connects to a full
 * backlog, until their timeout.
 *
 * <p>Thread-safe.
 */
public final class MemTransport implements Transport {
  public static final String SCHEME = "mem";
  public static final MemTransport INSTANCE = new MemTransport();

  static final int PIPE_CAPACITY = 1 << 20;
  static final int BACKLOG = 50;

  private final ConcurrentMap<String, MemListener> listeners = new ConcurrentHashMap<>();

  private MemTransport() {}

  @Override
  public String scheme() {
    return SCHEME;
  }

  @Override
  public Listener listen(URI address) throws TransportException {
    String name = parse(address);
    URI canonical = URI.create(SCHEME + "://" + address.getRawAuthority());
    MemListener listener = new MemListener(this, name, canonical, BACKLOG);
    MemListener existing = listeners.putIfAbsent(name, listener);
    if (existing != null) {
      throw new TransportException(
          "address already in use: " + address, Errnos.EADDRINUSE, null);
    }
    return listener;
  }

  @Override
  public Connection connect(URI address, Duration timeout) throws TransportException {
    String name = parse(address);
    long timeoutNanos = Timeouts.toNanos("timeout", timeout);
    MemListener listener = listeners.get(name);
    if (listener == null) {
      throw new TransportException("cannot connect to " + address
          + ": connection refused (nobody listens there)", Errnos.ECONNREFUSED, null);
    }
    return listener.connect(address, timeoutNanos, PIPE_CAPACITY);
  }

  void remove(String name, MemListener listener) {
    listeners.remove(name, listener);
  }

  private static String parse(URI address) {
    Objects.requireNonNull(address, "address");
    if (address.getScheme() == null
        || !SCHEME.equals(address.getScheme().toLowerCase(Locale.ROOT))) {
      throw new IllegalArgumentException(
          "not a mem:// address: '" + address + "' (expected mem://name)");
    }
    if (address.isOpaque() || address.getRawAuthority() == null
        || address.getRawAuthority().isEmpty()) {
      throw new IllegalArgumentException(
          "mem address has no name: '" + address + "' (expected mem://name)");
    }
    if (!address.getRawPath().isEmpty() || address.getRawQuery() != null
        || address.getRawFragment() != null) {
      throw new IllegalArgumentException("mem address must be just mem://name, without path, "
          + "query or fragment: '" + address + "'");
    }
    return address.getAuthority();
  }

  @Override
  public String toString() {
    return "MemTransport";
  }
}

package io.criu4j.internal.transport;

import io.criu4j.TransportException;
import java.io.Closeable;
import java.io.IOException;
import java.net.SocketAddress;
import java.net.URI;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connecting JDK socket channels with a timeout, for the TCP and Unix transports.
 *
 * <p>The connect is a plain blocking {@link SocketChannel#connect}, and the {@link Watchdog}
 * closes the channel if it is still pending at the deadline. This works the same for TCP (SYNs
 * dropped by a full or unreachable listener) and Unix sockets (a full backlog makes a blocking
 * connect wait, while a non-blocking one would fail at once with {@code EAGAIN}).
 *
 * <p>Thread-safe; stateless.
 */
public final class NioSockets {
  private static final Logger log = LoggerFactory.getLogger(NioSockets.class);

  private NioSockets() {}

  /**
   * Connects {@code channel} to {@code remote}, waiting at most {@code timeoutNanos} (0: no
   * limit). Takes ownership of {@code channel}: on failure it is closed.
   *
   * @param uri names the destination in messages
   * @throws TransportException naming {@code uri}: errno {@code ETIMEDOUT} on timeout, otherwise
   *     the errno of the failure where it is known (such as {@code ECONNREFUSED})
   */
  public static void connect(SocketChannel channel, SocketAddress remote, URI uri,
      long timeoutNanos) throws TransportException {
    Deadline deadline = timeoutNanos == 0 ? null : new Deadline(channel, timeoutNanos);
    if (deadline != null) {
      Watchdog.shared().register(deadline);
    }
    try {
      channel.connect(remote);
      if (deadline != null && !deadline.finish()) {
        throw new IOException("closed by the connect timeout");
      }
    } catch (IOException e) {
      closeQuietly(channel);
      if (deadline != null && deadline.fired()) {
        throw new TransportException("connect to " + uri + " timed out after "
            + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, e);
      }
      if (e instanceof ClosedByInterruptException) {
        throw new TransportException(
            "interrupted while connecting to " + uri, Errnos.ECANCELED, e);
      }
      String detail = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
      throw new TransportException(
          "cannot connect to " + uri + ": " + detail, Errnos.of(e), e);
    } catch (RuntimeException | Error e) {
      closeQuietly(channel);
      throw e;
    } finally {
      if (deadline != null) {
        Watchdog.shared().unregister(deadline);
      }
    }
  }

  /** Closes {@code closeable}, logging (not throwing) a failure. */
  public static void closeQuietly(Closeable closeable) {
    try {
      closeable.close();
    } catch (IOException e) {
      log.debug("closing {} failed", closeable, e);
    }
  }

  /** A pending connect; the watchdog closes the channel if it is still pending at the deadline. */
  private static final class Deadline implements Watchdog.Watched {
    private static final int PENDING = 0;
    private static final int DONE = 1;
    private static final int FIRED = 2;

    private final SocketChannel channel;
    private final long start = System.nanoTime();
    private final long timeoutNanos;
    private final AtomicInteger state = new AtomicInteger(PENDING);

    Deadline(SocketChannel channel, long timeoutNanos) {
      this.channel = channel;
      this.timeoutNanos = timeoutNanos;
    }

    /** Returns false if the watchdog fired first (and closed the channel). */
    boolean finish() {
      return state.compareAndSet(PENDING, DONE);
    }

    boolean fired() {
      return state.get() == FIRED;
    }

    @Override
    public long check(long now) {
      long left = timeoutNanos - (now - start);
      if (left > 0) {
        return left;
      }
      if (state.compareAndSet(PENDING, FIRED)) {
        closeQuietly(channel);
      }
      return Long.MAX_VALUE;
    }
  }
}

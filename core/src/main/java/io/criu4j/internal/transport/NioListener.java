package io.criu4j.internal.transport;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import java.io.IOException;
import java.net.URI;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link Listener} over a bound JDK {@link ServerSocketChannel} (TCP or Unix domain). The
 * server channel is non-blocking and registered with a private {@link Selector}, so
 * {@link #accept(Duration)} can wait with a timeout and {@link #close()} can wake it up.
 *
 * <p>Owns the server channel and the selector. Thread-safe as described at {@link Listener}.
 */
public final class NioListener implements Listener {
  private static final Logger log = LoggerFactory.getLogger(NioListener.class);

  /** Turns an accepted channel into a connection: socket options, peer identity. */
  @FunctionalInterface
  public interface Acceptor {
    /**
     * Sets up {@code channel}, which is connected and in blocking mode. If this throws, the
     * listener closes {@code channel}.
     */
    Connection accept(SocketChannel channel) throws IOException;
  }

  private final ServerSocketChannel server;
  private final Selector selector;
  private final URI address;
  private final Acceptor acceptor;
  private final Runnable afterClose;
  private final ReentrantLock acceptLock = new ReentrantLock();
  private final Object closeLock = new Object();
  private volatile boolean closed;

  private NioListener(ServerSocketChannel server, Selector selector, URI address,
      Acceptor acceptor, Runnable afterClose) {
    this.server = server;
    this.selector = selector;
    this.address = address;
    this.acceptor = acceptor;
    this.afterClose = afterClose;
  }

  /**
   * Wraps a bound server channel, taking ownership of it.
   *
   * @param address the bound address, as {@link #address()} reports it
   * @param afterClose runs once after the channel is closed (a Unix listener removes its socket
   *     file); also runs if this method fails, after closing {@code server}
   */
  public static NioListener open(ServerSocketChannel server, URI address, Acceptor acceptor,
      Runnable afterClose) throws IOException {
    Objects.requireNonNull(address, "address");
    Objects.requireNonNull(acceptor, "acceptor");
    Objects.requireNonNull(afterClose, "afterClose");
    Selector selector = null;
    try {
      server.configureBlocking(false);
      selector = Selector.open();
      server.register(selector, SelectionKey.OP_ACCEPT);
      return new NioListener(server, selector, address, acceptor, afterClose);
    } catch (IOException | RuntimeException e) {
      NioSockets.closeQuietly(server);
      if (selector != null) {
        NioSockets.closeQuietly(selector);
      }
      afterClose.run();
      throw e;
    }
  }

  @Override
  public URI address() {
    return address;
  }

  @Override
  public Connection accept() throws TransportException {
    return accept(Duration.ZERO);
  }

  @Override
  public Connection accept(Duration timeout) throws TransportException {
    long timeoutNanos = Timeouts.toNanos("timeout", timeout);
    long start = System.nanoTime();
    lockForAccept(timeoutNanos);
    try {
      while (true) {
        if (closed) {
          throw closedException(null);
        }
        SocketChannel channel = server.accept();
        if (channel != null) {
          return setUp(channel);
        }
        long waitMillis = 0;
        if (timeoutNanos != 0) {
          long left = timeoutNanos - (System.nanoTime() - start);
          if (left <= 0) {
            throw new TransportException("no connection to " + address + " within "
                + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
          }
          waitMillis = Math.max(1, TimeUnit.NANOSECONDS.toMillis(left + 999_999));
        }
        if (Thread.currentThread().isInterrupted()) {
          throw new TransportException(
              "interrupted while accepting on " + address, Errnos.ECANCELED, null);
        }
        selector.select(waitMillis);
        selector.selectedKeys().clear();
      }
    } catch (ClosedSelectorException | ClosedChannelException e) {
      throw closedException(e);
    } catch (TransportException e) {
      throw e;
    } catch (IOException e) {
      if (closed) {
        throw closedException(e);
      }
      throw new TransportException(
          "accept on " + address + " failed: " + e.getMessage(), Errnos.of(e), e);
    } finally {
      acceptLock.unlock();
    }
  }

  private void lockForAccept(long timeoutNanos) throws TransportException {
    try {
      if (timeoutNanos == 0) {
        acceptLock.lockInterruptibly();
      } else if (!acceptLock.tryLock(timeoutNanos, TimeUnit.NANOSECONDS)) {
        throw new TransportException("no connection to " + address + " within "
            + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new TransportException(
          "interrupted while accepting on " + address, Errnos.ECANCELED, e);
    }
  }

  private Connection setUp(SocketChannel channel) throws TransportException {
    try {
      channel.configureBlocking(true);
      return acceptor.accept(channel);
    } catch (IOException | RuntimeException e) {
      NioSockets.closeQuietly(channel);
      throw new TransportException("setting up a connection accepted on " + address
          + " failed: " + e.getMessage(), e instanceof IOException io ? Errnos.of(io) : 0, e);
    }
  }

  private TransportException closedException(Exception cause) {
    return new TransportException("listener closed: " + address, cause);
  }

  @Override
  public boolean isOpen() {
    return !closed;
  }

  @Override
  public void close() {
    synchronized (closeLock) {
      if (closed) {
        return;
      }
      closed = true;
    }
    NioSockets.closeQuietly(server);
    // Closing the selector wakes a thread blocked in select and waits for it to leave, and
    // deregisters the server channel, which releases its file descriptor.
    NioSockets.closeQuietly(selector);
    try {
      afterClose.run();
    } catch (RuntimeException e) {
      log.warn("cleaning up after closing the listener on {} failed", address, e);
    }
    log.debug("closed listener on {}", address);
  }

  @Override
  public String toString() {
    return "listener on " + address;
  }
}

package io.criu4j.transport.tcp;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.NioSockets;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The listening end of the {@link TlsTransport}. A daemon thread accepts TCP connections as they
 * arrive and runs each TLS handshake on a thread of its own, so a slow or silent peer delays
 * nobody else; only connections whose handshake succeeded (the peer presented a certificate the
 * trust anchors vouch for) are queued for {@link #accept}. A failed handshake is logged and the
 * socket closed; no application byte is read from such a peer.
 *
 * <p>At most {@code backlog} connections are handshaking or waiting for {@code accept} at a time;
 * beyond that the accepting thread pauses, and further peers wait in the operating system's
 * backlog as they would for a plain TCP listener.
 *
 * <p>Owns the server channel, its threads, and the connections not yet accepted. Thread-safe as
 * described at {@link Listener}.
 */
final class TlsListener implements Listener {
  private static final Logger log = LoggerFactory.getLogger(TlsListener.class);
  private static final Object CLOSED = new Object();

  private final TlsTransport transport;
  private final ServerSocketChannel server;
  private final URI address;
  private final Semaphore slots;
  private final LinkedBlockingQueue<Object> ready = new LinkedBlockingQueue<>();
  private final Set<SocketChannel> handshaking = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;
  private final Object closeLock = new Object();
  private volatile boolean closed;

  private TlsListener(TlsTransport transport, ServerSocketChannel server, URI address,
      int backlog) {
    this.transport = transport;
    this.server = server;
    this.address = address;
    this.slots = new Semaphore(backlog);
    this.acceptor = new Thread(this::acceptLoop, "criu4j-tls-accept " + address);
    this.acceptor.setDaemon(true);
  }

  /** Starts accepting on {@code server}, bound and in blocking mode; takes ownership of it. */
  static TlsListener start(TlsTransport transport, ServerSocketChannel server, URI address,
      int backlog) {
    TlsListener listener = new TlsListener(transport, server, address, backlog);
    listener.acceptor.start();
    return listener;
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
    if (closed) {
      throw closedException();
    }
    Object next;
    try {
      next = timeoutNanos == 0 ? ready.take() : ready.poll(timeoutNanos, TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new TransportException(
          "interrupted while accepting on " + address, Errnos.ECANCELED, e);
    }
    if (next == null) {
      throw new TransportException("no connection to " + address + " within "
          + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
    }
    if (next == CLOSED) {
      ready.add(CLOSED); // for the next waiter
      throw closedException();
    }
    slots.release();
    return (Connection) next;
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        slots.acquire();
      } catch (InterruptedException e) {
        continue; // close() interrupts; the loop condition decides
      }
      SocketChannel channel;
      try {
        channel = server.accept();
      } catch (ClosedChannelException e) {
        slots.release();
        break;
      } catch (IOException e) {
        slots.release();
        if (closed) {
          break;
        }
        // For example EMFILE: keep the listener alive, but do not spin.
        log.warn("accepting on {} failed: {}", address, e.toString());
        sleepQuietly(100);
        continue;
      }
      handshaking.add(channel);
      if (closed) {
        discard(channel);
        break;
      }
      Thread handshake = new Thread(() -> handshake(channel), "criu4j-tls-handshake " + address);
      handshake.setDaemon(true);
      try {
        handshake.start();
      } catch (OutOfMemoryError | RuntimeException e) {
        log.warn("cannot start a handshake thread on {}: {}", address, e.toString());
        discard(channel);
      }
    }
    log.debug("stopped accepting on {}", address);
  }

  private void handshake(SocketChannel channel) {
    String remote = "unknown peer";
    TlsConnection connection = null;
    try {
      remote = TcpAddresses.format((InetSocketAddress) channel.getRemoteAddress(),
          TlsTransport.SCHEME);
      connection = transport.serverConnection(channel, address + " <- " + remote, remote);
      connection.handshake(transport.handshakeTimeoutNanos(), transport.peerCheck());
    } catch (IOException | RuntimeException e) {
      if (connection != null) {
        connection.close();
      }
      discard(channel);
      if (!closed) {
        log.warn("rejected TLS connection from {} on {}: {}", remote, address, reason(e));
        log.debug("handshake failure details", e);
      }
      return;
    }
    handshaking.remove(channel);
    log.debug("accepted TLS connection on {} from {}", address, connection.peer());
    ready.add(connection);
    if (closed) {
      drain();
    }
  }

  private static String reason(Throwable e) {
    StringBuilder text = new StringBuilder();
    for (Throwable t = e; t != null && text.length() < 400; t = t.getCause()) {
      String message = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
      if (text.indexOf(message) >= 0) {
        continue; // JDK exceptions often repeat their cause's message
      }
      if (text.length() > 0) {
        text.append(": ");
      }
      text.append(message);
    }
    return text.toString();
  }

  private void discard(SocketChannel channel) {
    if (handshaking.remove(channel)) {
      slots.release();
    }
    NioSockets.closeQuietly(channel);
  }

  /** Closes the connections nobody accepted. */
  private void drain() {
    Object next;
    boolean sawClosed = false;
    while ((next = ready.poll()) != null) {
      if (next == CLOSED) {
        sawClosed = true;
      } else {
        ((Connection) next).close();
      }
    }
    if (sawClosed || closed) {
      ready.add(CLOSED);
    }
  }

  private TransportException closedException() {
    return new TransportException("listener closed: " + address);
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
    acceptor.interrupt();
    for (SocketChannel channel : handshaking) {
      NioSockets.closeQuietly(channel);
    }
    drain();
    try {
      acceptor.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    log.debug("closed listener on {}", address);
  }

  @Override
  public String toString() {
    return "listener on " + address;
  }

  private static void sleepQuietly(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      // close() interrupts to stop the loop, which checks the flag next
    }
  }
}

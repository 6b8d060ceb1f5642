package io.criu4j.it;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.PeerIdentity;
import io.criu4j.spi.Transport;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link Transport} that forwards to a real one and injects one fault into the connections it
 * {@linkplain #connect opens}, once the bytes written through all of them together reach a
 * threshold: it {@linkplain #cutAfter cuts} the connection (closes the real connection under the
 * writer, as a reset would), or {@linkplain #holdAfter holds} the writer (the write blocks, as
 * on a stalled link, until {@link #release()} or until the connection is closed), or
 * {@linkplain #actionAfter runs an action} such as taking the network link down. Listeners are
 * not wrapped: the fault sits on the side that connects.
 *
 * <p>Exactly the bytes up to the threshold reach the peer; {@link #awaitTriggered} tells a test
 * that the fault happened, so a test of "cut mid-transfer" can prove the cut was mid-transfer.
 * Thread-safe.
 */
final class FaultyTransport implements Transport {
  /** What happens at the threshold. */
  enum Fault {
    /** Close the connection that crosses the threshold; its writer gets an exception. */
    CUT_ONE,
    /** Close every connection opened so far and fail new ones, like a link going down. */
    CUT_ALL,
    /** Block the writer that crosses the threshold until released or closed. */
    HOLD,
    /** Run an action (such as taking the network link down), then carry on writing. */
    ACTION
  }

  private final Transport delegate;
  private final Fault fault;
  private volatile long threshold;
  private final AtomicLong written = new AtomicLong();
  private final CountDownLatch triggered = new CountDownLatch(1);
  private final CountDownLatch released = new CountDownLatch(1);
  private final List<FaultyConnection> connections = new CopyOnWriteArrayList<>();
  private final Runnable action;
  private volatile boolean down;

  private FaultyTransport(Transport delegate, Fault fault, long threshold, Runnable action) {
    this.delegate = delegate;
    this.fault = fault;
    this.threshold = threshold;
    this.action = action;
  }

  /** Cuts the connection (or, with {@link Fault#CUT_ALL}, all of them) after {@code bytes}. */
  static FaultyTransport cutAfter(Transport delegate, long bytes, Fault how) {
    if (how != Fault.CUT_ONE && how != Fault.CUT_ALL) {
      throw new IllegalArgumentException("not a cut: " + how);
    }
    return new FaultyTransport(delegate, how, bytes, null);
  }

  /** Holds the writer that reaches {@code bytes} until {@link #release()} or close. */
  static FaultyTransport holdAfter(Transport delegate, long bytes) {
    return new FaultyTransport(delegate, Fault.HOLD, bytes, null);
  }

  /**
   * Runs {@code action} once, on the writer's thread, when the threshold is reached, then lets
   * the writer carry on (what happens to the bytes is up to the action).
   */
  static FaultyTransport actionAfter(Transport delegate, long bytes, Runnable action) {
    return new FaultyTransport(delegate, Fault.ACTION, bytes, action);
  }

  /** Waits until the threshold was reached; whether it was within {@code timeout}. */
  boolean awaitTriggered(Duration timeout) throws InterruptedException {
    return triggered.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  boolean triggered() {
    return triggered.getCount() == 0;
  }

  /** Bytes that went through to the real connections. */
  long bytesWritten() {
    return written.get();
  }

  /**
   * A transport that injects nothing by itself (its threshold is never reached), for a test
   * that only wants {@link #cutAll()} at a moment of its choosing.
   */
  static FaultyTransport passThrough(Transport delegate) {
    return new FaultyTransport(delegate, Fault.HOLD, Long.MAX_VALUE, null);
  }

  /**
   * Cuts every connection opened so far and fails new ones, now, whatever the threshold: as a
   * link that goes down, seen by the writers and readers of this side as a closed connection.
   * Returns how many of them were still open.
   */
  int cutAll() {
    down = true;
    triggered.countDown();
    int open = 0;
    for (FaultyConnection c : connections) {
      if (c.real.isOpen()) {
        open++;
      }
      c.real.close();
    }
    return open;
  }

  /**
   * Fails every later {@link #connect} as {@link #cutAll} does, leaving the connections open so
   * far alone: for a test that breaks those itself, below the transport.
   */
  void refuseNew() {
    down = true;
  }

  /**
   * From now on, holds every writer as {@link Fault#HOLD} does at its threshold (for a transport
   * made by {@link #passThrough} or {@link #holdAfter}), until {@link #release()} or close.
   */
  void holdNow() {
    if (fault != Fault.HOLD) {
      throw new IllegalStateException("not a holding transport: " + fault);
    }
    threshold = written.get();
  }

  /** Lets held writers continue. */
  void release() {
    released.countDown();
  }

  /** How many connections were opened through this transport. */
  int connectionsOpened() {
    return connections.size();
  }

  @Override
  public String scheme() {
    return delegate.scheme();
  }

  @Override
  public Listener listen(URI address) throws TransportException {
    return delegate.listen(address);
  }

  @Override
  public Connection connect(URI address, Duration timeout) throws TransportException {
    if (down) {
      throw new TransportException("injected fault: link to " + address + " is down");
    }
    FaultyConnection c = new FaultyConnection(delegate.connect(address, timeout));
    connections.add(c);
    return c;
  }

  /**
   * Reserves up to {@code want} bytes of the budget before the threshold; returns how many may
   * be written now (less than {@code want} means the threshold is reached after them).
   */
  private long reserve(long want) {
    while (true) {
      long now = written.get();
      long allowed = triggered() ? want : Math.min(want, Math.max(0, threshold - now));
      if (written.compareAndSet(now, now + allowed)) {
        return allowed;
      }
    }
  }

  private final class FaultyConnection implements Connection {
    private final Connection real;
    private volatile boolean closed;

    FaultyConnection(Connection real) {
      this.real = real;
    }

    @Override
    public int write(ByteBuffer src) throws TransportException {
      int total = src.remaining();
      while (src.hasRemaining()) {
        long allowed = reserve(src.remaining());
        if (allowed > 0) {
          ByteBuffer part = src.slice();
          part.limit((int) allowed);
          real.write(part);
          src.position(src.position() + (int) allowed);
        }
        if (src.hasRemaining()) {
          inject();
        }
      }
      return total;
    }

    /** The threshold is reached with bytes still to write. */
    private void inject() throws TransportException {
      boolean first = !triggered();
      triggered.countDown();
      switch (fault) {
        case CUT_ONE -> {
          real.close();
          throw new TransportException("injected fault: connection cut after " + threshold
              + " bytes");
        }
        case CUT_ALL -> {
          down = true;
          for (FaultyConnection c : connections) {
            c.real.close();
          }
          throw new TransportException("injected fault: link cut after " + threshold
              + " bytes");
        }
        case HOLD -> {
          if (!first && released.getCount() == 0) {
            return;
          }
          try {
            while (!released.await(10, TimeUnit.MILLISECONDS)) {
              if (closed) {
                throw new TransportException("connection closed while held by injected fault");
              }
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            close();
            throw new TransportException("interrupted while held by injected fault", e);
          }
        }
        case ACTION -> action.run();
        default -> throw new AssertionError(fault);
      }
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws TransportException {
      long total = 0;
      for (int i = offset; i < offset + length; i++) {
        total += write(srcs[i]);
      }
      return total;
    }

    @Override
    public long write(ByteBuffer[] srcs) throws TransportException {
      return write(srcs, 0, srcs.length);
    }

    @Override
    public int read(ByteBuffer dst) throws TransportException {
      return real.read(dst);
    }

    @Override
    public PeerIdentity peer() {
      return real.peer();
    }

    @Override
    public void shutdownOutput() throws TransportException {
      real.shutdownOutput();
    }

    @Override
    public void setReadTimeout(Duration timeout) {
      real.setReadTimeout(timeout);
    }

    @Override
    public void setWriteTimeout(Duration timeout) {
      real.setWriteTimeout(timeout);
    }

    @Override
    public boolean isOpen() {
      return !closed && real.isOpen();
    }

    @Override
    public void close() {
      closed = true;
      real.close();
    }

    @Override
    public String toString() {
      return "faulty(" + fault + " after " + threshold + ") " + real;
    }
  }
}

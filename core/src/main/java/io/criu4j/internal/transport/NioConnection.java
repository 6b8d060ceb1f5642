package io.criu4j.internal.transport;

import io.criu4j.MigrationException;
import io.criu4j.TransportException;
import io.criu4j.internal.posix.SocketFd;
import io.criu4j.spi.Connection;
import io.criu4j.spi.PeerIdentity;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link Connection} over a connected, blocking JDK {@link SocketChannel} (TCP or Unix
 * domain): reads and writes go straight to the channel, so with direct buffers there is no copy
 * and no per-byte work.
 *
 * <p>Timeouts are enforced by the shared {@link Watchdog}: while a timeout is set, each read or
 * write records its start time, and the watchdog closes the channel when one overruns; the
 * blocked call then fails with a {@link TransportException} (errno {@code ETIMEDOUT}). Without
 * timeouts, calls are plain delegations. JDK exceptions are translated to
 * {@link TransportException}s that name the connection.
 *
 * <p>Owns its channel: {@link #close()} closes it. Thread-safe as described at
 * {@link Connection}.
 */
public final class NioConnection implements Connection, SpliceTarget {
  private static final Logger log = LoggerFactory.getLogger(NioConnection.class);

  /** Operation-start value: no operation in progress. */
  private static final long IDLE = Long.MIN_VALUE;
  /** Operation-start value: the watchdog claimed the operation and is closing the channel. */
  private static final long FIRED = Long.MIN_VALUE + 1;

  private static final VarHandle READ_START;
  private static final VarHandle WRITE_START;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      READ_START = lookup.findVarHandle(NioConnection.class, "readStart", long.class);
      WRITE_START = lookup.findVarHandle(NioConnection.class, "writeStart", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final SocketChannel channel;
  private final String description;
  private final PeerIdentity peer;
  private final Watchdog.Watched watched = this::check;
  private final Object stateLock = new Object();
  /** Serializes timed reads (resp. writes), which share one start-time slot. */
  private final ReentrantLock readLock = new ReentrantLock();
  private final ReentrantLock writeLock = new ReentrantLock();

  private volatile long readTimeoutNanos;
  private volatile long writeTimeoutNanos;
  @SuppressWarnings("unused") // accessed through READ_START
  private volatile long readStart = IDLE;
  @SuppressWarnings("unused") // accessed through WRITE_START
  private volatile long writeStart = IDLE;
  /** Why the watchdog closed the connection, such as "read timed out after 2 s"; or null. */
  private volatile String timedOut;
  private volatile boolean outputShutdown;
  private volatile boolean closed;
  private boolean registered; // guarded by stateLock
  private SocketFd spliceFd; // guarded by stateLock
  private boolean spliceTried; // guarded by stateLock

  private NioConnection(SocketChannel channel, String description, PeerIdentity peer) {
    this.channel = channel;
    this.description = description;
    this.peer = peer;
  }

  /**
   * Wraps a connected channel, taking ownership of it. The channel is switched to blocking mode.
   *
   * @param description names the connection in messages, such as
   *     {@code tcp://127.0.0.1:40000 -> tcp://127.0.0.1:5000}
   */
  public static NioConnection of(SocketChannel channel, String description, PeerIdentity peer)
      throws IOException {
    Objects.requireNonNull(channel, "channel");
    Objects.requireNonNull(description, "description");
    Objects.requireNonNull(peer, "peer");
    if (!channel.isConnected()) {
      throw new IllegalArgumentException("channel is not connected: " + channel);
    }
    channel.configureBlocking(true);
    return new NioConnection(channel, description, peer);
  }

  @Override
  public PeerIdentity peer() {
    return peer;
  }

  @Override
  public int read(ByteBuffer dst) throws TransportException {
    if (readTimeoutNanos == 0) {
      try {
        return channel.read(dst);
      } catch (IOException e) {
        throw failure("read", e);
      }
    }
    readLock.lock();
    try {
      long start = begin(READ_START);
      int n;
      try {
        n = channel.read(dst);
      } catch (IOException e) {
        READ_START.compareAndSet(this, start, IDLE);
        throw failure("read", e);
      }
      if (!READ_START.compareAndSet(this, start, IDLE)) {
        throw failure("read", new AsynchronousCloseException());
      }
      return n;
    } finally {
      readLock.unlock();
    }
  }

  @Override
  public int write(ByteBuffer src) throws TransportException {
    int total = src.remaining();
    if (writeTimeoutNanos == 0) {
      try {
        while (src.hasRemaining()) {
          channel.write(src);
        }
        return total;
      } catch (IOException e) {
        throw failure("write", e);
      }
    }
    writeLock.lock();
    try {
      long start = begin(WRITE_START);
      try {
        while (src.hasRemaining()) {
          channel.write(src);
        }
      } catch (IOException e) {
        WRITE_START.compareAndSet(this, start, IDLE);
        throw failure("write", e);
      }
      if (!WRITE_START.compareAndSet(this, start, IDLE)) {
        throw failure("write", new AsynchronousCloseException());
      }
      return total;
    } finally {
      writeLock.unlock();
    }
  }

  @Override
  public long write(ByteBuffer[] srcs) throws TransportException {
    return write(srcs, 0, srcs.length);
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws TransportException {
    Objects.checkFromIndexSize(offset, length, srcs.length);
    long total = 0;
    for (int i = offset; i < offset + length; i++) {
      total += srcs[i].remaining();
    }
    if (writeTimeoutNanos == 0) {
      try {
        writeFully(srcs, offset, length, total);
        return total;
      } catch (IOException e) {
        throw failure("write", e);
      }
    }
    writeLock.lock();
    try {
      long start = begin(WRITE_START);
      try {
        writeFully(srcs, offset, length, total);
      } catch (IOException e) {
        WRITE_START.compareAndSet(this, start, IDLE);
        throw failure("write", e);
      }
      if (!WRITE_START.compareAndSet(this, start, IDLE)) {
        throw failure("write", new AsynchronousCloseException());
      }
      return total;
    } finally {
      writeLock.unlock();
    }
  }

  private void writeFully(ByteBuffer[] srcs, int offset, int length, long total)
      throws IOException {
    long written = 0;
    int first = offset;
    int end = offset + length;
    while (written < total) {
      written += channel.write(srcs, first, end - first);
      while (first < end && !srcs[first].hasRemaining()) {
        first++;
      }
    }
  }

  @Override
  public void shutdownOutput() throws TransportException {
    try {
      channel.shutdownOutput();
      outputShutdown = true;
    } catch (IOException e) {
      throw failure("shutdownOutput", e);
    }
  }

  @Override
  public void setReadTimeout(Duration timeout) {
    readTimeoutNanos = Timeouts.toNanos("readTimeout", timeout);
    timeoutsChanged();
  }

  @Override
  public void setWriteTimeout(Duration timeout) {
    writeTimeoutNanos = Timeouts.toNanos("writeTimeout", timeout);
    timeoutsChanged();
  }

  private void timeoutsChanged() {
    boolean watch = readTimeoutNanos != 0 || writeTimeoutNanos != 0;
    synchronized (stateLock) {
      if (closed) {
        return;
      }
      if (watch && !registered) {
        Watchdog.shared().register(watched);
        registered = true;
        return;
      }
      if (!watch && registered) {
        Watchdog.shared().unregister(watched);
        registered = false;
        return;
      }
    }
    if (watch) {
      Watchdog.shared().reschedule();
    }
  }

  @Override
  public boolean isOpen() {
    return !closed && channel.isOpen();
  }

  /**
   * A duplicate of the socket's descriptor, made on the first call, or {@code null} if the
   * descriptor is not accessible (see {@link ChannelFds}) or the connection is closed. Writes
   * through it bypass this connection's write timeout; the caller watches them itself.
   */
  @Override
  public SocketFd spliceFd() {
    synchronized (stateLock) {
      if (closed) {
        return null;
      }
      if (!spliceTried) {
        spliceTried = true;
        OptionalInt fd = ChannelFds.of(channel); // stateLock keeps close() out: fd stays valid
        if (fd.isPresent()) {
          try {
            spliceFd = SocketFd.duplicate(fd.getAsInt());
          } catch (MigrationException e) {
            log.debug("cannot duplicate the socket of {}: {}", description, e.getMessage());
          }
        }
      }
      return spliceFd;
    }
  }

  @Override
  public void close() {
    synchronized (stateLock) {
      if (closed) {
        return;
      }
      closed = true;
      if (registered) {
        Watchdog.shared().unregister(watched);
        registered = false;
      }
    }
    // First the duplicate: if a spliced write blocks on it, it shuts the socket down, which
    // ends that write, as closing the channel ends the channel's own blocked calls.
    if (spliceFd != null) {
      spliceFd.close();
    }
    try {
      channel.close();
    } catch (IOException e) {
      log.debug("closing {} failed", description, e);
    }
  }

  @Override
  public String toString() {
    return description;
  }

  private long begin(VarHandle slot) {
    long start = System.nanoTime();
    if (start == IDLE || start == FIRED) {
      start = FIRED + 1;
    }
    slot.setVolatile(this, start);
    return start;
  }

  /** Called by the watchdog thread. */
  private long check(long now) {
    return Math.min(
        check(READ_START, readTimeoutNanos, now, "read"),
        check(WRITE_START, writeTimeoutNanos, now, "write"));
  }

  private long check(VarHandle slot, long timeout, long now, String operation) {
    if (timeout == 0) {
      return Long.MAX_VALUE;
    }
    long start = (long) slot.getVolatile(this);
    if (start == IDLE || start == FIRED) {
      return timeout;
    }
    long elapsed = now - start;
    if (elapsed < timeout) {
      return timeout - elapsed;
    }
    if (slot.compareAndSet(this, start, FIRED)) {
      timedOut = operation + " timed out after " + Timeouts.format(timeout);
      log.debug("{} on {}; closing the connection", timedOut, description);
      close();
      return Long.MAX_VALUE;
    }
    return timeout; // the operation ended just now
  }

  private TransportException failure(String operation, IOException e) {
    String timeout = timedOut;
    if (timeout != null) {
      return new TransportException(
          timeout + "; connection closed: " + description, Errnos.ETIMEDOUT, e);
    }
    if (e instanceof ClosedByInterruptException) {
      close(); // the JDK closed the channel; release the rest
      return new TransportException(
          operation + " interrupted; connection closed: " + description, Errnos.ECANCELED, e);
    }
    if (closed || !channel.isOpen()) {
      return new TransportException("connection closed: " + description, e);
    }
    if (e instanceof ClosedChannelException && outputShutdown && !"read".equals(operation)) {
      return new TransportException("output was shut down: " + description, Errnos.EPIPE, e);
    }
    String detail = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    return new TransportException(
        operation + " failed on " + description + ": " + detail, Errnos.of(e), e);
  }
}

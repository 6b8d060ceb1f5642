package io.criu4j.internal.transport;

import io.criu4j.TransportException;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The read and write timeouts, the closed state and the failure messages of one connection over
 * a blocking JDK {@link SocketChannel}: what {@link NioConnection} and the TLS connection of the
 * TCP transport have in common.
 *
 * <p>While a timeout is set, the owner brackets each read (resp. write): {@link #beginRead()},
 * the channel call, then {@link #finishRead(long)}, or {@code throw} {@link #readFailed} if the
 * call threw. The start time goes into a volatile slot that the shared {@link Watchdog} checks;
 * when an operation overruns, the watchdog claims the slot and runs the owner's
 * {@code onTimeout} action, which closes the channel and so ends the blocked call, and the
 * operation fails with a {@link TransportException} that names the timeout (errno
 * {@code ETIMEDOUT}). A bracketed operation costs one {@link System#nanoTime()} and two atomic
 * operations, with no allocation. One read and one write may be bracketed at a time (the owner
 * serializes them); without timeouts the owner calls the channel directly.
 *
 * <p>Owns nothing: the owner closes its channel, and calls {@link #markClosed()} when it does.
 * Thread-safe.
 */
public final class ChannelWatch implements Watchdog.Watched {
  private static final Logger log = LoggerFactory.getLogger(ChannelWatch.class);

  /** Operation-start value: no operation in progress. */
  private static final long IDLE = Long.MIN_VALUE;
  /** Operation-start value: the watchdog claimed the operation and is closing the channel. */
  private static final long FIRED = Long.MIN_VALUE + 1;

  private static final VarHandle READ_START;
  private static final VarHandle WRITE_START;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      READ_START = lookup.findVarHandle(ChannelWatch.class, "readStart", long.class);
      WRITE_START = lookup.findVarHandle(ChannelWatch.class, "writeStart", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final SocketChannel channel;
  private final String description;
  private final Runnable onTimeout;
  private final Runnable onInterrupt;
  private final Object lock = new Object();

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
  private boolean registered; // guarded by lock

  /**
   * Watches the operations of the connection over {@code channel}.
   *
   * @param description names the connection in messages
   * @param onTimeout run on the watchdog thread when an operation overran: closes the channel
   *     (and must not block)
   * @param onInterrupt run by {@link #failure} when the JDK closed the channel because the
   *     calling thread was interrupted: releases the rest of the connection
   */
  public ChannelWatch(SocketChannel channel, String description, Runnable onTimeout,
      Runnable onInterrupt) {
    this.channel = Objects.requireNonNull(channel, "channel");
    this.description = Objects.requireNonNull(description, "description");
    this.onTimeout = Objects.requireNonNull(onTimeout, "onTimeout");
    this.onInterrupt = Objects.requireNonNull(onInterrupt, "onInterrupt");
  }

  /**
   * Sets the read timeout ({@link Duration#ZERO}: none).
   *
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public void setReadTimeout(Duration timeout) {
    readTimeoutNanos = Timeouts.toNanos("readTimeout", timeout);
    timeoutsChanged();
  }

  /**
   * Sets the write timeout ({@link Duration#ZERO}: none).
   *
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public void setWriteTimeout(Duration timeout) {
    writeTimeoutNanos = Timeouts.toNanos("writeTimeout", timeout);
    timeoutsChanged();
  }

  /** Whether reads have a timeout, so they are to be bracketed. */
  public boolean readTimed() {
    return readTimeoutNanos != 0;
  }

  /** Whether writes have a timeout, so they are to be bracketed. */
  public boolean writeTimed() {
    return writeTimeoutNanos != 0;
  }

  /** Marks the start of a read; returns the value to hand to {@link #finishRead}. */
  public long beginRead() {
    return begin(READ_START);
  }

  /**
   * Marks the end of the read started at {@code start}.
   *
   * @throws TransportException if the watchdog fired first (the channel is being closed, the
   *     read's result is not to be trusted)
   */
  public void finishRead(long start) throws TransportException {
    if (!READ_START.compareAndSet(this, start, IDLE)) {
      throw failure("read", new AsynchronousCloseException());
    }
  }

  /** Marks the end of the read started at {@code start}, which threw {@code e}; to throw. */
  public TransportException readFailed(long start, IOException e) {
    READ_START.compareAndSet(this, start, IDLE);
    return failure("read", e);
  }

  /** Marks the start of a write; returns the value to hand to {@link #finishWrite}. */
  public long beginWrite() {
    return begin(WRITE_START);
  }

  /** Marks the end of the write started at {@code start}; as {@link #finishRead}. */
  public void finishWrite(long start) throws TransportException {
    if (!endWrite(start)) {
      throw failure("write", new AsynchronousCloseException());
    }
  }

  /**
   * Marks the end of the operation on the write side started at {@code start}, such as a
   * shutdown; {@code false} if the watchdog fired first.
   */
  public boolean endWrite(long start) {
    return WRITE_START.compareAndSet(this, start, IDLE);
  }

  /** Marks the end of the write started at {@code start}, which threw {@code e}; to throw. */
  public TransportException writeFailed(long start, IOException e) {
    endWrite(start);
    return failure("write", e);
  }

  /** Records that the owner shut its output down (writes then fail with {@code EPIPE}). */
  public void markOutputShutdown() {
    outputShutdown = true;
  }

  /** Whether {@link #markOutputShutdown()} was called. */
  public boolean isOutputShutdown() {
    return outputShutdown;
  }

  /**
   * Marks the connection closed and stops watching it; {@code true} on the first call only. The
   * owner closes its channel itself.
   */
  public boolean markClosed() {
    synchronized (lock) {
      if (closed) {
        return false;
      }
      closed = true;
      if (registered) {
        Watchdog.shared().unregister(this);
        registered = false;
      }
      return true;
    }
  }

  /** Whether {@link #markClosed()} was called. */
  public boolean isClosed() {
    return closed;
  }

  /**
   * The exception for an operation that failed with {@code e}, naming the connection and the
   * first of: the timeout that closed it ({@code ETIMEDOUT}), an interrupt of the calling thread
   * ({@code ECANCELED}; runs {@code onInterrupt}), the connection being closed, the output having
   * been shut down ({@code EPIPE}, not for reads), or {@code e} itself.
   *
   * @param operation such as {@code "read"}, {@code "write"}, {@code "shutdownOutput"}
   */
  public TransportException failure(String operation, IOException e) {
    String timeout = timedOut;
    if (timeout != null) {
      return new TransportException(
          timeout + "; connection closed: " + description, Errnos.ETIMEDOUT, e);
    }
    if (e instanceof ClosedByInterruptException) {
      onInterrupt.run(); // the JDK closed the channel; release the rest
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

  /** Called by the watchdog thread. */
  @Override
  public long check(long now) {
    return Math.min(
        check(READ_START, readTimeoutNanos, now, "read"),
        check(WRITE_START, writeTimeoutNanos, now, "write"));
  }

  @Override
  public String toString() {
    return description;
  }

  private void timeoutsChanged() {
    boolean watch = readTimeoutNanos != 0 || writeTimeoutNanos != 0;
    synchronized (lock) {
      if (closed) {
        return;
      }
      if (watch && !registered) {
        Watchdog.shared().register(this);
        registered = true;
        return;
      }
      if (!watch && registered) {
        Watchdog.shared().unregister(this);
        registered = false;
        return;
      }
    }
    if (watch) {
      Watchdog.shared().reschedule();
    }
  }

  private long begin(VarHandle slot) {
    long start = System.nanoTime();
    if (start == IDLE || start == FIRED) {
      start = FIRED + 1;
    }
    slot.setVolatile(this, start);
    return start;
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
      onTimeout.run();
      return Long.MAX_VALUE;
    }
    return timeout; // the operation ended just now
  }
}

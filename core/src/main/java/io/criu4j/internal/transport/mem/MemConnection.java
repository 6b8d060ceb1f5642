package io.criu4j.internal.transport.mem;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.spi.Connection;
import io.criu4j.spi.PeerIdentity;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One end of an in-memory connection: reads from one {@link MemPipe}, writes to the other.
 *
 * <p>Thread-safe as described at {@link Connection}.
 */
final class MemConnection implements Connection {
  private final MemPipe in;
  private final MemPipe out;
  private final PeerIdentity peer;
  private final String description;
  private final ReentrantLock readLock = new ReentrantLock();
  private final ReentrantLock writeLock = new ReentrantLock();
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile long readTimeoutNanos;
  private volatile long writeTimeoutNanos;
  private volatile String timedOut;

  MemConnection(MemPipe in, MemPipe out, PeerIdentity peer, String description) {
    this.in = in;
    this.out = out;
    this.peer = peer;
    this.description = description;
  }

  @Override
  public PeerIdentity peer() {
    return peer;
  }

  @Override
  public int read(ByteBuffer dst) throws TransportException {
    Objects.requireNonNull(dst, "dst");
    long timeout = readTimeoutNanos;
    int n;
    readLock.lock();
    try {
      n = in.read(dst, timeout);
    } finally {
      readLock.unlock();
    }
    if (n >= MemPipe.EOF) {
      return n;
    }
    throw failure("read", n, timeout);
  }

  @Override
  public int write(ByteBuffer src) throws TransportException {
    int total = src.remaining();
    long timeout = writeTimeoutNanos;
    long deadline = System.nanoTime() + timeout;
    int status;
    writeLock.lock();
    try {
      status = out.write(src, timeout != 0, deadline);
    } finally {
      writeLock.unlock();
    }
    if (status != MemPipe.OK) {
      throw failure("write", status, timeout);
    }
    return total;
  }

  @Override
  public long write(ByteBuffer[] srcs) throws TransportException {
    return write(srcs, 0, srcs.length);
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws TransportException {
    Objects.checkFromIndexSize(offset, length, srcs.length);
    long timeout = writeTimeoutNanos;
    long deadline = System.nanoTime() + timeout;
    long total = 0;
    int status = MemPipe.OK;
    writeLock.lock();
    try {
      for (int i = offset; i < offset + length && status == MemPipe.OK; i++) {
        total += srcs[i].remaining();
        status = out.write(srcs[i], timeout != 0, deadline);
      }
    } finally {
      writeLock.unlock();
    }
    if (status != MemPipe.OK) {
      throw failure("write", status, timeout);
    }
    return total;
  }

  @Override
  public void shutdownOutput() throws TransportException {
    if (closed.get()) {
      throw failure("shutdownOutput", MemPipe.CLOSED, 0);
    }
    out.shutDownWriter();
  }

  @Override
  public void setReadTimeout(Duration timeout) {
    readTimeoutNanos = Timeouts.toNanos("readTimeout", timeout);
  }

  @Override
  public void setWriteTimeout(Duration timeout) {
    writeTimeoutNanos = Timeouts.toNanos("writeTimeout", timeout);
  }

  @Override
  public boolean isOpen() {
    return !closed.get();
  }

  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      in.closeReader();
      out.closeWriter();
    }
  }

  /** Turns a pipe status into an exception; closes the connection where the contract says so. */
  private TransportException failure(String operation, int status, long timeoutNanos) {
    switch (status) {
      case MemPipe.TIMED_OUT:
        if (!closed.get()) {
          timedOut = operation + " timed out after " + Timeouts.format(timeoutNanos);
          close();
        }
        return closedException();
      case MemPipe.INTERRUPTED:
        close();
        return new TransportException(
            operation + " interrupted; connection closed: " + description, Errnos.ECANCELED, null);
      case MemPipe.SHUT_DOWN:
        return new TransportException("output was shut down: " + description, Errnos.EPIPE, null);
      case MemPipe.BROKEN:
        return new TransportException(operation + " failed on " + description
            + ": the peer closed the connection", Errnos.EPIPE, null);
      case MemPipe.CLOSED:
      default:
        return closedException();
    }
  }

  private TransportException closedException() {
    String timeout = timedOut;
    if (timeout != null) {
      return new TransportException(
          timeout + "; connection closed: " + description, Errnos.ETIMEDOUT, null);
    }
    return new TransportException("connection closed: " + description);
  }

  @Override
  public String toString() {
    return description;
  }
}

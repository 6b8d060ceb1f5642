package io.criu4j.internal.transport;

import io.criu4j.MigrationException;
import io.criu4j.TransportException;
import io.criu4j.internal.posix.SocketFd;
import io.criu4j.spi.Connection;
import io.criu4j.spi.PeerIdentity;
import java.io.IOException;
import java.nio.ByteBuffer;
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
 * <p>Timeouts are enforced by the shared {@link Watchdog} through a {@link ChannelWatch}: while
 * a timeout is set, each read or write records its start time, and the watchdog closes the
 * channel when one overruns; the blocked call then fails with a {@link TransportException}
 * (errno {@code ETIMEDOUT}). Without timeouts, calls are plain delegations. JDK exceptions are
 * translated to {@link TransportException}s that name the connection.
 *
 * <p>Owns its channel: {@link #close()} closes it. Thread-safe as described at
 * {@link Connection}.
 */
public final class NioConnection implements Connection, SpliceTarget {
  private static final Logger log = LoggerFactory.getLogger(NioConnection.class);

  private final SocketChannel channel;
  private final String description;
  private final PeerIdentity peer;
  private final ChannelWatch watch;
  /** Orders {@link #close()} after a {@link #spliceFd()} that reads the channel's descriptor. */
  private final Object stateLock = new Object();
  /** Serializes timed reads (resp. writes), which share one start-time slot. */
  private final ReentrantLock readLock = new ReentrantLock();
  private final ReentrantLock writeLock = new ReentrantLock();

  private SocketFd spliceFd; // guarded by stateLock
  private boolean spliceTried; // guarded by stateLock

  private NioConnection(SocketChannel channel, String description, PeerIdentity peer) {
    this.channel = channel;
    this.description = description;
    this.peer = peer;
    this.watch = new ChannelWatch(channel, description, this::close, this::close);
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
    if (!watch.readTimed()) {
      try {
        return channel.read(dst);
      } catch (IOException e) {
        throw watch.failure("read", e);
      }
    }
    readLock.lock();
    try {
      long start = watch.beginRead();
      int n;
      try {
        n = channel.read(dst);
      } catch (IOException e) {
        throw watch.readFailed(start, e);
      }
      watch.finishRead(start);
      return n;
    } finally {
      readLock.unlock();
    }
  }

  @Override
  public int write(ByteBuffer src) throws TransportException {
    int total = src.remaining();
    if (!watch.writeTimed()) {
      try {
        while (src.hasRemaining()) {
          channel.write(src);
        }
        return total;
      } catch (IOException e) {
        throw watch.failure("write", e);
      }
    }
    writeLock.lock();
    try {
      long start = watch.beginWrite();
      try {
        while (src.hasRemaining()) {
          channel.write(src);
        }
      } catch (IOException e) {
        throw watch.writeFailed(start, e);
      }
      watch.finishWrite(start);
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
    if (!watch.writeTimed()) {
      try {
        writeFully(srcs, offset, length, total);
        return total;
      } catch (IOException e) {
        throw watch.failure("write", e);
      }
    }
    writeLock.lock();
    try {
      long start = watch.beginWrite();
      try {
        writeFully(srcs, offset, length, total);
      } catch (IOException e) {
        throw watch.writeFailed(start, e);
      }
      watch.finishWrite(start);
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
      watch.markOutputShutdown();
    } catch (IOException e) {
      throw watch.failure("shutdownOutput", e);
    }
  }

  @Override
  public void setReadTimeout(Duration timeout) {
    watch.setReadTimeout(timeout);
  }

  @Override
  public void setWriteTimeout(Duration timeout) {
    watch.setWriteTimeout(timeout);
  }

  @Override
  public boolean isOpen() {
    return !watch.isClosed() && channel.isOpen();
  }

  /**
   * A duplicate of the socket's descriptor, made on the first call, or {@code null} if the
   * descriptor is not accessible (see {@link ChannelFds}) or the connection is closed. Writes
   * through it bypass this connection's write timeout; the caller watches them itself.
   */
  @Override
  public SocketFd spliceFd() {
    synchronized (stateLock) {
      if (watch.isClosed()) {
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
      if (!watch.markClosed()) {
        return;
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
}

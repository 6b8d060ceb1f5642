package io.criu4j.transport.tcp;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.ChannelWatch;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.internal.transport.Watchdog;
import io.criu4j.spi.Connection;
import io.criu4j.spi.PeerIdentity;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.security.Principal;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link Connection} that runs TLS ({@link SSLEngine}) over a connected, blocking JDK
 * {@link SocketChannel}. Ciphertext moves through two direct buffers of {@value #NET_BUFFER}
 * bytes, so one system call carries many TLS records; plaintext is decrypted straight into the
 * caller's buffer when it has room for a whole record, and encrypted straight from it.
 *
 * <p>The handshake runs before the connection is handed out ({@link #handshake}); after it, the
 * accepting side sends one confirmation byte that the connecting side reads before its
 * {@code connect} returns, so a client whose certificate the server rejects learns it at once,
 * not at its first read.
 *
 * <p>Half-close sends TLS {@code close_notify} and then a TCP FIN; TLS 1.3 lets the other
 * direction go on. {@link #close()} sends {@code close_notify} too when no write is in progress,
 * so the peer can tell an orderly end from a truncation: an end of the TCP stream without
 * {@code close_notify} is reported as an error, never as end of stream.
 *
 * <p>Timeouts and interrupts work as for the plain TCP connection (a {@link ChannelWatch}): the
 * shared {@link Watchdog} closes the channel when a timed operation overruns.
 *
 * <p>Owns its channel. Thread-safe as described at {@link Connection}: {@link SSLEngine} allows
 * one {@code wrap} and one {@code unwrap} at the same time.
 */
final class TlsConnection implements Connection {
  private static final Logger log = LoggerFactory.getLogger(TlsConnection.class);

  /** Size of the ciphertext buffers: about 15 full TLS records. */
  static final int NET_BUFFER = 256 * 1024;
  /** The byte the accepting side sends after the handshake: "your certificate was accepted". */
  private static final byte ACCEPTED = 0x06;
  /** How long {@link #close()} may wait to hand {@code close_notify} to the socket. */
  private static final long CLOSE_NOTIFY_NANOS = 200_000_000L;
  private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

  private final SocketChannel channel;
  private final SSLEngine engine;
  private final String description;
  private final String peerAddress;
  private final ChannelWatch watch;
  private final ReentrantLock readLock = new ReentrantLock();
  private final ReentrantLock writeLock = new ReentrantLock();

  /** Ciphertext received and not yet decrypted, in read mode. Guarded by readLock. */
  private ByteBuffer netIn;
  /** Plaintext decrypted and not yet returned, in read mode. Guarded by readLock. */
  private ByteBuffer appIn;
  /** Ciphertext to send, in write mode; empty between calls. Guarded by writeLock. */
  private ByteBuffer netOut;
  /** Whether close_notify arrived. Guarded by readLock. */
  private boolean inputDone;

  private volatile PeerIdentity peer;
  private volatile int appBufferSize;
  private volatile int packetBufferSize;
  private volatile boolean established;

  /** Decides, after the handshake and before the confirmation, whether the peer may stay. */
  interface PeerCheck {
    PeerCheck ANY = principal -> null;

    /** Null if {@code principal} is allowed, else why not. */
    String refusal(Principal principal);
  }

  /**
   * Wraps {@code channel}, connected and in blocking mode, taking ownership of it. The engine
   * must be configured (client or server mode, parameters) and not yet have started.
   */
  TlsConnection(SocketChannel channel, SSLEngine engine, String description, String peerAddress) {
    this.channel = Objects.requireNonNull(channel, "channel");
    this.engine = Objects.requireNonNull(engine, "engine");
    this.description = Objects.requireNonNull(description, "description");
    this.peerAddress = Objects.requireNonNull(peerAddress, "peerAddress");
    this.peer = PeerIdentity.of(peerAddress);
    this.watch = new ChannelWatch(channel, description, this::abort, this::close);
    this.packetBufferSize = engine.getSession().getPacketBufferSize();
    this.appBufferSize = engine.getSession().getApplicationBufferSize();
    int net = Math.max(NET_BUFFER, packetBufferSize);
    this.netIn = ByteBuffer.allocateDirect(net).flip();
    this.netOut = ByteBuffer.allocateDirect(net);
    this.appIn = ByteBuffer.allocateDirect(appBufferSize).flip();
  }

  /**
   * Runs the TLS handshake, the {@code check} of the peer's principal and the confirmation
   * exchange, within {@code timeoutNanos} (0: no limit). On success the connection is established and {@link #peer()} carries the peer's
   * certificate principal. On failure the exception says why; the caller closes the connection.
   *
   * @throws HandshakeTimeoutException if the deadline passed
   * @throws IOException if the handshake failed, for example because a certificate was rejected
   */
  void handshake(long timeoutNanos, PeerCheck check) throws IOException {
    Objects.requireNonNull(check, "check");
    Deadline deadline = timeoutNanos == 0 ? null : new Deadline(timeoutNanos);
    if (deadline != null) {
      Watchdog.shared().register(deadline);
    }
    readLock.lock();
    writeLock.lock();
    try {
      runHandshake();
      refreshSizes();
      Principal principal = engine.getSession().getPeerPrincipal();
      peer = PeerIdentity.of(peerAddress).withPrincipal(principal);
      String refusal = check.refusal(principal);
      if (refusal != null) {
        // Before the confirmation: a refused listener-side peer sees connect fail, and a
        // refused server is never written to.
        throw new SSLHandshakeException(refusal);
      }
      if (engine.getUseClientMode()) {
        ByteBuffer confirmation = ByteBuffer.allocate(1);
        int n = readLocked(confirmation);
        if (n < 0) {
          throw new SSLHandshakeException("the peer closed the connection after the handshake "
              + "instead of confirming it");
        }
        if (confirmation.get(0) != ACCEPTED) {
          throw new SSLHandshakeException("the peer is not a criu4j TLS endpoint "
              + "(unexpected first byte " + (confirmation.get(0) & 0xFF) + ")");
        }
      } else {
        writeLocked(new ByteBuffer[] {ByteBuffer.wrap(new byte[] {ACCEPTED})}, 0, 1, 1);
      }
      if (deadline != null && !deadline.finish()) {
        throw new HandshakeTimeoutException(timeoutNanos);
      }
      established = true;
    } catch (IOException | RuntimeException e) {
      if (deadline != null && deadline.fired()) {
        HandshakeTimeoutException timeout = new HandshakeTimeoutException(timeoutNanos);
        timeout.initCause(e);
        throw timeout;
      }
      throw e;
    } finally {
      writeLock.unlock();
      readLock.unlock();
      if (deadline != null) {
        Watchdog.shared().unregister(deadline);
      }
    }
  }

  private void runHandshake() throws IOException {
    engine.beginHandshake();
    HandshakeStatus status = engine.getHandshakeStatus();
    try {
      while (true) {
        switch (status) {
          case NEED_WRAP -> {
            SSLEngineResult result = engine.wrap(EMPTY, netOut);
            status = result.getHandshakeStatus();
            if (result.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
              growOrFlushNetOut();
            } else if (result.getStatus() == SSLEngineResult.Status.CLOSED) {
              flush();
              throw new SSLHandshakeException("the TLS engine closed during the handshake");
            }
            if (status != HandshakeStatus.NEED_WRAP) {
              flush();
            }
          }
          case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
            appIn.compact();
            SSLEngineResult result;
            try {
              result = engine.unwrap(netIn, appIn);
            } finally {
              appIn.flip();
            }
            status = result.getHandshakeStatus();
            switch (result.getStatus()) {
              case BUFFER_UNDERFLOW -> {
                if (fillNetIn() < 0) {
                  throw new EOFException("the peer closed the connection during the TLS "
                      + "handshake");
                }
              }
              case BUFFER_OVERFLOW -> growAppIn();
              case CLOSED -> throw new SSLHandshakeException(
                  "the peer closed the TLS session during the handshake");
              case OK -> { }
            }
          }
          case NEED_TASK -> {
            runTasks();
            status = engine.getHandshakeStatus();
          }
          case FINISHED, NOT_HANDSHAKING -> {
            flush();
            return;
          }
        }
      }
    } catch (SSLException e) {
      sendAlert();
      throw e;
    }
  }

  /** After a failed handshake, sends the alert the engine prepared, so the peer learns why. */
  private void sendAlert() {
    try {
      engine.closeOutbound();
      for (int i = 0; i < 4 && !engine.isOutboundDone(); i++) {
        SSLEngineResult result = engine.wrap(EMPTY, netOut);
        if (result.bytesProduced() == 0 && result.getStatus() != SSLEngineResult.Status.OK) {
          break;
        }
      }
      flush();
    } catch (IOException | RuntimeException e) {
      log.debug("could not send the TLS alert on {}", description, e);
    }
  }

  @Override
  public PeerIdentity peer() {
    return peer;
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  @Override
  public int read(ByteBuffer dst) throws TransportException {
    readLock.lock();
    try {
      if (watch.isClosed()) {
        throw watch.failure("read", new ClosedChannelException());
      }
      if (!watch.readTimed()) {
        try {
          return readLocked(dst);
        } catch (IOException e) {
          throw watch.failure("read", e);
        }
      }
      long start = watch.beginRead();
      int n;
      try {
        n = readLocked(dst);
      } catch (IOException e) {
        throw watch.readFailed(start, e);
      }
      watch.finishRead(start);
      return n;
    } finally {
      readLock.unlock();
    }
  }

  private int readLocked(ByteBuffer dst) throws IOException {
    if (!dst.hasRemaining()) {
      return 0;
    }
    if (appIn.hasRemaining()) {
      return transfer(appIn, dst);
    }
    while (!inputDone) {
      int n = unwrapAvailable(dst);
      if (n != 0) {
        return n;
      }
      if (fillNetIn() < 0) {
        throw new EOFException("the peer closed the connection without TLS close_notify; "
            + "the data may be truncated");
      }
    }
    return -1;
  }

  /**
   * Decrypts the complete records in {@code netIn} into {@code dst} (directly when it has room
   * for a record, else through {@code appIn}). Returns the bytes delivered, -1 at close_notify,
   * or 0 if a complete record is missing.
   */
  private int unwrapAvailable(ByteBuffer dst) throws IOException {
    int produced = 0;
    boolean viaAppIn = false;
    while (netIn.hasRemaining() && dst.hasRemaining()) {
      SSLEngineResult result;
      if (!viaAppIn && dst.remaining() >= appBufferSize) {
        result = engine.unwrap(netIn, dst);
        produced += result.bytesProduced();
      } else if (produced == 0) {
        viaAppIn = true;
        appIn.clear();
        try {
          result = engine.unwrap(netIn, appIn);
        } finally {
          appIn.flip();
        }
        produced += transfer(appIn, dst);
      } else {
        return produced;
      }
      afterUnwrap(result.getHandshakeStatus());
      switch (result.getStatus()) {
        case OK -> { }
        case BUFFER_UNDERFLOW -> {
          return produced; // fillNetIn grows netIn if a record does not fit
        }
        case BUFFER_OVERFLOW -> {
          if (produced > 0) {
            return produced;
          }
          if (viaAppIn) {
            growAppIn();
          }
          viaAppIn = true;
        }
        case CLOSED -> {
          inputDone = true;
          return produced > 0 ? produced : -1;
        }
      }
    }
    return produced;
  }

  /** Handles post-handshake messages (TLS 1.3 session tickets and key updates). */
  private void afterUnwrap(HandshakeStatus status) throws IOException {
    if (status == HandshakeStatus.NEED_TASK) {
      runTasks();
      status = engine.getHandshakeStatus();
    }
    // A key update needs an answer; if a writer is busy, its next wrap sends it first.
    if (status == HandshakeStatus.NEED_WRAP && writeLock.tryLock()) {
      try {
        while (engine.getHandshakeStatus() == HandshakeStatus.NEED_WRAP) {
          SSLEngineResult result = engine.wrap(EMPTY, netOut);
          if (result.getStatus() != SSLEngineResult.Status.OK) {
            break;
          }
        }
        flush();
      } finally {
        writeLock.unlock();
      }
    }
  }

  /** Reads more ciphertext into {@code netIn}; returns what the channel returned. */
  private int fillNetIn() throws IOException {
    if (netIn.position() == 0 && netIn.limit() == netIn.capacity()) {
      growNetIn();
    }
    netIn.compact();
    try {
      return channel.read(netIn);
    } finally {
      netIn.flip();
    }
  }

  private void growNetIn() {
    ByteBuffer bigger = ByteBuffer.allocateDirect(netIn.capacity() + packetBufferSize);
    bigger.put(netIn).flip();
    netIn = bigger;
  }

  private void growAppIn() {
    refreshSizes();
    ByteBuffer bigger = ByteBuffer.allocateDirect(Math.max(appBufferSize, appIn.capacity() * 2));
    bigger.put(appIn).flip();
    appIn = bigger;
  }

  private void refreshSizes() {
    appBufferSize = Math.max(appBufferSize, engine.getSession().getApplicationBufferSize());
    packetBufferSize = Math.max(packetBufferSize, engine.getSession().getPacketBufferSize());
  }

  private static int transfer(ByteBuffer src, ByteBuffer dst) {
    int n = Math.min(src.remaining(), dst.remaining());
    if (n == src.remaining()) {
      dst.put(src);
    } else {
      int limit = src.limit();
      src.limit(src.position() + n);
      dst.put(src);
      src.limit(limit);
    }
    return n;
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  @Override
  public int write(ByteBuffer src) throws TransportException {
    int total = src.remaining();
    write(new ByteBuffer[] {src}, 0, 1);
    return total;
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
    writeLock.lock();
    try {
      if (watch.isClosed()) {
        throw watch.failure("write", new ClosedChannelException());
      }
      if (watch.isOutputShutdown()) {
        throw new TransportException("output was shut down: " + description, Errnos.EPIPE,
            null);
      }
      if (!watch.writeTimed()) {
        try {
          writeLocked(srcs, offset, length, total);
          return total;
        } catch (IOException e) {
          throw watch.failure("write", e);
        }
      }
      long start = watch.beginWrite();
      try {
        writeLocked(srcs, offset, length, total);
      } catch (IOException e) {
        throw watch.writeFailed(start, e);
      }
      watch.finishWrite(start);
      return total;
    } finally {
      writeLock.unlock();
    }
  }

  private void writeLocked(ByteBuffer[] srcs, int offset, int length, long total)
      throws IOException {
    long consumed = 0;
    while (consumed < total) {
      SSLEngineResult result = engine.wrap(srcs, offset, length, netOut);
      consumed += result.bytesConsumed();
      switch (result.getStatus()) {
        case OK -> {
          if (result.getHandshakeStatus() == HandshakeStatus.NEED_TASK) {
            runTasks();
          }
          if (netOut.remaining() < packetBufferSize) {
            flush();
          }
        }
        case BUFFER_OVERFLOW -> growOrFlushNetOut();
        case CLOSED -> throw new SSLException("the TLS session is closed");
        case BUFFER_UNDERFLOW -> throw new IllegalStateException("wrap underflow: " + result);
      }
    }
    flush();
  }

  private void growOrFlushNetOut() throws IOException {
    if (netOut.position() > 0) {
      flush();
      return;
    }
    refreshSizes();
    netOut = ByteBuffer.allocateDirect(Math.max(netOut.capacity() * 2, packetBufferSize));
  }

  /** Writes all of {@code netOut} to the channel and clears it. */
  private void flush() throws IOException {
    netOut.flip();
    try {
      while (netOut.hasRemaining()) {
        channel.write(netOut);
      }
    } finally {
      netOut.compact();
    }
  }

  @Override
  public void shutdownOutput() throws TransportException {
    writeLock.lock();
    try {
      if (watch.isClosed()) {
        throw watch.failure("shutdownOutput", new ClosedChannelException());
      }
      if (watch.isOutputShutdown()) {
        return;
      }
      boolean timed = watch.writeTimed();
      long start = timed ? watch.beginWrite() : 0;
      try {
        sendCloseNotify();
        channel.shutdownOutput();
        watch.markOutputShutdown();
      } catch (IOException e) {
        throw watch.failure("shutdownOutput", e);
      } finally {
        if (timed) {
          watch.endWrite(start);
        }
      }
    } finally {
      writeLock.unlock();
    }
  }

  private void sendCloseNotify() throws IOException {
    engine.closeOutbound();
    while (!engine.isOutboundDone()) {
      SSLEngineResult result = engine.wrap(EMPTY, netOut);
      if (result.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
        growOrFlushNetOut();
      } else if (result.bytesProduced() == 0) {
        break;
      }
    }
    flush();
  }

  private void runTasks() {
    Runnable task;
    while ((task = engine.getDelegatedTask()) != null) {
      task.run();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Timeouts and closing

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

  @Override
  public void close() {
    if (!watch.markClosed()) {
      return;
    }
    // An orderly close_notify lets the peer tell the end from a truncation. Skipped while a
    // write is in progress (it may be blocked; closing the channel is what releases it), and
    // bounded in time, because a full socket buffer would block it.
    if (established && !watch.isOutputShutdown() && channel.isOpen() && writeLock.tryLock()) {
      Deadline deadline = new Deadline(CLOSE_NOTIFY_NANOS);
      Watchdog.shared().register(deadline);
      try {
        sendCloseNotify();
      } catch (IOException | RuntimeException e) {
        log.debug("no close_notify on {}: {}", description, e.toString());
      } finally {
        Watchdog.shared().unregister(deadline);
        writeLock.unlock();
      }
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

  /** Closes without close_notify: after a timeout the stream position is unknown. */
  private void abort() {
    watch.markClosed();
    try {
      channel.close();
    } catch (IOException e) {
      log.debug("closing {} failed", description, e);
    }
  }

  /** The handshake did not finish in time. */
  static final class HandshakeTimeoutException extends IOException {
    private static final long serialVersionUID = 1L;

    HandshakeTimeoutException(long timeoutNanos) {
      super("TLS handshake timed out after " + Timeouts.format(timeoutNanos));
    }
  }

  /** A deadline for the handshake or the closing close_notify: closes the channel when due. */
  private final class Deadline implements Watchdog.Watched {
    private static final int PENDING = 0;
    private static final int DONE = 1;
    private static final int FIRED_STATE = 2;

    private final long start = System.nanoTime();
    private final long timeoutNanos;
    private final java.util.concurrent.atomic.AtomicInteger state =
        new java.util.concurrent.atomic.AtomicInteger(PENDING);

    Deadline(long timeoutNanos) {
      this.timeoutNanos = timeoutNanos;
    }

    boolean finish() {
      return state.compareAndSet(PENDING, DONE);
    }

    boolean fired() {
      return state.get() == FIRED_STATE;
    }

    @Override
    public long check(long now) {
      long left = timeoutNanos - (now - start);
      if (left > 0) {
        return left;
      }
      if (state.compareAndSet(PENDING, FIRED_STATE)) {
        try {
          channel.close();
        } catch (IOException e) {
          log.debug("closing {} failed", description, e);
        }
      }
      return Long.MAX_VALUE;
    }
  }
}

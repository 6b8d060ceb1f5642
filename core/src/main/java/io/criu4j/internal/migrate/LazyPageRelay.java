package io.criu4j.internal.migrate;

import io.criu4j.MigrationException;
import io.criu4j.TransportException;
import io.criu4j.internal.transport.NioSockets;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries one CRIU lazy-pages conversation (post-copy) between a local TCP socket and a
 * transport connection. On the source the socket leads to the dumping CRIU's lazy page server;
 * on the destination it comes from the {@code criu lazy-pages} daemon.
 *
 * <p>The bytes travel in frames, an int32 length and then that many bytes, so that the end is
 * explicit: a frame of length {@link #END} says the sending side finished well, {@link #FAIL}
 * that it did not. A connection that ends or breaks without either is a failure, never an end.
 * This matters because a clean end of CRIU's socket is what makes the source's CRIU kill the
 * original tree, and a broken one what makes it resume the tree: only the destination's END,
 * sent once its daemon exited successfully, may lead to the first.
 *
 * <p>Owns the socket and the connection once {@link #start} was called; {@link #close()} closes
 * both. Thread-safe.
 */
final class LazyPageRelay implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(LazyPageRelay.class);
  static final int END = 0;
  static final int FAIL = -1;
  private static final int CHUNK = 256 * 1024;
  /**
   * How long a failure waits to send FAIL while the sending thread is inside a write: longer
   * means the connection is stalled, and it is closed instead.
   */
  private static final Duration MARKER_WAIT = Duration.ofSeconds(1);

  /** Where a failure was first seen. */
  enum Cause {
    /** The local socket broke or ended before the peer's END (or its end was not a good one). */
    LOCAL,
    /** This side decided to stop (a timeout, a cancellation, a close). */
    ABORT,
    /** The peer sent FAIL: it has already made sure its side stops, so nothing is awaited. */
    PEER,
    /** The connection ended or broke without END or FAIL. */
    CONNECTION
  }

  /** What one side does when the relay fails; called once, from the thread that saw it. */
  interface Side {
    /** The local socket ended; true if that is a good end (the peer gets END), else false. */
    boolean localEnded();

    /**
     * Called first: the destination kills its restored tree here, before the source can learn
     * of the failure and resume the original.
     */
    void stopLocalCopy(String why);

    /**
     * How long to wait, after telling the peer, for the peer to hang up before the local socket
     * is reset. The source waits here when the connection broke, so that the destination stops
     * its copy before the source's CRIU resumes the original; zero for the destination. Not
     * asked when the peer sent FAIL ({@link Cause#PEER}): the peer has stopped already.
     */
    Duration fence(Cause cause);
  }

  private final String label;
  private final Side side;
  private final ReentrantLock writeLock = new ReentrantLock();
  /** Set once, by the first of success and failure: the other then does nothing. */
  private final AtomicBoolean settled = new AtomicBoolean();
  /** The thread that failed the relay, while it does (waits its fence, closes). */
  private volatile Thread failing;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private volatile SocketChannel local;
  private volatile Connection remote;
  private volatile boolean endSent;
  private volatile boolean endReceived;
  private volatile boolean closed;
  private volatile Thread inbound;
  private volatile long bytesDown;
  private volatile long bytesUp;

  LazyPageRelay(String label, Side side) {
    this.label = label;
    this.side = side;
  }

  /** Starts relaying; takes ownership of both. */
  void start(SocketChannel localSocket, Connection connection) {
    synchronized (this) {
      if (closed) {
        NioSockets.closeQuietly(localSocket);
        connection.close();
        return;
      }
      this.local = localSocket;
      this.remote = connection;
    }
    try {
      // Closing the socket, also by the death of this process, then resets it instead of ending
      // it: a clean end is only ever the shutdown after the peer's END.
      localSocket.setOption(StandardSocketOptions.SO_LINGER, 0);
      // Page requests are a few dozen bytes each and wait for their answer: no Nagle delay.
      localSocket.setOption(StandardSocketOptions.TCP_NODELAY, true);
      // An answer is up to a few hundred KiB of pages: let it pass in one go.
      localSocket.setOption(StandardSocketOptions.SO_RCVBUF, CHUNK * 4);
      localSocket.setOption(StandardSocketOptions.SO_SNDBUF, CHUNK * 4);
    } catch (IOException e) {
      fail("cannot set SO_LINGER on the local socket: " + e, Cause.LOCAL);
      return;
    }
    Thread in = thread("in", this::remoteToLocal);
    inbound = in;
    thread("out", this::localToRemote).start();
    in.start();
  }

  /** Completes when both sides sent END; fails with the reason of the first failure. */
  CompletableFuture<Void> done() {
    return done;
  }

  /** Whether the peer sent END: on the source, the destination's daemon finished well. */
  boolean endReceived() {
    return endReceived;
  }

  /** Bytes read from the local socket and sent, and bytes received and written to it. */
  long bytesOut() {
    return bytesUp;
  }

  long bytesIn() {
    return bytesDown;
  }

  private Thread thread(String what, Runnable body) {
    Thread t = new Thread(body, "criu4j-" + label + "-lazy-" + what);
    t.setDaemon(true);
    return t;
  }

  private void localToRemote() {
    ByteBuffer header = ByteBuffer.allocate(4);
    ByteBuffer data = ByteBuffer.allocateDirect(CHUNK);
    try {
      while (true) {
        data.clear();
        int n;
        try {
          n = local.read(data);
        } catch (IOException e) {
          fail("the local socket failed: " + e, Cause.LOCAL);
          return;
        }
        if (n < 0) {
          break;
        }
        data.flip();
        header.clear();
        header.putInt(n).flip();
        writeLock.lock();
        try {
          remote.write(new ByteBuffer[] {header, data});
        } finally {
          writeLock.unlock();
        }
        bytesUp += n;
      }
      if (!side.localEnded()) {
        fail("the local side did not end well", Cause.LOCAL);
        return;
      }
      sendMarker(END);
      endSent = true;
      log.debug("{}: local side ended well; {} bytes out, {} in", label, bytesUp, bytesDown);
      maybeDone();
    } catch (MigrationException | RuntimeException e) {
      fail("the connection failed while sending: " + e.getMessage(), Cause.CONNECTION);
    }
  }

  private void remoteToLocal() {
    ByteBuffer header = ByteBuffer.allocate(4);
    ByteBuffer data = ByteBuffer.allocateDirect(CHUNK);
    try {
      while (true) {
        header.clear();
        if (!readFully(header)) {
          fail("the connection ended without an end mark", Cause.CONNECTION);
          return;
        }
        int n = header.flip().getInt();
        if (n == END) {
          if (settled.get()) {
            return; // failing already: the local side must not see a clean end now
          }
          endReceived = true;
          try {
            local.shutdownOutput();
          } catch (IOException e) {
            // The local side may have closed already (the daemon exits after its last page).
            log.debug("{}: shutting down the local socket: {}", label, e.toString());
          }
          maybeDone();
          return;
        }
        if (n == FAIL) {
          fail("the peer failed", Cause.PEER);
          return;
        }
        if (n < 0 || n > CHUNK) {
          fail("bad frame length " + n, Cause.CONNECTION);
          return;
        }
        data.clear().limit(n);
        if (!readFully(data)) {
          fail("the connection ended inside a frame", Cause.CONNECTION);
          return;
        }
        data.flip();
        try {
          while (data.hasRemaining()) {
            local.write(data);
          }
        } catch (IOException e) {
          fail("the local socket failed: " + e, Cause.LOCAL);
          return;
        }
        bytesDown += n;
      }
    } catch (MigrationException | RuntimeException e) {
      fail("the connection failed while receiving: " + e.getMessage(), Cause.CONNECTION);
    }
  }

  private boolean readFully(ByteBuffer b) throws TransportException {
    while (b.hasRemaining()) {
      if (remote.read(b) < 0) {
        return false;
      }
    }
    return true;
  }

  private void sendMarker(int marker) throws TransportException {
    ByteBuffer b = ByteBuffer.allocate(4).putInt(marker).flip();
    writeLock.lock();
    try {
      remote.write(b);
    } finally {
      writeLock.unlock();
    }
  }

  private void maybeDone() {
    if (endSent && endReceived && settled.compareAndSet(false, true)) {
      done.complete(null);
      closeAll(true);
    }
  }

  /** Fails the relay unless it failed or finished already: side action, tell the peer, reset. */
  void fail(String why, Cause cause) {
    if (!settled.compareAndSet(false, true)) {
      return;
    }
    failing = Thread.currentThread();
    log.info("{}: post-copy relay failed ({}): {}", label, cause, why);
    try {
      side.stopLocalCopy(why);
    } finally {
      try {
        if (cause != Cause.PEER && remote != null) {
          boolean told = tellPeer();
          awaitPeerGone(side.fence(cause), (cause == Cause.LOCAL || cause == Cause.ABORT) && told);
        }
      } finally {
        closeAll(false);
        done.completeExceptionally(new MigrationException("post-copy page relay " + label
            + " failed: " + why));
        failing = null;
      }
    }
  }

  /**
   * Sends FAIL. When that cannot be done, because the connection failed or stays blocked in a
   * write of the sending thread, closes the connection instead, so that the peer learns of the
   * failure as a broken connection, and returns false.
   */
  private boolean tellPeer() {
    try {
      if (writeLock.tryLock(MARKER_WAIT.toMillis(), TimeUnit.MILLISECONDS)) {
        try {
          remote.write(ByteBuffer.allocate(4).putInt(FAIL).flip());
          return true;
        } finally {
          writeLock.unlock();
        }
      }
      log.info("{}: the connection is stalled; closing it instead of sending FAIL", label);
    } catch (MigrationException | RuntimeException e) {
      log.debug("{}: cannot tell the peer: {}", label, e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    remote.close();
    return false;
  }

  /**
   * Waits up to {@code fence} for the peer to hang up, which ends the inbound thread; when the
   * peer cannot be heard ({@code canHear} false, or no inbound thread to tell), the whole fence.
   */
  private void awaitPeerGone(Duration fence, boolean canHear) {
    if (fence.isZero() || fence.isNegative()) {
      return;
    }
    log.info("{}: waiting up to {} ms for the peer to stop its side", label, fence.toMillis());
    Thread in = inbound;
    try {
      if (!canHear || in == null || in == Thread.currentThread() || !in.isAlive()) {
        // No way to hear from the peer (the inbound thread also ends after the peer's END).
        Thread.sleep(fence.toMillis());
      } else {
        in.join(fence.toMillis());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Closes both ends; the local socket with a reset unless the relay succeeded. */
  private void closeAll(boolean succeeded) {
    SocketChannel l = local;
    if (l != null) {
      if (succeeded) {
        // Both sides ended well: an orderly close, so that the bytes still in the socket's
        // buffers reach the local peer before the end of the stream.
        try {
          l.setOption(StandardSocketOptions.SO_LINGER, -1);
        } catch (IOException e) {
          log.debug("{}: restoring SO_LINGER: {}", label, e.toString());
        }
      }
      // Otherwise SO_LINGER 0 (set in start) makes this a reset: CRIU's page server sees an
      // error.
      NioSockets.closeQuietly(l);
    }
    Connection r = remote;
    if (r != null) {
      r.close();
    }
  }

  /**
   * Fails the relay (if it has not finished) and closes both ends. If another thread is failing
   * it, waits until that thread has closed them: resetting the local socket here would cut its
   * fence short. Idempotent.
   */
  @Override
  public void close() {
    synchronized (this) {
      closed = true;
    }
    fail("closed", Cause.ABORT);
    if (!done.isDone() && failing != Thread.currentThread()) {
      try {
        done.handle((v, e) -> null).get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (java.util.concurrent.ExecutionException e) {
        // cannot happen: handled
      }
    }
  }
}

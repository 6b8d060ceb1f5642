package io.criu4j.internal.posix;

import io.criu4j.MigrationException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * A duplicate of a connected stream socket's descriptor, through which bytes are written next
 * to the channel that owns the socket: {@link #send} for a few bytes, {@link #splice} for bytes
 * held in a {@link SplicePipe}. The socket stays open as long as this duplicate does.
 *
 * <p>{@link #close()} may be called while another thread is blocked writing: it then shuts the
 * socket down (which ends the blocked call with an error), waits until the call has returned and
 * only then closes the descriptor, so the number is never used after the kernel could have
 * handed it out again. Writes started after {@code close()} fail.
 *
 * <p>Owns the duplicate. Thread-safe; one writing thread at a time (the caller serialises
 * writes, together with its other writes to the socket).
 */
public final class SocketFd implements AutoCloseable {
  private final int fd;
  private int users; // guarded by this
  private boolean closed; // guarded by this

  private SocketFd(int fd) {
    this.fd = fd;
  }

  /** Duplicates {@code fd} (which stays the caller's) into a new close-on-exec descriptor. */
  public static SocketFd duplicate(int fd) throws MigrationException {
    return new SocketFd(Fd.duplicate(fd, 0).release());
  }

  /**
   * Writes all of {@code src}, a direct buffer. With {@code more}, the kernel is told that more
   * data follows ({@code MSG_MORE}), so a TCP socket holds the bytes back for the next write.
   */
  public void send(ByteBuffer src, boolean more) throws MigrationException, ClosedChannelException {
    if (!src.isDirect()) {
      throw new IllegalArgumentException("not a direct buffer: " + src);
    }
    enter();
    try {
      int flags = Native.MSG_NOSIGNAL | (more ? Native.MSG_MORE : 0);
      while (src.hasRemaining()) {
        Pointer p = Pointer.wrap(Native.runtime(), src); // starts at src's position
        long n = Native.libc().send(fd, p, src.remaining(), flags);
        if (n >= 0) {
          src.position(src.position() + (int) n);
          continue;
        }
        int errno = Native.lastErrno();
        if (errno == Native.EINTR) {
          continue;
        }
        if (errno == Native.EAGAIN) {
          awaitWritable(fd);
          continue;
        }
        throw Native.failure("send(fd " + fd + ")", errno);
      }
    } finally {
      exit();
    }
  }

  /** Moves exactly {@code n} bytes held by {@code pipe} into the socket. */
  public void splice(SplicePipe pipe, int n, boolean more)
      throws MigrationException, ClosedChannelException {
    enter();
    try {
      pipe.drainTo(fd, n, more);
    } finally {
      exit();
    }
  }

  private synchronized void enter() throws ClosedChannelException {
    if (closed) {
      throw new ClosedChannelException();
    }
    users++;
  }

  private synchronized void exit() {
    if (--users == 0 && closed) {
      notifyAll();
    }
  }

  /** Waits until {@code fd} takes more bytes (for a socket in non-blocking mode). */
  static void awaitWritable(int fd) throws MigrationException {
    Pointer pfd = Memory.allocateDirect(Native.runtime(), 8, true);
    pfd.putInt(0, fd);
    pfd.putShort(4, (short) Native.POLLOUT);
    Native.check("poll(fd " + fd + ", POLLOUT)", () -> Native.libc().poll(pfd, 1, -1));
    if ((pfd.getShort(6) & Native.POLLNVAL) != 0) {
      throw new MigrationException("poll: fd " + fd + " is not open", 9, null);
    }
  }

  /**
   * Closes the duplicate. If a write is in progress, shuts the socket down first (for both
   * directions: the connection is being closed) and waits for the write to return. Idempotent.
   */
  @Override
  public void close() {
    boolean interrupted = false;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      if (users > 0) {
        Native.libc().shutdown(fd, Native.SHUT_RDWR);
        while (users > 0) {
          try {
            wait();
          } catch (InterruptedException e) {
            interrupted = true;
          }
        }
      }
    }
    Native.libc().close(fd);
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public synchronized String toString() {
    return closed ? "SocketFd(closed)" : "SocketFd(" + fd + ")";
  }
}

package io.criu4j.internal.posix;

import io.criu4j.MigrationException;
import java.nio.ByteBuffer;
import jnr.ffi.Pointer;

/**
 * A pipe through which bytes move from one socket to another inside the kernel with
 * {@code splice(2)}, never entering user space: {@link #fillFrom} moves bytes from a socket into
 * the pipe, {@link #drainTo} moves them on into another socket (or {@link SocketFd#send}), and
 * {@link #read} copies them out where the destination is not a socket. On Linux, splicing from
 * a stream socket and into a TCP or Unix stream socket passes page references instead of copying
 * page data.
 *
 * <p>The pipe counts the bytes it holds. Its capacity is asked for at {@link #open} (the kernel
 * may grant less; unprivileged processes get at most {@code fs.pipe-max-size}).
 *
 * <p>Owns both pipe ends; {@link #close()} is idempotent. One thread uses it at a time (filling
 * and draining alternate).
 */
public final class SplicePipe implements AutoCloseable {
  private final Pipe pipe;
  private final int capacity;
  private int buffered;

  private SplicePipe(Pipe pipe, int capacity) {
    this.pipe = pipe;
    this.capacity = capacity;
  }

  /**
   * Opens a pipe of about {@code wantedCapacity} bytes: the kernel's answer to
   * {@code F_SETPIPE_SZ}, or its default (64 KiB) if it refuses.
   */
  public static SplicePipe open(int wantedCapacity) throws MigrationException {
    Pipe pipe = Pipe.open();
    try {
      int w = pipe.writeEnd().get();
      // Best effort: a refusal (EPERM beyond the user's pipe quota) leaves the default size.
      Native.libc().fcntl(w, Native.F_SETPIPE_SZ, wantedCapacity);
      int capacity = (int) Native.check("fcntl(F_GETPIPE_SZ)",
          () -> Native.libc().fcntl(w, Native.F_GETPIPE_SZ, 0));
      return new SplicePipe(pipe, capacity);
    } catch (MigrationException | RuntimeException e) {
      pipe.close();
      throw e;
    }
  }

  /** How many bytes the pipe holds at most. */
  public int capacity() {
    return capacity;
  }

  /** How many bytes it holds now. */
  public int buffered() {
    return buffered;
  }

  /** Room left, in bytes. */
  public int free() {
    return capacity - buffered;
  }

  /**
   * Moves up to {@code max} bytes (at most {@link #free()}) from the stream socket {@code fd}
   * into the pipe. With {@code wait}, blocks until at least one byte arrives; without, returns 0
   * at once when none is there (the socket's side: {@code SPLICE_F_NONBLOCK}).
   *
   * @return the bytes moved, or -1 at the end of the socket's stream
   */
  public int fillFrom(int fd, int max, boolean wait) throws MigrationException {
    if (max <= 0 || max > free()) {
      throw new IllegalArgumentException("max outside 1.." + free() + ": " + max);
    }
    int w = pipe.writeEnd().get();
    int flags = Native.SPLICE_F_MOVE | (wait ? 0 : Native.SPLICE_F_NONBLOCK);
    while (true) {
      long n = Native.libc().splice(fd, null, w, null, max, flags);
      if (n > 0) {
        buffered += (int) n;
        return (int) n;
      }
      if (n == 0) {
        return -1;
      }
      int errno = Native.lastErrno();
      if (errno == Native.EINTR) {
        continue;
      }
      if (errno == Native.EAGAIN && !wait) {
        return 0;
      }
      throw Native.failure("splice(fd " + fd + " -> pipe)", errno);
    }
  }

  /**
   * Moves exactly {@code n} of the held bytes into the stream socket {@code fd}, waiting while
   * the socket is full. With {@code more}, the kernel is told that more data follows (so TCP
   * need not send a short segment now).
   */
  public void drainTo(int fd, int n, boolean more) throws MigrationException {
    if (n < 0 || n > buffered) {
      throw new IllegalArgumentException("n outside 0.." + buffered + ": " + n);
    }
    int r = pipe.readEnd().get();
    int flags = Native.SPLICE_F_MOVE | (more ? Native.SPLICE_F_MORE : 0);
    while (n > 0) {
      long k = Native.libc().splice(r, null, fd, null, n, flags);
      if (k > 0) {
        buffered -= (int) k;
        n -= (int) k;
        continue;
      }
      int errno = k == 0 ? Native.EPIPE : Native.lastErrno();
      if (errno == Native.EINTR) {
        continue;
      }
      if (errno == Native.EAGAIN) {
        SocketFd.awaitWritable(fd);
        continue;
      }
      throw Native.failure("splice(pipe -> fd " + fd + ")", errno);
    }
  }

  /**
   * Copies up to {@code dst.remaining()} held bytes into the direct buffer {@code dst}: the way
   * out where the destination is not a socket.
   *
   * @return the bytes copied (0 if the pipe is empty)
   */
  public int read(ByteBuffer dst) throws MigrationException {
    if (!dst.isDirect()) {
      throw new IllegalArgumentException("not a direct buffer: " + dst);
    }
    int len = Math.min(dst.remaining(), buffered);
    if (len == 0) {
      return 0;
    }
    int r = pipe.readEnd().get();
    Pointer p = Pointer.wrap(Native.runtime(), dst); // starts at dst's position
    int n = (int) Native.check("read(pipe)", () -> Native.libc().read(r, p, len));
    dst.position(dst.position() + n);
    buffered -= n;
    return n;
  }

  @Override
  public void close() {
    pipe.close();
  }

  @Override
  public String toString() {
    return "SplicePipe[" + buffered + "/" + capacity + " bytes]";
  }
}

package io.criu4j.internal.posix;

import io.criu4j.MigrationException;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An owned file descriptor. Whoever holds the {@code Fd} closes it; {@link #release()} hands
 * ownership of the raw number to the caller instead.
 *
 * <p>Thread-safe. {@link #close()} is idempotent: only the first call closes the descriptor, so a
 * number reused by the kernel is never closed by mistake.
 */
public final class Fd implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Fd.class);
  private static final int CLOSED = -1;

  private final AtomicInteger fd;

  private Fd(int fd) {
    if (fd < 0) {
      throw new IllegalArgumentException("fd < 0: " + fd);
    }
    this.fd = new AtomicInteger(fd);
  }

  /** Takes ownership of {@code fd}. */
  public static Fd adopt(int fd) {
    return new Fd(fd);
  }

  /**
   * Duplicates {@code fd} (which stays owned by the caller) into a new close-on-exec descriptor
   * numbered at least {@code lowest}, owned by the returned object.
   */
  public static Fd duplicate(int fd, int lowest) throws MigrationException {
    return adopt((int) Native.check("fcntl(F_DUPFD_CLOEXEC, " + fd + ")",
        () -> Native.libc().fcntl(fd, Native.F_DUPFD_CLOEXEC, lowest)));
  }

  /** The raw number. */
  public int get() {
    int value = fd.get();
    if (value == CLOSED) {
      throw new IllegalStateException("fd already closed");
    }
    return value;
  }

  public boolean isOpen() {
    return fd.get() != CLOSED;
  }

  /** Gives up ownership: the caller now closes the returned number. */
  public int release() {
    int value = fd.getAndSet(CLOSED);
    if (value == CLOSED) {
      throw new IllegalStateException("fd already closed");
    }
    return value;
  }

  public void setCloseOnExec(boolean on) throws MigrationException {
    int value = get();
    Native.check("fcntl(F_SETFD, " + value + ")",
        () -> Native.libc().fcntl(value, Native.F_SETFD, on ? Native.FD_CLOEXEC : 0));
  }

  public boolean isCloseOnExec() throws MigrationException {
    int value = get();
    long flags = Native.check("fcntl(F_GETFD, " + value + ")",
        () -> Native.libc().fcntl(value, Native.F_GETFD, 0));
    return (flags & Native.FD_CLOEXEC) != 0;
  }

  @Override
  public void close() {
    int value = fd.getAndSet(CLOSED);
    if (value != CLOSED && Native.libc().close(value) != 0) {
      // close(2) must not be retried on EINTR on Linux: the descriptor is gone either way.
      log.debug("close({}) reported {}", value, Errno.name(Native.lastErrno()));
    }
  }

  @Override
  public String toString() {
    int value = fd.get();
    return value == CLOSED ? "Fd(closed)" : "Fd(" + value + ")";
  }
}

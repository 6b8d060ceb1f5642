package io.criu4j.internal.posix;

import io.criu4j.MigrationException;
import jnr.constants.platform.OpenFlags;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/**
 * The one place where libc return codes become exceptions: a failed call throws a
 * {@link MigrationException} carrying errno, its symbolic name and the C library's text, and a
 * call interrupted by a signal ({@code EINTR}) is retried here and nowhere else.
 *
 * <p>Linux only; the struct layouts used by the callers are those of 64-bit Linux (x86-64,
 * aarch64). Thread-safe.
 */
public final class Native {
  public static final int AF_UNIX = 1;
  public static final int SOCK_STREAM = 1;
  public static final int SOCK_SEQPACKET = 5;
  public static final int SOCK_CLOEXEC = 0x80000;
  public static final int SOL_SOCKET = 1;
  public static final int SCM_RIGHTS = 1;
  public static final int MSG_PEEK = 0x2;
  public static final int MSG_CTRUNC = 0x8;
  public static final int MSG_TRUNC = 0x20;
  public static final int MSG_DONTWAIT = 0x40;
  public static final int MSG_NOSIGNAL = 0x4000;
  public static final int MSG_CMSG_CLOEXEC = 0x40000000;
  public static final int F_GETFD = 1;
  public static final int F_SETFD = 2;
  public static final int F_DUPFD_CLOEXEC = 1030;
  public static final int F_SETPIPE_SZ = 1031;
  public static final int F_GETPIPE_SZ = 1032;
  public static final int SO_TYPE = 3;
  public static final int SO_SNDBUF = 7;
  public static final int SO_RCVBUF = 8;
  public static final int SO_DOMAIN = 39;
  public static final int AF_INET = 2;
  public static final int AF_INET6 = 10;
  public static final int SPLICE_F_MOVE = 1;
  public static final int SPLICE_F_NONBLOCK = 2;
  public static final int SPLICE_F_MORE = 4;
  public static final int MSG_MORE = 0x8000;
  public static final int FD_CLOEXEC = 1;
  public static final int O_CLOEXEC = 0x80000;
  public static final int POLLIN = 0x1;
  public static final int POLLOUT = 0x4;
  public static final int POLLERR = 0x8;
  public static final int POLLHUP = 0x10;
  public static final int POLLNVAL = 0x20;
  public static final int WNOHANG = 1;
  public static final int SIGKILL = 9;
  public static final int SIGTERM = 15;
  public static final int SHUT_WR = 1;
  public static final int SHUT_RDWR = 2;
  public static final int EINTR = 4;
  public static final int ECHILD = 10;
  public static final int EAGAIN = 11;
  public static final int EPIPE = 32;
  public static final int ESRCH = 3;

  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

  private Native() {}

  public static LibC libc() {
    return LIBC;
  }

  public static Runtime runtime() {
    return RUNTIME;
  }

  /** errno of the last failed call on this thread. */
  public static int lastErrno() {
    return RUNTIME.getLastError();
  }

  /** Platform value of {@code O_RDONLY|O_DIRECTORY|O_CLOEXEC} (O_DIRECTORY differs by arch). */
  public static int openDirectoryFlags() {
    return OpenFlags.O_RDONLY.intValue() | OpenFlags.O_DIRECTORY.intValue() | O_CLOEXEC;
  }

  /** A system call to run until it does not fail with EINTR. */
  @FunctionalInterface
  public interface Call {
    long invoke();
  }

  /**
   * Runs {@code call}, retrying on EINTR; a negative result becomes an exception naming
   * {@code what}.
   */
  public static long check(String what, Call call) throws MigrationException {
    while (true) {
      long rc = call.invoke();
      if (rc >= 0) {
        return rc;
      }
      int errno = lastErrno();
      if (errno != EINTR) {
        throw failure(what, errno);
      }
    }
  }

  /** For calls such as posix_spawn that return the error number instead of setting errno. */
  public static void checkReturned(String what, int rc) throws MigrationException {
    if (rc != 0) {
      throw failure(what, rc);
    }
  }

  public static MigrationException failure(String what, int errno) {
    return new MigrationException(
        what + " failed: " + Errno.name(errno) + " (" + strerror(errno) + ")", errno, null);
  }

  public static String strerror(int errno) {
    String text = LIBC.strerror(errno);
    return text != null ? text : "errno " + errno;
  }
}

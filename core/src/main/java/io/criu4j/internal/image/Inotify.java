package io.criu4j.internal.image;

import io.criu4j.MigrationException;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.Native;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.SaveError;

/**
 * The inotify calls {@link StagingWatcher} needs, bound with jnr-ffi next to (not inside) the
 * shared {@code LibC} binding, and the constants of {@code <sys/inotify.h>} (identical on all
 * Linux architectures). Failures go through {@link Native#check}, which retries {@code EINTR}.
 *
 * <p>Thread-safe; stateless.
 */
final class Inotify {
  static final int IN_CLOSE_WRITE = 0x00000008;
  static final int IN_MOVED_TO = 0x00000080;
  static final int IN_CREATE = 0x00000100;
  static final int IN_DELETE_SELF = 0x00000400;
  static final int IN_MOVE_SELF = 0x00000800;
  static final int IN_UNMOUNT = 0x00002000;
  static final int IN_Q_OVERFLOW = 0x00004000;
  static final int IN_IGNORED = 0x00008000;
  static final int IN_ONLYDIR = 0x01000000;
  static final int IN_DONT_FOLLOW = 0x02000000;
  static final int IN_ISDIR = 0x40000000;

  static final int IN_NONBLOCK = 0x800;
  static final int IN_CLOEXEC = 0x80000;

  /** {@code struct inotify_event}: wd, mask, cookie, len, then {@code len} bytes of name. */
  static final int EVENT_HEADER_SIZE = 16;

  /** The libc entry points. */
  @SaveError
  public interface Lib {
    int inotify_init1(int flags);

    int inotify_add_watch(int fd, String path, int mask);
  }

  private static final class Holder {
    static final Lib LIB = LibraryLoader.create(Lib.class).load("c");
  }

  private Inotify() {}

  /** A new non-blocking, close-on-exec inotify instance, owned by the caller. */
  static Fd init() throws MigrationException {
    return Fd.adopt((int) Native.check("inotify_init1(IN_CLOEXEC|IN_NONBLOCK)",
        () -> Holder.LIB.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)));
  }

  /** Adds a watch on {@code path}; returns the watch descriptor. */
  static int addWatch(Fd inotify, String path, int mask) throws MigrationException {
    int fd = inotify.get();
    return (int) Native.check("inotify_add_watch(" + path + ")",
        () -> Holder.LIB.inotify_add_watch(fd, path, mask));
  }
}

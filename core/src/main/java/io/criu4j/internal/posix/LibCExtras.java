package io.criu4j.internal.posix;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;

/** libc calls needed only on old C libraries; loaded lazily so a missing one costs nothing. */
final class LibCExtras {
  private LibCExtras() {}

  /** Bound separately: not every call site needs it. */
  public interface Spawn {
    int posix_spawn_file_actions_addclose(Pointer fileActions, int fd);
  }

  private static final class Holder {
    static final Spawn SPAWN = LibraryLoader.create(Spawn.class).load("c");
  }

  static void addClose(Pointer actions, int fd) {
    Holder.SPAWN.posix_spawn_file_actions_addclose(actions, fd);
  }
}

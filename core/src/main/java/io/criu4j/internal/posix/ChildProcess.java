package io.criu4j.internal.posix;

import io.criu4j.MigrationException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A child process started with {@code posix_spawn(2)} that inherits exactly the descriptors it
 * is given: descriptor {@code i} of {@code inherited} becomes descriptor {@code 3 + i} in the child,
 * stdin/stdout/stderr are shared with this process, and every other descriptor is closed in the
 * child (even ones without close-on-exec). The child starts with an empty signal mask and
 * default signal dispositions, in a process group of its own: a Ctrl-C at the terminal signals
 * this JVM, which decides what happens to the child (for CRIU: finish or roll back a dump),
 * rather than killing the child in the middle of its work.
 *
 * <p>The object owns the child: {@link #close()} kills it with SIGKILL if it is still running and
 * reaps it, so no zombie outlives the object; idempotent. Thread-safe.
 */
public final class ChildProcess implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ChildProcess.class);
  /** First descriptor number the child gets for inherited descriptors. */
  public static final int FIRST_INHERITED_FD = 3;
  private static final short POSIX_SPAWN_SETPGROUP = 0x02;
  private static final short POSIX_SPAWN_SETSIGDEF = 0x04;
  private static final short POSIX_SPAWN_SETSIGMASK = 0x08;
  private static final int SPAWN_STRUCT_SIZE = 512;
  private static final int SIGSET_SIZE = 128;
  private static volatile boolean closefromMissing;

  private final int pid;
  private final String name;
  private Integer status;

  private ChildProcess(int pid, String name) {
    this.pid = pid;
    this.name = name;
  }

  /**
   * Starts {@code executable} with {@code argv} (argv[0] included) and environment {@code env}.
   * The descriptors in {@code inherited} stay owned by the caller.
   */
  public static ChildProcess spawn(Path executable, List<String> argv, Map<String, String> env,
      List<Integer> inherited) throws MigrationException {
    return spawn(executable, argv, env, inherited, -1, -1, -1);
  }

  /**
   * Like {@link #spawn(Path, List, Map, List)}, with the child's stdin, stdout and stderr taken
   * from the given descriptors of this process (owned by the caller); -1 shares ours.
   */
  public static ChildProcess spawn(Path executable, List<String> argv, Map<String, String> env,
      List<Integer> inherited, int stdin, int stdout, int stderr) throws MigrationException {
    LibC libc = Native.libc();
    jnr.ffi.Runtime rt = Native.runtime();
    int targetEnd = FIRST_INHERITED_FD + inherited.size();
    // Move the sources above every target first, so no dup2 overwrites a source it still needs.
    List<Fd> staged = new ArrayList<>();
    Pointer actions = Memory.allocateDirect(rt, SPAWN_STRUCT_SIZE, true);
    Pointer attr = Memory.allocateDirect(rt, SPAWN_STRUCT_SIZE, true);
    boolean actionsReady = false;
    boolean attrReady = false;
    try {
      for (int fd : inherited) {
        staged.add(Fd.duplicate(fd, targetEnd + 16));
      }
      int[] stdio = {stdin, stdout, stderr};
      Fd[] stagedStdio = new Fd[3];
      for (int i = 0; i < 3; i++) {
        if (stdio[i] >= 0) {
          stagedStdio[i] = Fd.duplicate(stdio[i], targetEnd + 16);
          staged.add(stagedStdio[i]);
        }
      }
      Native.checkReturned("posix_spawn_file_actions_init",
          libc.posix_spawn_file_actions_init(actions));
      actionsReady = true;
      // Only the inherited ones: the staged stdio copies that follow go to 0, 1, 2 below.
      for (int i = 0; i < inherited.size(); i++) {
        Native.checkReturned("posix_spawn_file_actions_adddup2",
            libc.posix_spawn_file_actions_adddup2(actions, staged.get(i).get(),
                FIRST_INHERITED_FD + i));
      }
      for (int i = 0; i < 3; i++) {
        if (stagedStdio[i] != null) {
          Native.checkReturned("posix_spawn_file_actions_adddup2",
              libc.posix_spawn_file_actions_adddup2(actions, stagedStdio[i].get(), i));
        }
      }
      addCloseFrom(actions, targetEnd);

      Native.checkReturned("posix_spawnattr_init", libc.posix_spawnattr_init(attr));
      attrReady = true;
      Pointer empty = Memory.allocateDirect(rt, SIGSET_SIZE, true);
      Pointer full = Memory.allocateDirect(rt, SIGSET_SIZE, true);
      libc.sigemptyset(empty);
      libc.sigfillset(full);
      Native.checkReturned("posix_spawnattr_setsigmask", libc.posix_spawnattr_setsigmask(attr, empty));
      Native.checkReturned("posix_spawnattr_setsigdefault",
          libc.posix_spawnattr_setsigdefault(attr, full));
      Native.checkReturned("posix_spawnattr_setpgroup", libc.posix_spawnattr_setpgroup(attr, 0));
      Native.checkReturned("posix_spawnattr_setflags", libc.posix_spawnattr_setflags(attr,
          (short) (POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)));

      List<String> envList = new ArrayList<>();
      env.forEach((k, v) -> envList.add(k + "=" + v));
      Pointer argvPtr = stringArray(argv);
      Pointer envPtr = stringArray(envList);
      int[] pid = new int[1];
      Native.checkReturned("posix_spawn(" + executable + ")",
          libc.posix_spawn(pid, executable.toString(), actions, attr, argvPtr, envPtr));
      log.debug("spawned {} as pid {}", argv, pid[0]);
      return new ChildProcess(pid[0], executable.getFileName().toString());
    } finally {
      if (actionsReady) {
        libc.posix_spawn_file_actions_destroy(actions);
      }
      if (attrReady) {
        libc.posix_spawnattr_destroy(attr);
      }
      staged.forEach(Fd::close);
    }
  }

  private static void addCloseFrom(Pointer actions, int lowFd) throws MigrationException {
    if (!closefromMissing) {
      try {
        Native.checkReturned("posix_spawn_file_actions_addclosefrom_np",
            Native.libc().posix_spawn_file_actions_addclosefrom_np(actions, lowFd));
        return;
      } catch (UnsatisfiedLinkError | IllegalStateException old) {
        // glibc < 2.34: close what /proc/self/fd lists instead.
        closefromMissing = true;
      }
    }
    java.io.File[] open = new java.io.File("/proc/self/fd").listFiles();
    if (open == null) {
      return;
    }
    for (java.io.File f : open) {
      int fd = Integer.parseInt(f.getName());
      if (fd >= lowFd) {
        LibCExtras.addClose(actions, fd);
      }
    }
  }

  private static Pointer stringArray(List<String> strings) {
    jnr.ffi.Runtime rt = Native.runtime();
    int ptrSize = rt.addressSize();
    Pointer array = Memory.allocateDirect(rt, (long) ptrSize * (strings.size() + 1), true);
    for (int i = 0; i < strings.size(); i++) {
      byte[] bytes = strings.get(i).getBytes(StandardCharsets.UTF_8);
      Pointer s = Memory.allocateDirect(rt, bytes.length + 1, true);
      s.put(0, bytes, 0, bytes.length);
      array.putPointer((long) i * ptrSize, s);
    }
    return array;
  }

  public int pid() {
    return pid;
  }

  /** The raw wait status if the child has been reaped; does not block. */
  public synchronized Integer pollStatus() throws MigrationException {
    if (status == null) {
      int[] st = new int[1];
      long rc = Native.check("waitpid(" + pid + ", WNOHANG)",
          () -> Native.libc().waitpid(pid, st, Native.WNOHANG));
      if (rc == pid) {
        status = st[0];
      }
    }
    return status;
  }

  /**
   * Waits up to {@code timeoutMillis} for the child to exit and reaps it.
   *
   * @return the raw wait status, or {@code null} if it is still running
   */
  public Integer waitFor(long timeoutMillis) throws MigrationException {
    return waitFor(timeoutMillis, true);
  }

  /**
   * Like {@link #waitFor(long)}; if not {@code interruptible}, an interrupt does not cut the wait
   * short (the interrupt status is restored afterwards), so {@link #close()} reaps even on an
   * interrupted thread.
   */
  private Integer waitFor(long timeoutMillis, boolean interruptible) throws MigrationException {
    long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
    long sleepMicros = 50;
    boolean interrupted = false;
    try {
      while (true) {
        Integer st = pollStatus();
        if (st != null || System.nanoTime() >= deadline) {
          return st;
        }
        try {
          Thread.sleep(sleepMicros / 1000, (int) (sleepMicros % 1000) * 1000);
        } catch (InterruptedException e) {
          if (interruptible) {
            Thread.currentThread().interrupt();
            return pollStatus();
          }
          interrupted = true;
        }
        sleepMicros = Math.min(sleepMicros * 2, 20_000);
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Sends SIGKILL unless the child was already reaped. */
  public synchronized void kill() {
    if (status == null) {
      Native.libc().kill(pid, Native.SIGKILL);
    }
  }

  /** Kills the child if it still runs and reaps it. Idempotent. */
  @Override
  public void close() {
    try {
      if (pollStatus() == null) {
        kill();
        if (waitFor(10_000, false) == null) {
          log.warn("{} (pid {}) did not exit 10 s after SIGKILL", name, pid);
        }
      }
    } catch (MigrationException e) {
      log.debug("reaping pid {}: {}", pid, e.getMessage());
    }
  }

  /** Human-readable wait status: "exited with status 1", "killed by signal 9". */
  public static String describe(int status) {
    int signal = status & 0x7f;
    if (signal == 0) {
      return "exited with status " + ((status >> 8) & 0xff);
    }
    return "killed by signal " + signal + ((status & 0x80) != 0 ? " (core dumped)" : "");
  }

  @Override
  public String toString() {
    return name + "(pid " + pid + ")";
  }
}

package io.criu4j.internal.migrate;

import io.criu4j.MigrationException;
import io.criu4j.internal.posix.ProcStat;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code /proc} says about the tree to migrate, read before anything is frozen: whether the
 * root exists and may be dumped by this process, and how much memory the tree has resident (the
 * estimate of its image size). Reads a consistent-enough snapshot; processes may come and go.
 */
final class ProcTree {
  private final Path proc;

  ProcTree(Path proc) {
    this.proc = proc;
  }

  static ProcTree system() {
    return new ProcTree(Paths.get("/proc"));
  }

  /** One line of {@code /proc/<pid>/stat}, the fields we use. */
  record Stat(int pid, String comm, char state, int ppid) {}

  Stat stat(int pid) throws IOException {
    String s = Files.readString(proc.resolve(Integer.toString(pid)).resolve("stat"),
        StandardCharsets.US_ASCII);
    int open = s.indexOf('(');
    int close = s.lastIndexOf(')');
    if (open < 0 || close < open) {
      throw new IOException("unexpected /proc/" + pid + "/stat: " + s);
    }
    String[] rest = s.substring(close + 2).split(" ");
    return new Stat(pid, s.substring(open + 1, close), rest[0].charAt(0),
        Integer.parseInt(rest[1]));
  }

  /**
   * Refuses, with the reason, a root pid that cannot be migrated by this process: gone, a
   * zombie, a kernel thread, owned by another user while we are not root, or this process or
   * one of its ancestors (freezing it would freeze the migration itself).
   */
  void checkMigratable(int pid, int self) throws MigrationException {
    Stat st;
    try {
      st = stat(pid);
    } catch (NoSuchFileException e) {
      throw new MigrationException("pid " + pid + " does not exist", 3 /* ESRCH */, null);
    } catch (IOException | RuntimeException e) {
      throw new MigrationException("cannot read /proc/" + pid + ": " + e, e);
    }
    if (st.state() == 'Z' || st.state() == 'X') {
      throw new MigrationException("pid " + pid + " (" + st.comm() + ") has exited (state "
          + st.state() + ")", 3 /* ESRCH */, null);
    }
    if (pid == 2 || st.ppid() == 2 && pid != 1) {
      throw new MigrationException("pid " + pid + " (" + st.comm() + ") is a kernel thread",
          1 /* EPERM */, null);
    }
    for (int p = self; p > 0; ) {
      if (p == pid) {
        throw new MigrationException("pid " + pid + " (" + st.comm() + ") is this process or "
            + "one of its ancestors: dumping it would freeze the migration itself",
            22 /* EINVAL */, null);
      }
      try {
        p = stat(p).ppid();
      } catch (IOException | RuntimeException e) {
        break;
      }
    }
    int me = euid(self);
    int owner = uid(pid);
    if (me != 0 && me != owner) {
      throw new MigrationException("pid " + pid + " (" + st.comm() + ") belongs to uid " + owner
          + " and this process runs as uid " + me + ": it may not dump it", 1 /* EPERM */, null);
    }
  }

  private int uid(int pid) throws MigrationException {
    return statusId(pid, "Uid:", 1);
  }

  private int euid(int pid) throws MigrationException {
    return statusId(pid, "Uid:", 2);
  }

  private int statusId(int pid, String key, int column) throws MigrationException {
    try {
      for (String line : Files.readAllLines(proc.resolve(Integer.toString(pid))
          .resolve("status"), StandardCharsets.US_ASCII)) {
        if (line.startsWith(key)) {
          return Integer.parseInt(line.substring(key.length()).strip().split("\\s+")[column - 1]);
        }
      }
    } catch (IOException | RuntimeException e) {
      throw new MigrationException("cannot read /proc/" + pid + "/status: " + e, e);
    }
    throw new MigrationException("/proc/" + pid + "/status has no " + key);
  }

  /** The pids of the tree rooted at {@code root}, root first. */
  List<Integer> tree(int root) {
    Map<Integer, List<Integer>> children = new HashMap<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(proc)) {
      for (Path p : ds) {
        String name = p.getFileName().toString();
        if (!name.chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          Stat st = stat(Integer.parseInt(name));
          children.computeIfAbsent(st.ppid(), k -> new ArrayList<>()).add(st.pid());
        } catch (IOException | RuntimeException e) {
          // gone meanwhile
        }
      }
    } catch (IOException e) {
      return List.of(root);
    }
    List<Integer> out = new ArrayList<>();
    ArrayDeque<Integer> todo = new ArrayDeque<>(List.of(root));
    while (!todo.isEmpty()) {
      int p = todo.poll();
      out.add(p);
      todo.addAll(children.getOrDefault(p, List.of()));
    }
    return out;
  }

  /** Resident bytes of the whole tree ({@code statm}); pages shared in the tree count twice. */
  long residentBytes(int root, int pageSize) {
    long total = 0;
    for (int pid : tree(root)) {
      try {
        String[] f = Files.readString(proc.resolve(Integer.toString(pid)).resolve("statm"),
            StandardCharsets.US_ASCII).strip().split(" ");
        total += Long.parseLong(f[1]) * pageSize;
      } catch (IOException | RuntimeException e) {
        // gone meanwhile
      }
    }
    return total;
  }

  /**
   * The start time of {@code pid} (clock ticks after boot) if it descends from
   * {@code ancestor}, else -1: identifies a process the caller's children created, so that
   * it can be told apart later from another process that got the same pid.
   */
  long startTimeIfDescendant(int pid, int ancestor) {
    int p = pid;
    for (int depth = 0; depth < 64 && p > 1; depth++) {
      try {
        p = stat(p).ppid();
      } catch (IOException | RuntimeException e) {
        return -1;
      }
      if (p == ancestor) {
        return startTime(pid);
      }
    }
    return -1;
  }

  /** Pid and start time of each process of the tree rooted at {@code root}. */
  List<long[]> treeWithStartTimes(int root) {
    List<long[]> out = new java.util.ArrayList<>();
    for (int pid : tree(root)) {
      long t = startTime(pid);
      if (t >= 0) {
        out.add(new long[] {pid, t});
      }
    }
    return out;
  }

  private long startTime(int pid) {
    try {
      return ProcStat.startTime(proc, pid).orElse(-2);
    } catch (IOException e) {
      return -2;
    }
  }

  /**
   * SIGKILLs every process of the tree rooted at {@code root}, if the root still is the process
   * started at {@code rootStartTime} (all of them first, then again
   * whatever appeared meanwhile), and waits up to {@code waitMillis} for the root to be gone or
   * a zombie; whether it is. For a restored tree that CRIU still holds stopped, which can
   * neither fork nor exit on its own, so the listing is complete.
   */
  boolean killTree(int root, long rootStartTime, long waitMillis) {
    if (startTime(root) != rootStartTime) {
      return true; // gone already, or another process now has its pid
    }
    long deadline = System.nanoTime() + waitMillis * 1_000_000;
    while (true) {
      boolean alive = false;
      for (int pid : tree(root)) {
        try {
          char state = stat(pid).state();
          if (state != 'Z' && state != 'X') {
            alive = true;
            io.criu4j.internal.posix.Native.libc().kill(pid, 9 /* SIGKILL */);
          }
        } catch (IOException | RuntimeException gone) {
          // exited meanwhile
        }
      }
      if (!alive) {
        return true;
      }
      if (System.nanoTime() > deadline) {
        return false;
      }
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
  }

  /**
   * The first process of the tree rooted at {@code root} that no tracer holds (TracerPid 0 in
   * its status), or -1 if every one is traced. While CRIU holds a dumped tree, each of its
   * processes is traced by CRIU; if CRIU dies, the kernel detaches them and they run again.
   */
  int firstUntraced(int root) {
    for (int pid : tree(root)) {
      try {
        for (String line : Files.readAllLines(proc.resolve(Integer.toString(pid))
            .resolve("status"), StandardCharsets.US_ASCII)) {
          if (line.startsWith("TracerPid:")) {
            if (Integer.parseInt(line.substring("TracerPid:".length()).strip()) == 0) {
              return pid;
            }
            break;
          }
        }
      } catch (IOException | RuntimeException e) {
        return pid; // gone: not held either
      }
    }
    return -1;
  }

  /** This process's pid. */
  static int self() {
    return (int) ProcessHandle.current().pid();
  }
}

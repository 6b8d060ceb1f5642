package io.criu4j.internal.image;

import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.posix.ProcStat;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Working directories whose names say which process owns them, so that what a killed process
 * left behind can be found and removed by the next one, even where several processes share a
 * parent directory (agents sharing a tmpfs, sources sharing {@code /dev/shm}).
 *
 * <p>{@link #create} names a directory {@code PREFIX + PID "." STARTTIME "-" RANDOM}, where
 * STARTTIME is field 22 of {@code /proc/PID/stat} (clock ticks after boot), which tells a
 * reused pid from the owner. {@link #reclaim} deletes the directories with that prefix whose
 * owner no longer runs. A directory of a live owner, a name that does not parse, or an owner
 * whose state cannot be read is left alone. Owners must see the same {@code /proc} (the same PID
 * namespace): a process in another PID namespace sharing the parent would look dead.
 *
 * <p>Thread-safe; stateless apart from this process's own tag, read once.
 */
public final class OwnedDirs {
  private static final Logger log = LoggerFactory.getLogger(OwnedDirs.class);
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Path PROC = Paths.get("/proc");
  private static volatile String selfTag;

  private OwnedDirs() {}

  /** This process's tag, {@code PID.STARTTIME}. */
  public static String selfTag() throws IOException {
    String t = selfTag;
    if (t == null) {
      long pid = ProcessHandle.current().pid();
      OptionalLong start = ProcStat.startTime(PROC, pid);
      if (start.isEmpty()) {
        throw new IOException("cannot read the start time of this process from /proc/" + pid
            + "/stat");
      }
      t = pid + "." + start.getAsLong();
      selfTag = t;
    }
    return t;
  }

  /** Creates a new, empty directory under {@code parent} owned by this process. */
  public static Path create(Path parent, String prefix) throws IOException {
    String tag = selfTag();
    for (int attempt = 0; ; attempt++) {
      Path dir = parent.resolve(prefix + tag + "-" + Long.toUnsignedString(RANDOM.nextLong(), 36));
      try {
        return Files.createDirectory(dir);
      } catch (java.nio.file.FileAlreadyExistsException e) {
        if (attempt >= 10) {
          throw e;
        }
      }
    }
  }

  /**
   * Deletes the directories under {@code parent} named {@code prefix + PID.STARTTIME-...} whose
   * owner no longer runs; returns them. Never throws: what cannot be read or deleted is logged
   * and left.
   */
  public static List<Path> reclaim(Path parent, String prefix) {
    return reclaim(PROC, parent, prefix);
  }

  static List<Path> reclaim(Path proc, Path parent, String prefix) {
    List<Path> removed = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(parent, prefix + "*")) {
      for (Path dir : entries) {
        long[] owner = parseOwner(dir.getFileName().toString(), prefix);
        if (owner == null || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        OptionalLong start;
        try {
          start = ProcStat.startTime(proc, owner[0]);
        } catch (IOException e) {
          log.debug("cannot tell whether pid {} (owner of {}) runs; leaving it: {}", owner[0],
              dir, e.toString());
          continue;
        }
        if (start.isPresent() && start.getAsLong() == owner[1]) {
          continue; // the owner runs
        }
        if (FileTree.delete(dir)) {
          removed.add(dir);
          log.info("removed {}, left by process {} which no longer runs", dir, owner[0]);
        } else {
          log.warn("cannot remove all of {}, left by process {}", dir, owner[0]);
        }
      }
    } catch (NoSuchFileException e) {
      // no parent, nothing to reclaim
    } catch (IOException e) {
      log.warn("cannot list {} for directories of ended processes: {}", parent, e.toString());
    }
    return removed;
  }

  /** {@code {pid, starttime}} from {@code PREFIX PID.STARTTIME-REST}, or null. */
  static long[] parseOwner(String name, String prefix) {
    if (!name.startsWith(prefix)) {
      return null;
    }
    int dot = name.indexOf('.', prefix.length());
    int dash = dot < 0 ? -1 : name.indexOf('-', dot + 1);
    if (dot <= prefix.length() || dash <= dot + 1) {
      return null;
    }
    try {
      long pid = Long.parseLong(name.substring(prefix.length(), dot));
      long start = Long.parseLong(name.substring(dot + 1, dash));
      return pid > 0 && start >= 0 ? new long[] {pid, start} : null;
    } catch (NumberFormatException e) {
      return null;
    }
  }
}

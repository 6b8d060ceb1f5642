package io.criu4j.internal.posix;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Removal of directory trees the library created. Thread-safe; stateless. */
public final class FileTree {
  private static final Logger log = LoggerFactory.getLogger(FileTree.class);

  private FileTree() {}

  /**
   * Removes {@code dir} and everything in it, without following links (a link is removed, not
   * its target); logs what it cannot remove and goes on. Does nothing for {@code null} or a path
   * that does not exist.
   *
   * @return whether nothing of the tree is left
   */
  public static boolean delete(Path dir) {
    if (dir == null || !Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return true;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          log.debug("cannot delete {}: {}", p, e.getMessage());
        }
      });
    } catch (IOException | java.io.UncheckedIOException e) {
      log.debug("cannot delete {}: {}", dir, e.getMessage());
    }
    return !Files.exists(dir, LinkOption.NOFOLLOW_LINKS);
  }
}

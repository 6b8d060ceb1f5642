package io.criu4j.internal.migrate;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** File helpers of the migration. */
final class Fs {
  private static final Logger log = LoggerFactory.getLogger(Fs.class);

  private Fs() {}

  /** Removes {@code dir} and everything in it, without following links; logs what it cannot. */
  static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          log.debug("cannot delete {}: {}", p, e.getMessage());
        }
      });
    } catch (IOException e) {
      log.debug("cannot delete {}: {}", dir, e.getMessage());
    }
  }
}

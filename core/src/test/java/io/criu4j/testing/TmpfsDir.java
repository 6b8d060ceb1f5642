package io.criu4j.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A fresh directory on tmpfs ({@code /dev/shm}) for CRIU images, removed with everything in it
 * by {@link #close()}. JUnit's {@code @TempDir} cannot choose the file system, and images of
 * hundreds of MiB are written and read much faster in memory than on disk. Falls back to
 * {@code java.io.tmpdir} where {@code /dev/shm} is not a writable directory.
 *
 * <p>Use with try-with-resources or close it in {@code @AfterEach}. {@link #close()} is
 * idempotent. Thread-safe.
 */
public final class TmpfsDir implements AutoCloseable {
  /** Where the directories are made when it is usable. */
  public static final Path SHM = Paths.get("/dev/shm");

  private final Path path;
  private volatile boolean closed;

  private TmpfsDir(Path path) {
    this.path = path;
  }

  /** Creates {@code /dev/shm/<prefix><random>}. */
  public static TmpfsDir create(String prefix) {
    try {
      return new TmpfsDir(Files.createTempDirectory(root(), prefix));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a directory under " + root(), e);
    }
  }

  /** The directory {@link #create} makes its directories in. */
  public static Path root() {
    if (Files.isDirectory(SHM) && Files.isWritable(SHM)) {
      return SHM;
    }
    return Paths.get(System.getProperty("java.io.tmpdir"));
  }

  public Path path() {
    return path;
  }

  /** {@code path().resolve(name)}. */
  public Path resolve(String name) {
    return path.resolve(name);
  }

  /** A new subdirectory {@code name}, made now. */
  public Path newDirectory(String name) {
    try {
      return Files.createDirectory(path.resolve(name));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + path.resolve(name), e);
    }
  }

  /** Removes the directory and its contents. Idempotent. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    deleteTree(path);
  }

  /** Deletes {@code dir} recursively; does nothing if it does not exist. */
  public static void deleteTree(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          throw new UncheckedIOException("cannot delete " + p, e);
        }
      });
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + dir, e);
    }
  }

  @Override
  public String toString() {
    return path.toString();
  }
}

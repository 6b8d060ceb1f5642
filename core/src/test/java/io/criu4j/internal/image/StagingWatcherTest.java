package io.criu4j.internal.image;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.criu4j.MigrationException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** inotify-driven reporting of closed files, on tmpfs ({@code /dev/shm}) like production. */
@Timeout(value = 60, unit = SECONDS)
class StagingWatcherTest {
  private static final Path SHM = Paths.get("/dev/shm");
  private static final Duration SHORT = Duration.ofMillis(300);
  private static final Duration LONG = Duration.ofSeconds(5);
  private static final AtomicInteger COUNTER = new AtomicInteger();

  private Path root;
  private Path dir;

  @BeforeEach
  void makeDirectories() throws IOException {
    assumeTrue(Files.isDirectory(SHM), "needs /dev/shm");
    root = Files.createTempDirectory(SHM, "criu4j-watch-");
    dir = Files.createDirectory(root.resolve("staging" + COUNTER.incrementAndGet()));
  }

  @AfterEach
  void removeDirectories() throws IOException {
    if (root != null && Files.exists(root)) {
      try (Stream<Path> all = Files.walk(root)) {
        all.sorted(Comparator.reverseOrder()).forEach(p -> {
          try {
            Files.delete(p);
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
      }
    }
  }

  private static void write(Path file, String text) throws IOException {
    Files.write(file, text.getBytes(US_ASCII));
  }

  @Test
  void closedFilesAreReportedPromptlyAndInOrder() throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      List<String> names = new ArrayList<>();
      long worst = 0;
      for (int i = 0; i < 50; i++) {
        String name = "core-" + (1000 - i) + ".img";
        long start = System.nanoTime();
        write(dir.resolve(name), "image " + i);
        String got = watcher.take(LONG);
        worst = Math.max(worst, System.nanoTime() - start);
        names.add(got);
        assertThat(got).isEqualTo(name);
      }
      System.out.printf("StagingWatcher: worst write-to-report latency of 50 files %.2f ms%n",
          worst / 1e6);
      assertThat(worst).isLessThan(SECONDS.toNanos(1));

      // Written in a burst, taken afterwards: still in close order, not name order.
      List<String> burst = List.of("pstree.img", "mm-1.img", "inventory.img", "fdinfo-2.img");
      for (String name : burst) {
        write(dir.resolve(name), name);
      }
      List<String> taken = new ArrayList<>();
      for (int i = 0; i < burst.size(); i++) {
        taken.add(watcher.take(LONG));
      }
      assertThat(taken).isEqualTo(burst);
      assertThat(watcher.poll()).isNull();
    }
  }

  @Test
  void aFileStillOpenIsReportedOnlyWhenClosed() throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      Path file = dir.resolve("pages-1.img");
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW,
          StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(new byte[8192]));
        assertThat(watcher.take(SHORT)).isNull();
        ch.write(ByteBuffer.wrap(new byte[4096]));
        assertThat(watcher.take(SHORT)).isNull();
      }
      assertThat(watcher.take(LONG)).isEqualTo("pages-1.img");

      // An empty file closed after opening for writing counts as written (CRIU makes some).
      Files.createFile(dir.resolve("empty.img"));
      assertThat(watcher.take(LONG)).isEqualTo("empty.img");
    }
  }

  @Test
  void aNameIsReportedOnceEvenIfWrittenAgain() throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      write(dir.resolve("a.img"), "one");
      write(dir.resolve("a.img"), "two"); // closed twice before it is taken
      assertThat(watcher.take(LONG)).isEqualTo("a.img");
      assertThat(watcher.take(SHORT)).isNull();
      assertThat(watcher.rewrites()).isZero();

      write(dir.resolve("a.img"), "three"); // after it was taken: logged and counted
      write(dir.resolve("b.img"), "b");
      assertThat(watcher.take(LONG)).isEqualTo("b.img");
      assertThat(watcher.rewrites()).isEqualTo(1);
      assertThat(watcher.drain()).isEmpty();
    }
  }

  @Test
  void subdirectoriesLinksAndFilesInsideSubdirectoriesAreIgnored() throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      Path sub = Files.createDirectory(dir.resolve("sub"));
      write(sub.resolve("inner.img"), "x");
      Files.createSymbolicLink(dir.resolve("parent"), Paths.get("../elsewhere"));
      Files.createDirectory(root.resolve("outside"));
      Files.move(Files.createDirectory(root.resolve("outside/moved-dir")),
          dir.resolve("moved-dir"), StandardCopyOption.ATOMIC_MOVE);
      assertThat(watcher.take(SHORT)).isNull();
      assertThat(watcher.drain()).isEmpty();
    }
  }

  @Test
  void aCompleteFileMovedInIsReported() throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      Path outside = root.resolve("tmp-stats");
      write(outside, "stats");
      Files.move(outside, dir.resolve("stats-dump"), StandardCopyOption.ATOMIC_MOVE);
      assertThat(watcher.take(LONG)).isEqualTo("stats-dump");
    }
  }

  @Test
  void drainListsWhatEventsDidNotReport() throws Exception {
    write(dir.resolve("before.img"), "existed before the watcher");
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      write(dir.resolve("one.img"), "1");
      write(dir.resolve("two.img"), "2");
      assertThat(watcher.take(LONG)).isEqualTo("one.img");
      try (FileChannel open = FileChannel.open(dir.resolve("open.img"),
          StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        // drain() lists a file still being written (a warning names it): the caller must only
        // drain once CRIU has finished.
        Thread.sleep(100); // lets the reader thread collect two.img
        assertThat(watcher.drain()).containsExactly("two.img", "before.img", "open.img");
      }
      assertThat(watcher.take(SHORT)).isNull(); // open.img was drained: its close is not news
      assertThat(watcher.drain()).isEmpty();
    }
  }

  @Test
  void aFloodIsReportedCompletelyByEventsAndDrain() throws Exception {
    int files = 20_000;
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
        try {
          for (int i = 0; i < files; i++) {
            write(dir.resolve("f" + i), "x");
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
      List<String> reported = new ArrayList<>();
      long start = System.nanoTime();
      while (!writer.isDone() || reported.size() < files) {
        String name = watcher.take(SHORT);
        if (name == null && writer.isDone()) {
          break;
        } else if (name != null) {
          reported.add(name);
        }
      }
      writer.join();
      int byEvents = reported.size();
      reported.addAll(watcher.drain());
      System.out.printf("StagingWatcher flood: %d files, %d by events, %d by drain, %d overflow(s),"
          + " %.0f ms%n", files, byEvents, reported.size() - byEvents, watcher.overflows(),
          (System.nanoTime() - start) / 1e6);
      assertReportedOnceEach(reported, files);
    }
  }

  @Test
  void anOverflowIsRescuedByDrain() throws Exception {
    int files = 20_000;
    long queueMax = Long.parseLong(Files.readString(
        Paths.get("/proc/sys/fs/inotify/max_queued_events")).strip());
    assumeTrue(queueMax < 2L * files, "max_queued_events too high to overflow: " + queueMax);
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      watcher.holdReader();
      // Let any read already in progress finish before flooding.
      Thread.sleep(50);
      for (int i = 0; i < files; i++) { // two events each: IN_CREATE and IN_CLOSE_WRITE
        write(dir.resolve("f" + i), "x");
      }
      // One file still being written when the overflow is handled: it must not be reported.
      try (FileChannel open = FileChannel.open(dir.resolve("late.img"),
          StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        watcher.releaseReader();
        List<String> reported = new ArrayList<>();
        String name;
        while ((name = watcher.take(Duration.ofMillis(500))) != null) {
          reported.add(name);
        }
        assertThat(watcher.overflows()).isPositive();
        assertThat(reported).doesNotContain("late.img");
        open.write(ByteBuffer.wrap(new byte[] {1}));
        int byEvents = reported.size();
        open.close();
        assertThat(watcher.take(LONG)).isEqualTo("late.img");
        List<String> drained = watcher.drain();
        reported.addAll(drained);
        System.out.printf("StagingWatcher overflow: %d files, %d by events, %d by drain,"
            + " %d overflow(s)%n", files, byEvents, drained.size(), watcher.overflows());
        assertReportedOnceEach(reported, files);
      }
    }
  }

  private static void assertReportedOnceEach(List<String> reported, int files) {
    Set<String> expected = new HashSet<>();
    for (int i = 0; i < files; i++) {
      expected.add("f" + i);
    }
    assertThat(reported).doesNotHaveDuplicates();
    assertThat(new HashSet<>(reported)).isEqualTo(expected);
  }

  @Test
  void aDeletedDirectoryFailsTheWatchAfterTheCollectedNames() throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(dir)) {
      write(dir.resolve("x.img"), "x");
      Thread.sleep(100);
      Files.delete(dir.resolve("x.img"));
      Files.delete(dir);
      assertThat(watcher.take(LONG)).isEqualTo("x.img");
      assertThatThrownBy(() -> watcher.take(LONG))
          .isInstanceOf(MigrationException.class)
          .hasMessageContaining(dir.toString())
          .hasMessageContaining("deleted");
      assertThatThrownBy(watcher::drain)
          .isInstanceOf(MigrationException.class)
          .hasMessageContaining("cannot list staging directory");
    }
  }

  @Test
  void closeWakesATakerStopsTheThreadAndFreesTheDescriptors() throws Exception {
    StagingWatcher.open(dir).close(); // load classes and libraries first
    int fdsBefore = openFds().size();
    long inotifyBefore = countInotifyFds();
    String threadName = "criu4j-staging-watcher-" + dir.getFileName();
    assertThat(watcherThreads(threadName)).isZero();

    StagingWatcher watcher = StagingWatcher.open(dir);
    assertThat(countInotifyFds()).isEqualTo(inotifyBefore + 1);
    assertThat(watcherThreads(threadName)).isEqualTo(1);
    CompletableFuture<String> taker = CompletableFuture.supplyAsync(() -> {
      try {
        return watcher.take(Duration.ofSeconds(30));
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
    Thread.sleep(100);
    long start = System.nanoTime();
    watcher.close();
    assertThat(taker.get(5, SECONDS)).isNull();
    System.out.printf("StagingWatcher: close() took %.2f ms%n", (System.nanoTime() - start) / 1e6);
    watcher.close(); // idempotent

    assertThat(watcherThreads(threadName)).isZero();
    assertThat(countInotifyFds()).isEqualTo(inotifyBefore);
    assertThat(openFds()).hasSize(fdsBefore);
    assertThat(watcher.isOpen()).isFalse();
    assertThat(watcher.take(SHORT)).isNull();
    assertThatThrownBy(watcher::drain).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void openRejectsWhatIsNotADirectory() throws Exception {
    Path file = dir.resolve("file");
    write(file, "x");
    assertThatThrownBy(() -> StagingWatcher.open(file))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(file.toString());
    Path link = Files.createSymbolicLink(root.resolve("link"), dir);
    assertThatThrownBy(() -> StagingWatcher.open(link))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void worksOnAnOrdinaryTemporaryDirectoryToo(@TempDir Path temp) throws Exception {
    try (StagingWatcher watcher = StagingWatcher.open(temp)) {
      write(temp.resolve("inventory.img"), "x");
      assertThat(watcher.take(LONG)).isEqualTo("inventory.img");
      assertThat(watcher.directory()).isEqualTo(temp.toAbsolutePath());
    }
  }

  private static List<Path> openFds() throws IOException {
    try (Stream<Path> fds = Files.list(Paths.get("/proc/self/fd"))) {
      return fds.toList();
    }
  }

  private static long countInotifyFds() throws IOException {
    long n = 0;
    for (Path fd : openFds()) {
      try {
        if (Files.readSymbolicLink(fd).toString().equals("anon_inode:inotify")) {
          n++;
        }
      } catch (IOException gone) {
        // the directory stream's own fd is closed by now
      }
    }
    return n;
  }

  private static long watcherThreads(String name) {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().equals(name) && t.isAlive()).count();
  }
}

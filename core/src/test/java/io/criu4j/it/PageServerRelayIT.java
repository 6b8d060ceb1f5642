package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.MigrationException;
import io.criu4j.PageServer;
import io.criu4j.RestoreResult;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Disk-less page transfer with descriptors only: a page server child (PAGE_SERVER_CHLD) serving
 * one end of a socketpair, a dump sending its pages to one end of another socketpair, and this
 * test copying the bytes between the two other ends, as a migration's transport would. The
 * remaining images are copied to the page server's directory and restored from there.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class PageServerRelayIT {
  private static final int MEM_MIB = 64;

  @Test
  void dumpThroughRelayedPageServerRestoresFromItsImages(Criu criu, TestReporter reporter)
      throws Exception {
    try (Payload payload = Payload.builder().memMib(MEM_MIB).threads(1).intervalMillis(10)
            .start();
        TmpfsDir source = TmpfsDir.create("criu4j-it-src-");
        TmpfsDir destination = TmpfsDir.create("criu4j-it-dst-");
        UnixSocket.Pair serverSide = UnixSocket.pair(Native.SOCK_STREAM);
        UnixSocket.Pair dumpSide = UnixSocket.pair(Native.SOCK_STREAM)) {
      payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(10));

      long startNanos = System.nanoTime();
      PageServer server = criu.startPageServerChild(destination.path(), CriuOptions.builder()
          .pageServer(PageServerTarget.fd(serverSide.first().fd().get())).build());
      long atDump;
      Relay toServer;
      Relay toDump;
      try (server) {
        assertThat(server.pid()).isPositive();
        assertThat(server.port()).isZero();
        // CRIU holds its own copy; ours would keep the relay from ever seeing end of stream.
        serverSide.first().close();
        toServer = Relay.start("relay dump->server", dumpSide.second(), serverSide.second());
        toDump = Relay.start("relay server->dump", serverSide.second(), dumpSide.second());

        criu.dump(source.path(), CriuOptions.builder().pid(payload.pid())
            .pageServer(PageServerTarget.fd(dumpSide.first().fd().get())).build());
        dumpSide.first().close();
        atDump = payload.counter();

        assertThat(server.awaitExit()).as("page server wait status").isZero();
      }
      long dumpMillis = (System.nanoTime() - startNanos) / 1_000_000;
      toServer.join(Duration.ofSeconds(10));
      toDump.join(Duration.ofSeconds(10));
      Report.fact(reporter, "relayed", toServer.bytes() + " bytes to the server, "
          + toDump.bytes() + " back, page server + dump " + dumpMillis + " ms");

      assertThat(payload.isAlive()).isFalse();
      assertThat(toServer.bytes()).isGreaterThan((long) MEM_MIB << 20);
      // The page server's answers: has-parent flag for the open, status for the close.
      assertThat(toDump.bytes()).isPositive().isLessThan(1024);
      assertThat(names(source.path())).noneMatch(n -> n.startsWith("pages-"));
      assertThat(names(destination.path())).anyMatch(n -> n.startsWith("pages-"));

      copyMissingFiles(source.path(), destination.path());
      RestoreResult restore = criu.restore(destination.path(), CriuOptions.DEFAULTS);
      payload.registerRestored(restore.pid());

      assertThat(Payload.isRunning(restore.pid())).isTrue();
      // 64 MiB restored from the relayed pages; the payload checks them as it goes.
      payload.awaitCounterAbove(atDump + 20, Duration.ofSeconds(10));
      assertThat(Payload.isRunning(restore.pid())).isTrue();
    }
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  /** Copies every file of {@code from} that {@code to} lacks: the images other than pages. */
  private static void copyMissingFiles(Path from, Path to) throws IOException {
    try (Stream<Path> s = Files.list(from)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        Path target = to.resolve(p.getFileName());
        if (Files.isRegularFile(p) && !Files.exists(target)) {
          Files.copy(p, target);
        }
      }
    }
  }

  /**
   * Copies bytes from one stream socket to another on a platform thread (it blocks in native
   * reads) until end of stream, then half-closes the destination.
   */
  private static final class Relay implements Runnable {
    private final UnixSocket from;
    private final UnixSocket to;
    private final AtomicLong bytes = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread thread;

    private Relay(String name, UnixSocket from, UnixSocket to) {
      this.from = from;
      this.to = to;
      this.thread = new Thread(this, name);
      thread.setDaemon(true);
    }

    static Relay start(String name, UnixSocket from, UnixSocket to) {
      Relay r = new Relay(name, from, to);
      r.thread.start();
      return r;
    }

    @Override
    public void run() {
      ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
      try {
        while (from.read(buf) >= 0) {
          buf.flip();
          while (buf.hasRemaining()) {
            bytes.addAndGet(to.write(buf));
          }
          buf.clear();
        }
        to.shutdownOutput();
      } catch (MigrationException | RuntimeException e) {
        failure.set(e);
      }
    }

    long bytes() {
      return bytes.get();
    }

    /** Waits for end of stream; fails if the relay failed or is still copying. */
    void join(Duration timeout) throws InterruptedException {
      thread.join(timeout.toMillis());
      if (thread.isAlive()) {
        from.shutdown();
        to.shutdown();
        thread.join(timeout.toMillis());
        throw new AssertionError(thread.getName() + " saw no end of stream within " + timeout);
      }
      if (failure.get() != null) {
        throw new AssertionError(thread.getName() + " failed", failure.get());
      }
    }
  }
}

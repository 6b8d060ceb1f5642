package io.criu4j.examples;

import io.criu4j.MigrationException;
import io.criu4j.internal.image.SocketChannels;
import io.criu4j.internal.image.SyntheticPageClient;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.UnixSocket;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The fake CRIU of {@link TransferBench}'s sender, the same in every mode that plays a dump
 * (criu4j and relay): one thread writes a synthetic page-server session into a page socket, as
 * {@code criu dump} does into its {@code ps.fd}, and another writes the small image files into
 * a staging directory at the same time, each created, written from one direct buffer and closed.
 * The file names are made by the caller beforehand, so that the fake's own garbage does not
 * inflate the sender's heap, hence RSS.
 *
 * <p>Both threads add their CPU time to {@link #cpuNanos()} when they end, so that the sender's
 * figures can leave the fake CRIU out.
 *
 * <p>Owns a duplicate of the page socket it is given (closed when the page session is over, as
 * CRIU's end closes when it exits) and its two threads. Thread-safe.
 */
final class BenchCriu {
  private static final Set<StandardOpenOption> CREATE =
      Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);

  private final Thread pageWriter;
  private final Thread fileWriter;
  private final AtomicReference<Throwable> failed = new AtomicReference<>();
  private final AtomicLong cpuNanos = new AtomicLong();

  private BenchCriu(UnixSocket pageSocket, int headerSize, int pageSize, long pages,
      int pagesPerRequest, Path staging, String[] names, long[] sizes, Closed closed) {
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    pageWriter = new Thread(() -> {
      try (UnixSocket criu = pageSocket) {
        new SyntheticPageClient(headerSize, pageSize).run(SocketChannels.of(criu), 1, pages,
            pagesPerRequest);
      } catch (Throwable e) {
        failed.compareAndSet(null, e);
      } finally {
        cpuNanos.addAndGet(threads.getCurrentThreadCpuTime());
      }
    }, "fake-criu-pages");
    fileWriter = new Thread(() -> {
      try {
        byte[] bytes = new byte[8 * 1024];
        new Random(3).nextBytes(bytes);
        ByteBuffer data = ByteBuffer.allocateDirect(bytes.length).put(bytes);
        for (int i = 0; i < sizes.length; i++) {
          try (FileChannel f = FileChannel.open(staging.resolve(names[i]), CREATE)) {
            ByteBuffer b = data.clear().limit((int) sizes[i]);
            while (b.hasRemaining()) {
              f.write(b);
            }
          }
          if (closed != null) {
            closed.put(names[i]);
          }
        }
      } catch (Throwable e) {
        failed.compareAndSet(null, e);
      } finally {
        if (closed != null) {
          closed.end();
        }
        cpuNanos.addAndGet(threads.getCurrentThreadCpuTime());
      }
    }, "fake-criu-files");
  }

  /**
   * Starts writing {@code pages} pages into a duplicate of {@code pageFd} (the caller keeps
   * {@code pageFd}) and files {@code names[i]} of {@code sizes[i]} bytes (at most 8 KiB) into
   * {@code staging}; tells {@code closed}, if not null, of each file once it is closed.
   */
  static BenchCriu start(int pageFd, int headerSize, int pageSize, long pages,
      int pagesPerRequest, Path staging, String[] names, long[] sizes, Closed closed)
      throws MigrationException {
    UnixSocket socket = UnixSocket.adopt(Fd.duplicate(pageFd, 3).release());
    BenchCriu criu = new BenchCriu(socket, headerSize, pageSize, pages, pagesPerRequest,
        staging, names, sizes, closed);
    criu.pageWriter.start();
    criu.fileWriter.start();
    return criu;
  }

  /** Waits until the page session is over (the page socket is closed). */
  void joinPages() throws InterruptedException {
    pageWriter.join();
  }

  /** Waits until every file is written. */
  void joinFiles() throws InterruptedException {
    fileWriter.join();
  }

  /** The first failure of either thread, or null. */
  Throwable failure() {
    return failed.get();
  }

  /** The CPU time of the threads that have ended. */
  long cpuNanos() {
    return cpuNanos.get();
  }

  /**
   * The names of the files the fake CRIU has closed, in order, for a relay to pick up: a
   * stand-in for watching the staging directory that costs the relay less than inotify does
   * (no system call per file on either side, one wake-up only when the relay waits). Names
   * are the caller's strings, so the queue adds no garbage per file.
   *
   * <p>One producer, any number of consumers; thread-safe.
   */
  static final class Closed {
    /** Marks the end; compared by identity, so no file name can be mistaken for it. */
    @SuppressWarnings("StringOperationCanBeSimplified")
    private static final String END = new String("end");

    private final BlockingQueue<String> names;

    Closed(int files) {
      names = new ArrayBlockingQueue<>(files + 1);
    }

    void put(String name) throws InterruptedException {
      names.put(name);
    }

    /** No more names will come; {@link #take()} returns null once the queue is empty. */
    void end() {
      // The queue has room for every name and the end mark, so this never fails.
      names.add(END);
    }

    /** The next name, without waiting: {@code ""} if none is ready yet, null at the end. */
    String poll() {
      String name = names.poll();
      if (name == END) {
        names.add(END); // so that the end stays visible to later calls
        return null;
      }
      return name == null ? "" : name;
    }

    /** The next name, waiting for it; null at the end. */
    String take() throws InterruptedException {
      String name = names.take();
      if (name == END) {
        names.add(END);
        return null;
      }
      return name;
    }
  }
}

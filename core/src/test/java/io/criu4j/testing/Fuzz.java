package io.criu4j.testing;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * The oracle shared by the fuzz targets ({@code *FuzzTest}, see {@code docs/fuzzing.md}). Each
 * input runs on a worker thread under a deadline (a hang is a finding), the bytes the worker
 * allocates are bounded (a decoder trusting a length field is a finding), and what the body
 * throws must be one of the exceptions the decoder documents. Counts executions per target, for
 * the summary line {@link #report} prints.
 *
 * <p>Thread-safe; the worker thread is replaced when an input hangs it.
 */
public final class Fuzz {
  /** What the decoder did with an input that broke no rule of the oracle. */
  public enum Verdict {
    ACCEPTED,
    REJECTED
  }

  /** One input's run; returns the verdict or throws what the decoder threw. */
  @FunctionalInterface
  public interface Body {
    Verdict run() throws Exception;
  }

  private static final class Counters {
    final AtomicLong executions = new AtomicLong();
    final AtomicLong accepted = new AtomicLong();
    final AtomicLong rejected = new AtomicLong();
    final AtomicLong findings = new AtomicLong();
  }

  /**
   * Bytes one input may make the worker allocate besides a small multiple of its size: far above
   * what decoding a few kilobytes costs (class loading and instrumentation included), far below
   * what trusting a 32-bit length field would.
   */
  public static final long ALLOCATION_BOUND = 64L << 20;

  private static final Map<String, Counters> COUNTERS = new ConcurrentHashMap<>();
  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
  private static final java.lang.management.ClassLoadingMXBean CLASSES =
      ManagementFactory.getClassLoadingMXBean();
  private static ExecutorService worker = newWorker();
  private static volatile long workerId;

  private Fuzz() {}

  private static ExecutorService newWorker() {
    return Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "fuzz-worker");
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Runs {@code body} for one input of {@code target}.
   *
   * @param timeout the per-input deadline
   * @param maxAllocated the bytes the worker thread may allocate for this input
   * @throws AssertionError a finding: a hang, an allocation above the bound, or an exception the
   *     decoder does not document (the original is the cause); the message quotes the input
   */
  public static void check(String target, byte[] input, Duration timeout, long maxAllocated,
      Body body) {
    Counters c = COUNTERS.computeIfAbsent(target, t -> new Counters());
    c.executions.incrementAndGet();
    ExecutorService w;
    synchronized (Fuzz.class) {
      w = worker;
    }
    Future<Object[]> f = w.submit((Callable<Object[]>) () -> {
      long id = Thread.currentThread().getId();
      workerId = id;
      long classes = CLASSES.getTotalLoadedClassCount();
      long before = THREADS.getThreadAllocatedBytes(id);
      Object outcome;
      try {
        outcome = body.run();
      } catch (Throwable t) {
        outcome = t;
      }
      long allocated = THREADS.getThreadAllocatedBytes(id) - before;
      // Loading (and, when fuzzing, instrumenting) classes allocates plenty on the loading
      // thread: such an input is not measured. A huge allocation still fails as an
      // OutOfMemoryError under the fuzzing JVM's small heap.
      return new Object[] {outcome,
          CLASSES.getTotalLoadedClassCount() == classes ? allocated : 0L};
    });
    Object[] result;
    try {
      result = f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      synchronized (Fuzz.class) {
        worker.shutdownNow(); // the stuck thread is abandoned; later inputs get a fresh one
        worker = newWorker();
      }
      throw finding(c, target, input, "hung for more than " + timeout + stackOf(workerId), null);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    } catch (ExecutionException e) {
      throw finding(c, target, input, "the harness failed", e.getCause());
    }
    long allocated = (Long) result[1];
    if (allocated > maxAllocated) {
      throw finding(c, target, input, "allocated " + allocated + " bytes for one input (bound "
          + maxAllocated + ")", result[0] instanceof Throwable t ? t : null);
    }
    if (result[0] instanceof AssertionError a) {
      throw finding(c, target, input, a.getMessage(), a);
    }
    if (result[0] instanceof Throwable t) {
      throw finding(c, target, input, "undocumented exception " + t, t);
    }
    (result[0] == Verdict.ACCEPTED ? c.accepted : c.rejected).incrementAndGet();
  }

  private static String stackOf(long threadId) {
    for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
      if (e.getKey().getId() == threadId) {
        StringBuilder sb = new StringBuilder("; worker stack:");
        for (StackTraceElement el : e.getValue()) {
          sb.append("\n\tat ").append(el);
        }
        return sb.toString();
      }
    }
    return "";
  }

  private static AssertionError finding(Counters c, String target, byte[] input, String what,
      Throwable cause) {
    c.findings.incrementAndGet();
    String hex = HexFormat.of().formatHex(input, 0, Math.min(input.length, 256));
    return new AssertionError("fuzz[" + target + "] finding: " + what + "\n  input ("
        + input.length + " bytes): " + hex + (input.length > 256 ? "..." : ""), cause);
  }

  private static final java.util.Set<String> WARM = ConcurrentHashMap.newKeySet();

  /**
   * Runs {@code body} once per target before its first checked input, ignoring what it does:
   * the first run opens descriptors the JVM keeps (jar files, {@code /dev/urandom}, native
   * libraries) that would otherwise look like a leak.
   */
  public static void warmUp(String target, Body body) {
    if (WARM.add(target)) {
      try {
        body.run();
      } catch (Throwable ignored) {
        // only warming up
      }
    }
  }

  /** Prints the target's summary line: executions, accepted, rejected, findings. */
  public static String report(String target) {
    Counters c = COUNTERS.getOrDefault(target, new Counters());
    String line = String.format("fuzz[%s]: executions=%d accepted=%d rejected=%d findings=%d",
        target, c.executions.get(), c.accepted.get(), c.rejected.get(), c.findings.get());
    System.out.println(line); // the test log is where a CI run shows its fuzzing figures
    return line;
  }

  /** Open descriptors of this process. */
  public static int openFds() {
    try (Stream<Path> s = Files.list(Paths.get("/proc/self/fd"))) {
      return (int) s.count() - 1; // the listing's own descriptor
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  private static String describeFds() {
    try (Stream<Path> s = Files.list(Paths.get("/proc/self/fd"))) {
      return s.map(p -> {
        try {
          return p.getFileName() + "->" + Files.readSymbolicLink(p);
        } catch (IOException e) {
          return p.getFileName() + "->?";
        }
      }).toList().toString();
    } catch (IOException e) {
      return e.toString();
    }
  }

  /** Live threads named with one of {@code prefixes}. */
  public static long threads(List<String> prefixes) {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && prefixes.stream().anyMatch(p -> t.getName().startsWith(p)))
        .count();
  }

  /**
   * Waits up to two seconds for the descriptor count to fall back to {@code fds} and for no
   * thread named with one of {@code prefixes} to be alive; an {@link AssertionError} otherwise.
   */
  public static void assertNoLeaks(int fds, List<String> prefixes) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (true) {
      int nowFds = openFds();
      long nowThreads = threads(prefixes);
      if (nowFds <= fds && nowThreads == 0) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("leak: " + nowFds + " descriptors open (" + fds + " before), "
            + nowThreads + " threads " + prefixes + " alive; descriptors: " + describeFds());
      }
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
    }
  }

  /**
   * The saved crashing inputs of {@code target}: the files under the test resource directory
   * {@code fuzz/<target>/regressions/}, sorted by name.
   */
  public static Stream<Path> regressions(String target) throws IOException {
    var url = Fuzz.class.getResource("/fuzz/" + target + "/regressions");
    if (url == null) {
      return Stream.empty();
    }
    try (Stream<Path> s = Files.list(Paths.get(java.net.URI.create(url.toString())))) {
      return s.filter(Files::isRegularFile).sorted().toList().stream();
    }
  }

  /**
   * Writes {@code seeds} as {@code seed-N} into the directory where Jazzer looks for the inputs
   * of {@code fuzzTest.method}: {@code src/test/resources/<package>/<Class>Inputs/<method>/}
   * below the working directory (the module's). For regenerating the committed seeds.
   */
  public static void writeSeeds(Class<?> fuzzTest, String method, List<byte[]> seeds)
      throws IOException {
    Path dir = Paths.get("src", "test", "resources",
        fuzzTest.getPackageName().replace('.', '/'), fuzzTest.getSimpleName() + "Inputs", method);
    Files.createDirectories(dir);
    for (int i = 0; i < seeds.size(); i++) {
      Files.write(dir.resolve("seed-" + i), seeds.get(i));
    }
  }
}

package io.criu4j.examples;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.DumpResult;
import io.criu4j.RestoreResult;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Measures what driving CRIU through criu4j costs compared with the {@code criu} command line:
 * dump + restore of the same payload (256 MiB by default) through {@link Criu} and through
 * {@code criu dump -t PID -D DIR} / {@code criu restore -d -D DIR}, alternating, N times each;
 * and the VERSION round trip including the {@code criu swrk} spawn (the first call in this JVM,
 * then the median over fresh {@link Criu} instances). Images go to tmpfs ({@code /dev/shm}).
 *
 * <p>Prints a table and, last, {@code criu: library_vs_cli_ratio=R version_roundtrip_ms=X}
 * where R = median library dump+restore wall time / median CLI, and X = the median warm VERSION
 * round trip. Needs root, CRIU, {@code cc} and {@code unshare}; run by
 * {@code scripts/bench-criu.sh}.
 */
@Command(name = "criu-overhead-bench", mixinStandardHelpOptions = true,
    description = "criu4j vs the criu CLI: dump+restore wall time, VERSION round trip.")
public final class CriuOverheadBench implements Callable<Integer> {
  @Option(names = "--repetitions", defaultValue = "3", description = "dump+restore runs per "
      + "mode (default ${DEFAULT-VALUE})")
  int repetitions;

  @Option(names = "--mem-mib", defaultValue = "256", description = "payload memory in MiB "
      + "(default ${DEFAULT-VALUE})")
  int memMib;

  @Option(names = "--version-calls", defaultValue = "20", description = "fresh clients timed "
      + "for the warm VERSION round trip (default ${DEFAULT-VALUE})")
  int versionCalls;

  @Option(names = "--work-dir", description = "where images go (default: a new directory "
      + "under /dev/shm, removed at the end)")
  Path workDir;

  @Option(names = "--payload-dir", defaultValue = "examples/target/payload",
      description = "where the payload binary is compiled to (default ${DEFAULT-VALUE})")
  Path payloadDir;

  private record Run(int rep, String mode, double dumpMs, double restoreMs, long atDump,
      long after) {
    double totalMs() {
      return dumpMs + restoreMs;
    }
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new CriuOverheadBench()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    // First, before anything else touches criu4j: the cold VERSION round trip includes class
    // loading and native binding.
    long t0 = System.nanoTime();
    CriuVersion version = Criu.create().version();
    double coldMs = millisSince(t0);
    double[] warm = new double[versionCalls];
    for (int i = 0; i < versionCalls; i++) {
      long t = System.nanoTime();
      Criu.create().version();
      warm[i] = millisSince(t);
    }

    Criu criu = Criu.create();
    criu.version();
    Path criuBinary = criu.binary();
    Path payloadBinary = PayloadProcess.compile(payloadDir);
    boolean ownWorkDir = workDir == null;
    Path root = ownWorkDir ? Files.createTempDirectory(Paths.get("/dev/shm"), "criu4j-bench-")
        : Files.createDirectories(workDir);
    List<Run> runs = new ArrayList<>();
    try {
      System.out.printf(Locale.ROOT,
          "CRIU %s at %s; payload %d MiB; %d repetitions; images in %s%n", version, criuBinary,
          memMib, repetitions, root);
      for (int rep = 1; rep <= repetitions; rep++) {
        // Alternate which mode goes first, so neither always gets the warmer page cache.
        boolean libraryFirst = rep % 2 == 1;
        for (int k = 0; k < 2; k++) {
          boolean library = (k == 0) == libraryFirst;
          Path dir = Files.createDirectory(root.resolve("rep" + rep + (library ? "-lib" : "-cli")));
          Run run = library ? runLibrary(criu, payloadBinary, dir, rep)
              : runCli(criuBinary, payloadBinary, dir, rep);
          runs.add(run);
          System.out.printf(Locale.ROOT, "  rep %d %-7s dump %8.1f ms  restore %8.1f ms  "
              + "total %8.1f ms  counter %d -> %d%n", run.rep(), run.mode(), run.dumpMs(),
              run.restoreMs(), run.totalMs(), run.atDump(), run.after());
          deleteTree(dir);
        }
      }
    } finally {
      if (ownWorkDir) {
        deleteTree(root);
      }
    }

    double libTotal = median(runs, "library", Run::totalMs);
    double cliTotal = median(runs, "cli", Run::totalMs);
    double warmMedian = median(warm);
    System.out.println();
    System.out.printf(Locale.ROOT, "%-28s %12s %12s %12s%n", "median of " + repetitions,
        "dump ms", "restore ms", "total ms");
    for (String mode : List.of("library", "cli")) {
      System.out.printf(Locale.ROOT, "%-28s %12.1f %12.1f %12.1f%n",
          mode.equals("library") ? "criu4j (criu swrk, RPC)" : "criu CLI",
          median(runs, mode, Run::dumpMs), median(runs, mode, Run::restoreMs),
          median(runs, mode, Run::totalMs));
    }
    System.out.printf(Locale.ROOT, "%-28s %12.2f%n", "VERSION cold (1st call) ms", coldMs);
    System.out.printf(Locale.ROOT, "%-28s %12.2f   (min %.2f, max %.2f, %d fresh clients)%n",
        "VERSION warm median ms", warmMedian, Arrays.stream(warm).min().orElse(0),
        Arrays.stream(warm).max().orElse(0), versionCalls);
    System.out.printf(Locale.ROOT, "criu: library_vs_cli_ratio=%.3f version_roundtrip_ms=%.2f%n",
        libTotal / cliTotal, warmMedian);
    return 0;
  }

  private Run runLibrary(Criu criu, Path payloadBinary, Path dir, int rep) throws Exception {
    Path images = Files.createDirectory(dir.resolve("images"));
    try (PayloadProcess payload = PayloadProcess.start(payloadBinary, dir, memMib, 10)) {
      payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(10));
      long t0 = System.nanoTime();
      DumpResult dump = criu.dump(images, CriuOptions.builder().pid(payload.pid()).build());
      long t1 = System.nanoTime();
      long atDump = payload.counter();
      long t1b = System.nanoTime();
      RestoreResult restore = criu.restore(images, CriuOptions.DEFAULTS);
      long t2 = System.nanoTime();
      if (dump.stats().pagesWritten() < (long) memMib * 256) {
        throw new IllegalStateException("dump wrote only " + dump.stats().pagesWritten()
            + " pages");
      }
      long after = verifyContinues(payload, atDump, restore.pid());
      return new Run(rep, "library", (t1 - t0) / 1e6, (t2 - t1b) / 1e6, atDump, after);
    }
  }

  private Run runCli(Path criuBinary, Path payloadBinary, Path dir, int rep) throws Exception {
    Path images = Files.createDirectory(dir.resolve("images"));
    try (PayloadProcess payload = PayloadProcess.start(payloadBinary, dir, memMib, 10)) {
      payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(10));
      // -o: the log goes to a file in the images directory, as it does for the library.
      long t0 = System.nanoTime();
      exec(criuBinary.toString(), "dump", "-t", String.valueOf(payload.pid()), "-D",
          images.toString(), "-o", "dump.log");
      long t1 = System.nanoTime();
      long atDump = payload.counter();
      long t1b = System.nanoTime();
      exec(criuBinary.toString(), "restore", "-d", "-D", images.toString(), "-o", "restore.log",
          "--pidfile", images.resolve("restore.pid").toString());
      long t2 = System.nanoTime();
      int restored = Integer.parseInt(Files.readString(images.resolve("restore.pid"),
          StandardCharsets.US_ASCII).trim());
      long after = verifyContinues(payload, atDump, restored);
      return new Run(rep, "cli", (t1 - t0) / 1e6, (t2 - t1b) / 1e6, atDump, after);
    }
  }

  /** The restored payload runs and counts on from {@code atDump}; returns the counter seen. */
  private static long verifyContinues(PayloadProcess payload, long atDump, int restoredPid)
      throws Exception {
    if (!PayloadProcess.isRunning(restoredPid)) {
      throw new IllegalStateException("restored pid " + restoredPid + " is not running");
    }
    long after = payload.awaitCounterAbove(atDump + 5, Duration.ofSeconds(10));
    if (after < atDump) {
      throw new IllegalStateException("counter went back from " + atDump + " to " + after);
    }
    return after;
  }

  private static void exec(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException(String.join(" ", cmd) + " failed (exit "
          + (p.isAlive() ? "timeout" : p.exitValue()) + "): " + output);
    }
  }

  private static double millisSince(long t0) {
    return (System.nanoTime() - t0) / 1e6;
  }

  private static double median(List<Run> runs, String mode,
      java.util.function.ToDoubleFunction<Run> f) {
    return median(runs.stream().filter(r -> r.mode().equals(mode)).mapToDouble(f).toArray());
  }

  private static double median(double[] values) {
    double[] v = values.clone();
    Arrays.sort(v);
    int n = v.length;
    if (n == 0) {
      return Double.NaN;
    }
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}

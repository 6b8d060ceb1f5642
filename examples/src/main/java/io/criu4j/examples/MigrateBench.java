package io.criu4j.examples;

import java.io.File;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Downtime of a live migration with criu4j next to the two ways of moving a process with the
 * {@code criu} command line, on the same payloads in the same run:
 *
 * <ul>
 *   <li>{@code criu4j}: {@code MigrationSession} to a {@code MigrationAgent} running in this JVM
 *       over loopback TCP ({@code tcp://127.0.0.1:0}); downtime = {@code report.downtime()}
 *       (source frozen until the process runs on the destination), total =
 *       {@code report.total()} (pre-flight included);
 *   <li>{@code cli-tmpfs}: {@code criu dump -D tmpfs} then {@code criu restore -d -D} the same
 *       directory: the floor, no network and no copy;
 *   <li>{@code cli-disk}: {@code criu dump -D disk}, a copy of the image directory to another
 *       directory on the same disk, {@code fsync} of every copied file and of the directory,
 *       then {@code criu restore -d -D copy}: the shared-disk way criu4j replaces;
 *   <li>{@code cli-pageserver}: {@code criu page-server} (started before the freeze, as a
 *       destination would be) and {@code criu dump --page-server} to it over loopback TCP, a copy
 *       of the dump's other image files into the page server's directory (what a transfer would
 *       ship), then {@code criu restore} from there: CRIU's own streaming of pages, with no
 *       criu4j code. criu4j streams pages the same way (page-server protocol into a destination
 *       page server), so this is the floor of that design: it shows how much of the gap to
 *       {@code cli-tmpfs} is CRIU's page-server path rather than criu4j.
 *   <li>{@code cli-tmpfs-held}: like {@code cli-tmpfs}, but the dump leaves the original
 *       stopped ({@code --leave-stopped}) until the restored copy runs, as a live migration must
 *       (criu4j holds the source frozen until the destination has restored). The original's
 *       memory is then still in use while the restore allocates the copy's, which
 *       {@code cli-tmpfs} gets from the original it has just killed; on a virtual machine whose
 *       freed memory goes back to the host, fresh memory costs noticeably more to touch.
 * </ul>
 *
 * <p>For the command-line cases the process is frozen from the start of the dump until the
 * restore has finished, so downtime = total = that span. Every case checks that the restored
 * payload runs and counts on from where it stopped.
 *
 * <p>Prints one line per run, a table of medians per size and mode, and last
 * {@code migrate: downtime_vs_tmpfs=R downtime_vs_disk=R}: criu4j's median downtime divided by
 * each baseline's, for the 1024 MiB payload (or the largest size measured). Just before it, when
 * {@code cli-pageserver} ran, {@code pageserver: criu4j_vs_cli_pageserver=R
 * cli_pageserver_vs_tmpfs=R} for the same size. Needs root, CRIU,
 * {@code cc} and {@code unshare}; run by {@code scripts/bench-migrate.sh}.
 */
@Command(name = "migrate-bench", mixinStandardHelpOptions = true,
    description = "criu4j live migration vs criu CLI dump/restore through tmpfs and disk.")
public final class MigrateBench implements Callable<Integer> {
  static final String CRIU4J = "criu4j";
  static final String CLI_TMPFS = "cli-tmpfs";
  static final String CLI_DISK = "cli-disk";
  static final String CLI_PAGESERVER = "cli-pageserver";
  static final String CLI_TMPFS_HELD = "cli-tmpfs-held";

  @Option(names = "--sizes", split = ",", defaultValue = "64,256,1024",
      description = "payload sizes in MiB (default ${DEFAULT-VALUE})")
  List<Integer> sizes;

  @Option(names = "--repetitions", defaultValue = "3",
      description = "runs per size and mode; the table shows medians (default ${DEFAULT-VALUE})")
  int repetitions;

  @Option(names = "--modes", split = ",", defaultValue = CRIU4J + "," + CLI_TMPFS + ","
      + CLI_DISK + "," + CLI_PAGESERVER + "," + CLI_TMPFS_HELD, description = "what to measure (default ${DEFAULT-VALUE})")
  List<String> modes;

  @Option(names = "--warmup", defaultValue = "1", description = "unmeasured criu4j migrations "
      + "of a 64 MiB payload first, so that the measured ones run on a warm JVM "
      + "(default ${DEFAULT-VALUE})")
  int warmup;

  @Option(names = "--work-dir", description = "tmpfs directory for payload files, criu4j "
      + "staging and cache, and the cli-tmpfs images (default: a new directory under /dev/shm, "
      + "removed at the end)")
  Path workDir;

  @Option(names = "--disk-dir", description = "directory on disk for the cli-disk images and "
      + "their copy (default: a new directory under /var/tmp, removed at the end)")
  Path diskDir;

  @Option(names = "--payload-dir", defaultValue = "examples/target/payload",
      description = "where the payload binary is compiled to (default ${DEFAULT-VALUE})")
  Path payloadDir;

  /** One measured migration. */
  record Run(int mib, String mode, int rep, double downtimeMs, double totalMs, String detail) {}

  public static void main(String[] args) {
    System.exit(new CommandLine(new MigrateBench()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    for (String m : modes) {
      if (!List.of(CRIU4J, CLI_TMPFS, CLI_DISK, CLI_PAGESERVER, CLI_TMPFS_HELD).contains(m)) {
        throw new CommandLine.ParameterException(new CommandLine(this), "unknown mode: " + m);
      }
    }
    Path criuBinary = io.criu4j.Criu.create().binary();
    String criuVersion = io.criu4j.Criu.create().version().toString();
    Path payloadBinary = PayloadProcess.compile(payloadDir);
    boolean ownWork = workDir == null;
    boolean ownDisk = diskDir == null;
    Path work = ownWork ? Files.createTempDirectory(Paths.get("/dev/shm"), "criu4j-mbench-")
        : Files.createDirectories(workDir);
    Path disk = ownDisk ? Files.createTempDirectory(Paths.get("/var/tmp"), "criu4j-mbench-")
        : Files.createDirectories(diskDir);
    List<Run> runs = new ArrayList<>();
    try (Criu4jMigrator migrator = modes.contains(CRIU4J) ? Criu4jMigrator.start(work) : null) {
      System.out.printf(Locale.ROOT, "CRIU %s at %s; sizes %s MiB; %d repetitions; tmpfs %s; "
          + "disk %s%s%n", criuVersion, criuBinary, sizes, repetitions, work, disk,
          migrator == null ? "" : "; criu4j agent in this JVM at " + migrator.address());
      for (int i = 1; migrator != null && i <= warmup; i++) {
        Path dir = Files.createDirectory(work.resolve("warmup-" + i));
        try (PayloadProcess payload = PayloadProcess.start(payloadBinary, dir, 64, 10)) {
          payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(30));
          Run run = migrator.migrate(payload, dir, 64, 0);
          System.out.printf(Locale.ROOT, "  warm-up %d (not counted): downtime %.1f ms, total "
              + "%.1f ms%n", i, run.downtimeMs(), run.totalMs());
        } finally {
          CriuOverheadBench.deleteTree(dir);
        }
      }
      for (int mib : sizes) {
        for (int rep = 1; rep <= repetitions; rep++) {
          // Rotate the order so that no mode always runs first (cold caches) or last.
          List<String> order = new ArrayList<>(modes);
          java.util.Collections.rotate(order, -(rep - 1));
          for (String mode : order) {
            Path dir = Files.createDirectory(work.resolve(mode + "-" + mib + "-" + rep));
            Run run;
            try (PayloadProcess payload = PayloadProcess.start(payloadBinary, dir, mib, 10)) {
              payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(30));
              run = switch (mode) {
                case CRIU4J -> migrator.migrate(payload, dir, mib, rep);
                case CLI_TMPFS -> cliTmpfs(criuBinary, payload, dir, mib, rep, false);
                case CLI_PAGESERVER -> cliPageServer(criuBinary, payload, dir, mib, rep);
                case CLI_TMPFS_HELD -> cliTmpfs(criuBinary, payload, dir, mib, rep, true);
                default -> cliDisk(criuBinary, payload, dir, disk, mib, rep);
              };
            } finally {
              CriuOverheadBench.deleteTree(dir);
            }
            runs.add(run);
            System.out.printf(Locale.ROOT, "  %5d MiB  %-14s rep %d  downtime %9.1f ms  total "
                + "%9.1f ms  %s%n", mib, mode, rep, run.downtimeMs(), run.totalMs(),
                run.detail());
          }
        }
      }
    } finally {
      if (ownWork) {
        CriuOverheadBench.deleteTree(work);
      }
      if (ownDisk) {
        CriuOverheadBench.deleteTree(disk);
      }
    }
    printTable(runs);
    return 0;
  }

  private void printTable(List<Run> runs) {
    System.out.println();
    System.out.printf(Locale.ROOT, "median of %d%n", repetitions);
    System.out.printf(Locale.ROOT, "%8s  %-14s %14s %14s%n", "MiB", "mode", "downtime ms",
        "total ms");
    for (int mib : sizes) {
      for (String mode : modes) {
        System.out.printf(Locale.ROOT, "%8d  %-14s %14.1f %14.1f%n", mib, mode,
            median(runs, mib, mode, Run::downtimeMs), median(runs, mib, mode, Run::totalMs));
      }
    }
    int ratioSize = sizes.contains(1024) ? 1024 : sizes.stream().max(Integer::compare).orElse(0);
    Map<String, Double> downtime = new LinkedHashMap<>();
    for (String mode : List.of(CRIU4J, CLI_TMPFS, CLI_DISK, CLI_PAGESERVER, CLI_TMPFS_HELD)) {
      downtime.put(mode, median(runs, ratioSize, mode, Run::downtimeMs));
    }
    if (ratioSize != 1024) {
      System.out.printf(Locale.ROOT, "(ratios below are for %d MiB: 1024 MiB was not measured)%n",
          ratioSize);
    }
    if (modes.contains(CLI_PAGESERVER)) {
      System.out.printf(Locale.ROOT, "pageserver: criu4j_vs_cli_pageserver=%s "
          + "cli_pageserver_vs_tmpfs=%s%n",
          ratio(downtime.get(CRIU4J), downtime.get(CLI_PAGESERVER)),
          ratio(downtime.get(CLI_PAGESERVER), downtime.get(CLI_TMPFS)));
    }
    if (modes.contains(CLI_TMPFS_HELD)) {
      System.out.printf(Locale.ROOT, "held: criu4j_vs_cli_tmpfs_held=%s "
          + "cli_tmpfs_held_vs_tmpfs=%s%n",
          ratio(downtime.get(CRIU4J), downtime.get(CLI_TMPFS_HELD)),
          ratio(downtime.get(CLI_TMPFS_HELD), downtime.get(CLI_TMPFS)));
    }
    System.out.printf(Locale.ROOT, "migrate: downtime_vs_tmpfs=%s downtime_vs_disk=%s%n",
        ratio(downtime.get(CRIU4J), downtime.get(CLI_TMPFS)),
        ratio(downtime.get(CRIU4J), downtime.get(CLI_DISK)));
  }

  private static String ratio(double a, double b) {
    return Double.isNaN(a) || Double.isNaN(b) ? "n/a" : String.format(Locale.ROOT, "%.3f", a / b);
  }

  /**
   * Dumps into tmpfs and restores from there; {@code held}: the dump leaves the original stopped
   * and it is killed only once the copy runs ({@code cli-tmpfs-held}).
   */
  private static Run cliTmpfs(Path criu, PayloadProcess payload, Path dir, int mib, int rep,
      boolean held) throws Exception {
    Path images = Files.createDirectory(dir.resolve("images"));
    long t0 = System.nanoTime();
    if (held) {
      exec(criu.toString(), "dump", "-t", String.valueOf(payload.pid()), "-D",
          images.toString(), "-o", "dump.log", "--leave-stopped");
    } else {
      criuDump(criu, payload.pid(), images);
    }
    long t1 = System.nanoTime();
    int restored = criuRestore(criu, images);
    long t2 = System.nanoTime();
    if (held) {
      payload.killOriginal();
    }
    long atDump = verifyContinues(payload, restored);
    double ms = (t2 - t0) / 1e6;
    return new Run(mib, held ? CLI_TMPFS_HELD : CLI_TMPFS, rep, ms, ms, String.format(
        Locale.ROOT, "(dump %.1f, restore%s %.1f ms; counter on from %d)", (t1 - t0) / 1e6,
        held ? " with the original held" : "", (t2 - t1) / 1e6, atDump));
  }


  private static Run cliPageServer(Path criu, PayloadProcess payload, Path dir, int mib, int rep)
      throws Exception {
    Path images = Files.createDirectory(dir.resolve("images"));
    Path received = Files.createDirectory(dir.resolve("received"));
    int port = freePort();
    // Daemonized (-d): returns once it listens, and exits when the dump's connection ends.
    exec(criu.toString(), "page-server", "-d", "-D", received.toString(), "--address",
        "127.0.0.1", "--port", String.valueOf(port), "-o", "page-server.log");
    long t0 = System.nanoTime();
    exec(criu.toString(), "dump", "-t", String.valueOf(payload.pid()), "-D", images.toString(),
        "-o", "dump.log", "--page-server", "--address", "127.0.0.1", "--port",
        String.valueOf(port));
    long t1 = System.nanoTime();
    long bytes = 0;
    try (Stream<Path> list = Files.list(images)) {
      for (Path f : list.filter(Files::isRegularFile).toList()) {
        Path to = received.resolve(f.getFileName().toString());
        if (!Files.exists(to)) { // the page server's own files stay as it wrote them
          bytes += Files.size(Files.copy(f, to));
        }
      }
    }
    long t2 = System.nanoTime();
    int restored = criuRestore(criu, received);
    long t3 = System.nanoTime();
    long atDump = verifyContinues(payload, restored);
    double ms = (t3 - t0) / 1e6;
    return new Run(mib, CLI_PAGESERVER, rep, ms, ms, String.format(Locale.ROOT,
        "(dump to page server %.1f, copy of %d KiB other images %.1f, restore %.1f ms; counter "
            + "on from %d)", (t1 - t0) / 1e6, bytes >> 10, (t2 - t1) / 1e6, (t3 - t2) / 1e6,
        atDump));
  }

  /** A loopback TCP port free a moment ago (the page server binds it right after). */
  private static int freePort() throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1,
        java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static Run cliDisk(Path criu, PayloadProcess payload, Path dir, Path disk, int mib,
      int rep) throws Exception {
    Path base = Files.createDirectory(disk.resolve("run-" + mib + "-" + rep));
    try {
      Path images = Files.createDirectory(base.resolve("images"));
      Path copy = Files.createDirectory(base.resolve("copy"));
      long t0 = System.nanoTime();
      criuDump(criu, payload.pid(), images);
      long t1 = System.nanoTime();
      long bytes = copyDurably(images, copy);
      long t2 = System.nanoTime();
      int restored = criuRestore(criu, copy);
      long t3 = System.nanoTime();
      long atDump = verifyContinues(payload, restored);
      double ms = (t3 - t0) / 1e6;
      return new Run(mib, CLI_DISK, rep, ms, ms, String.format(Locale.ROOT,
          "(dump %.1f, copy+fsync %.1f ms for %d MiB, restore %.1f ms; counter on from %d)",
          (t1 - t0) / 1e6, (t2 - t1) / 1e6, bytes >> 20, (t3 - t2) / 1e6, atDump));
    } finally {
      CriuOverheadBench.deleteTree(base);
    }
  }

  /**
   * Copies the regular files of {@code from} into {@code to} and forces each copy and the
   * directory to the disk, so the restore reads what another host would read from shared storage
   * rather than pages that never left the cache. Returns the bytes copied.
   */
  static long copyDurably(Path from, Path to) throws IOException {
    long bytes = 0;
    List<Path> files;
    try (Stream<Path> list = Files.list(from)) {
      files = list.filter(Files::isRegularFile).toList();
    }
    for (Path src : files) {
      Path dst = to.resolve(src.getFileName().toString());
      try (FileChannel in = FileChannel.open(src, StandardOpenOption.READ);
          FileChannel out = FileChannel.open(dst, StandardOpenOption.CREATE_NEW,
              StandardOpenOption.WRITE)) {
        long size = in.size();
        long pos = 0;
        while (pos < size) {
          pos += in.transferTo(pos, size - pos, out);
        }
        out.force(true);
        bytes += size;
      }
    }
    try (FileChannel d = FileChannel.open(to, StandardOpenOption.READ)) {
      d.force(true);
    }
    return bytes;
  }

  private static void criuDump(Path criu, int pid, Path images) throws Exception {
    // -o: the log goes to a file in the images directory, as it does for the library.
    exec(criu.toString(), "dump", "-t", String.valueOf(pid), "-D", images.toString(), "-o",
        "dump.log");
  }

  private static int criuRestore(Path criu, Path images) throws Exception {
    Path pidFile = images.resolve("restore.pid");
    exec(criu.toString(), "restore", "-d", "-D", images.toString(), "-o", "restore.log",
        "--pidfile", pidFile.toString());
    return Integer.parseInt(Files.readString(pidFile, StandardCharsets.US_ASCII).trim());
  }

  /**
   * The restored payload {@code restoredPid} runs and counts on from where the dump stopped it;
   * returns the counter it stopped at.
   */
  static long verifyContinues(PayloadProcess payload, int restoredPid) throws Exception {
    long atDump = payload.counter();
    if (!PayloadProcess.isRunning(restoredPid)) {
      throw new IllegalStateException("restored pid " + restoredPid + " is not running");
    }
    payload.awaitCounterAbove(atDump + 3, Duration.ofSeconds(10));
    return atDump;
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

  private static double median(List<Run> runs, int mib, String mode,
      java.util.function.ToDoubleFunction<Run> f) {
    double[] v = runs.stream().filter(r -> r.mib() == mib && r.mode().equals(mode))
        .mapToDouble(f).sorted().toArray();
    int n = v.length;
    if (n == 0) {
      return Double.NaN;
    }
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
}

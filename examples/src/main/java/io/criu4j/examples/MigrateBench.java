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
 * Downtime of a live migration with criu4j next to the ways of moving a process with the
 * {@code criu} command line, on the same payloads in the same run:
 *
 * <ul>
 *   <li>{@code criu4j}: {@code MigrationSession} to a {@code MigrationAgent} running in this JVM
 *       over loopback TCP ({@code tcp://127.0.0.1:0}), stop-and-copy; downtime =
 *       {@code report.downtime()} (source frozen until the process runs on the destination),
 *       total = {@code report.total()} (pre-flight included);
 *   <li>{@code criu4j-postcopy}: the same with {@code postCopy(true)}: the destination runs the
 *       process once everything but its memory arrived, and the memory follows from the frozen
 *       source; downtime = {@code report.downtime()} (until the copy runs), total =
 *       {@code report.total()} (until all of its memory arrived);
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
 *   <li>{@code cli-lazy}: CRIU's own post-copy: {@code criu dump --lazy-pages --address
 *       127.0.0.1 --port P} in the background, which serves the memory from a page server of
 *       its own; once that listens, a copy of the image files (the pages stay in the frozen
 *       original) into another directory, {@code criu lazy-pages --page-server} there (a
 *       daemon), and {@code criu restore --lazy-pages -d}. Downtime = from the start of the dump
 *       until the restore returned (the copy runs); total = until the dump ended, all of the
 *       memory served (CRIU then kills the original).
 * </ul>
 *
 * <p>For the other command-line cases the process is frozen from the start of the dump until
 * the restore has finished, so downtime = total = that span. Every case checks that the restored
 * payload runs and counts on from where it stopped (and, for the post-copy cases, that the
 * original is gone).
 *
 * <p>Prints one line per run, a table of medians per size and mode, then the lines of
 * {@link MigrateSummary}, for the 1024 MiB payload (or the largest size measured):
 * {@code pageserver: ...} and {@code held: ...} (when those modes ran),
 * {@code postcopy: criu4j_postcopy_vs_cli_lazy=R criu4j_postcopy_ms=X cli_lazy_ms=Y} (median
 * downtimes), {@code stopcopy: downtime_vs_tmpfs=R downtime_vs_disk=R} (mode {@code criu4j}),
 * and last {@code migrate: downtime_vs_tmpfs=R downtime_vs_disk=R mode=M}: the median downtime
 * of the better criu4j mode that ran, named by {@code M} ({@code criu4j-postcopy} or
 * {@code criu4j}), divided by each baseline's. Needs root, CRIU (post-copy: userfaultfd and
 * {@code fs.pipe-max-size >= 4194304}), {@code cc} and {@code unshare}; run by
 * {@code scripts/bench-migrate.sh}.
 */
@Command(name = "migrate-bench", mixinStandardHelpOptions = true,
    description = "criu4j live migration (stop-and-copy and post-copy) vs criu CLI "
        + "dump/restore through tmpfs, disk and a page server, and CRIU's own post-copy.")
public final class MigrateBench implements Callable<Integer> {
  static final String CRIU4J = "criu4j";
  static final String CLI_TMPFS = "cli-tmpfs";
  static final String CLI_DISK = "cli-disk";
  static final String CLI_PAGESERVER = "cli-pageserver";
  static final String CLI_TMPFS_HELD = "cli-tmpfs-held";
  static final String CRIU4J_POSTCOPY = "criu4j-postcopy";
  static final String CLI_LAZY = "cli-lazy";
  /** Every mode, in the default order. */
  static final List<String> MODES = List.of(CRIU4J, CRIU4J_POSTCOPY, CLI_TMPFS, CLI_DISK,
      CLI_PAGESERVER, CLI_TMPFS_HELD, CLI_LAZY);

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = "--sizes", split = ",", defaultValue = "64,256,1024",
      description = "payload sizes in MiB (default ${DEFAULT-VALUE})")
  List<Integer> sizes;

  @Option(names = "--repetitions", defaultValue = "3",
      description = "runs per size and mode; the table shows medians (default ${DEFAULT-VALUE})")
  int repetitions;

  @Option(names = "--modes", split = ",", defaultValue = CRIU4J + "," + CRIU4J_POSTCOPY + ","
      + CLI_TMPFS + "," + CLI_DISK + "," + CLI_PAGESERVER + "," + CLI_TMPFS_HELD + ","
      + CLI_LAZY, description = "what to measure (default ${DEFAULT-VALUE})")
  List<String> modes;

  @Option(names = "--warmup", defaultValue = "1", description = "unmeasured criu4j migrations "
      + "of a 64 MiB payload first, per criu4j mode to measure, so that the measured ones run "
      + "on a warm JVM (default ${DEFAULT-VALUE})")
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
      if (!MODES.contains(m)) {
        throw new CommandLine.ParameterException(spec.commandLine(), "unknown mode: " + m);
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
    List<Boolean> criu4jModes = new ArrayList<>();
    if (modes.contains(CRIU4J)) {
      criu4jModes.add(false);
    }
    if (modes.contains(CRIU4J_POSTCOPY)) {
      criu4jModes.add(true);
    }
    try (Criu4jMigrator migrator = criu4jModes.isEmpty() ? null : Criu4jMigrator.start(work)) {
      System.out.printf(Locale.ROOT, "CRIU %s at %s; sizes %s MiB; %d repetitions; tmpfs %s; "
          + "disk %s%s%n", criuVersion, criuBinary, sizes, repetitions, work, disk,
          migrator == null ? "" : "; criu4j agent in this JVM at " + migrator.address());
      for (boolean postCopy : criu4jModes) {
        for (int i = 1; i <= warmup; i++) {
          Path dir = Files.createDirectory(work.resolve("warmup-" + (postCopy ? "post-" : "")
              + i));
          try (PayloadProcess payload = PayloadProcess.start(payloadBinary, dir, 64, 10)) {
            payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(30));
            Run run = migrator.migrate(payload, dir, 64, 0, postCopy);
            System.out.printf(Locale.ROOT, "  warm-up %d %s (not counted): downtime %.1f ms, "
                + "total %.1f ms%n", i, run.mode(), run.downtimeMs(), run.totalMs());
          } finally {
            CriuOverheadBench.deleteTree(dir);
          }
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
                case CRIU4J -> migrator.migrate(payload, dir, mib, rep, false);
                case CRIU4J_POSTCOPY -> migrator.migrate(payload, dir, mib, rep, true);
                case CLI_LAZY -> cliLazy(criuBinary, payload, dir, mib, rep);
                case CLI_TMPFS -> cliTmpfs(criuBinary, payload, dir, mib, rep, false);
                case CLI_PAGESERVER -> cliPageServer(criuBinary, payload, dir, mib, rep);
                case CLI_TMPFS_HELD -> cliTmpfs(criuBinary, payload, dir, mib, rep, true);
                default -> cliDisk(criuBinary, payload, dir, disk, mib, rep);
              };
            } finally {
              CriuOverheadBench.deleteTree(dir);
            }
            runs.add(run);
            System.out.printf(Locale.ROOT, "  %5d MiB  %-15s rep %d  downtime %9.1f ms  total "
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
    System.out.printf(Locale.ROOT, "%8s  %-15s %14s %14s%n", "MiB", "mode", "downtime ms",
        "total ms");
    for (int mib : sizes) {
      for (String mode : modes) {
        System.out.printf(Locale.ROOT, "%8d  %-15s %14.1f %14.1f%n", mib, mode,
            median(runs, mib, mode, Run::downtimeMs), median(runs, mib, mode, Run::totalMs));
      }
    }
    int ratioSize = sizes.contains(1024) ? 1024 : sizes.stream().max(Integer::compare).orElse(0);
    Map<String, Double> downtime = new LinkedHashMap<>();
    for (String mode : MODES) {
      downtime.put(mode, median(runs, ratioSize, mode, Run::downtimeMs));
    }
    MigrateSummary.lines(ratioSize, modes, downtime).forEach(System.out::println);
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

  /**
   * CRIU's own post-copy from the command line: {@code criu dump --lazy-pages} (in the
   * background) freezes the tree, writes everything but its memory and serves the memory from a
   * page server of its own; once that listens, the image files (small: the pages stay in the
   * original) are copied to another directory, {@code criu lazy-pages --page-server} is started
   * there as a daemon and {@code criu restore --lazy-pages -d} runs the copy, whose memory then
   * arrives on demand and in the background. The dump ends, killing the original, once all of
   * the memory was served. Downtime: dump start until the restore returned (the copy runs);
   * total: until the dump ended.
   */
  private static Run cliLazy(Path criu, PayloadProcess payload, Path dir, int mib, int rep)
      throws Exception {
    Path images = Files.createDirectory(dir.resolve("images"));
    Path received = Files.createDirectory(dir.resolve("received"));
    Path dumpOutput = dir.resolve("dump.out");
    Path lazyPidFile = received.resolve("lazy-pages.pid");
    String port = String.valueOf(freePort());
    long t0 = System.nanoTime();
    Process dump = new ProcessBuilder(criu.toString(), "dump", "-t",
        String.valueOf(payload.pid()), "-D", images.toString(), "-o", "dump.log",
        "--lazy-pages", "--address", "127.0.0.1", "--port", port).redirectErrorStream(true)
        .redirectOutput(dumpOutput.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    try {
      awaitListening(Integer.parseInt(port), dump, images.resolve("dump.log"));
      long t1 = System.nanoTime();
      long bytes = 0;
      try (Stream<Path> list = Files.list(images)) {
        for (Path f : list.filter(f -> f.getFileName().toString().endsWith(".img")).toList()) {
          bytes += Files.size(Files.copy(f, received.resolve(f.getFileName().toString())));
        }
      }
      long t2 = System.nanoTime();
      // Daemonized (-d): returns once it listens for the restore; ends once all pages arrived.
      exec(criu.toString(), "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port",
          port, "-D", received.toString(), "-o", "lazy-pages.log", "-d", "--pidfile",
          lazyPidFile.toString());
      long t3 = System.nanoTime();
      int restored = criuRestore(criu, received, "--lazy-pages");
      long t4 = System.nanoTime();
      if (!dump.waitFor(5, TimeUnit.MINUTES)) {
        throw new IOException("criu dump --lazy-pages still serves pages after 5 minutes");
      }
      long t5 = System.nanoTime();
      if (dump.exitValue() != 0) {
        throw new IOException("criu dump --lazy-pages failed (exit " + dump.exitValue() + "): "
            + Files.readString(dumpOutput) + tail(images.resolve("dump.log")));
      }
      if (PayloadProcess.isRunning(payload.pid())) {
        throw new IllegalStateException("the original pid " + payload.pid() + " still runs "
            + "after the lazy dump ended");
      }
      long atDump = verifyContinues(payload, restored);
      return new Run(mib, CLI_LAZY, rep, (t4 - t0) / 1e6, (t5 - t0) / 1e6, String.format(
          Locale.ROOT, "(dump until its page server listens %.1f, copy of %d KiB images %.1f, "
              + "lazy-pages start %.1f, restore %.1f ms; memory followed in %.1f ms; counter on "
              + "from %d)", (t1 - t0) / 1e6, bytes >> 10, (t2 - t1) / 1e6, (t3 - t2) / 1e6,
          (t4 - t3) / 1e6, (t5 - t4) / 1e6, atDump));
    } finally {
      if (dump.isAlive()) {
        dump.destroyForcibly();
        dump.waitFor(10, TimeUnit.SECONDS);
      }
      // Left over only when something failed: it would wait for the restore for ever.
      if (Files.exists(lazyPidFile)) {
        ProcessHandle.of(Long.parseLong(Files.readString(lazyPidFile).trim()))
            .ifPresent(ProcessHandle::destroyForcibly);
      }
    }
  }

  /**
   * Waits until a TCP socket listens on 127.0.0.1:{@code port}, as {@code /proc/net/tcp} shows
   * it (connecting would take the place of the one client the page server serves).
   */
  private static void awaitListening(int port, Process dump, Path log)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
    while (!listens(Files.readString(Paths.get("/proc/net/tcp"), StandardCharsets.US_ASCII),
        port)) {
      if (!dump.isAlive()) {
        throw new IOException("criu dump --lazy-pages ended (exit " + dump.exitValue()
            + ") before its page server listened" + tail(log));
      }
      if (System.nanoTime() - deadline > 0) {
        throw new IOException("criu dump --lazy-pages: no page server on port " + port
            + " within 5 minutes" + tail(log));
      }
      Thread.sleep(1);
    }
  }

  /**
   * Whether {@code procNetTcp} (the text of {@code /proc/net/tcp}) has a socket listening on
   * 127.0.0.1:{@code port}.
   */
  static boolean listens(String procNetTcp, int port) {
    String local = String.format(Locale.ROOT, "0100007F:%04X", port);
    for (String line : procNetTcp.split("\n")) {
      String[] f = line.trim().split("\\s+");
      // sl local_address rem_address st ...; 0A is TCP_LISTEN
      if (f.length > 3 && f[1].equals(local) && f[3].equals("0A")) {
        return true;
      }
    }
    return false;
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return "; " + log.getFileName() + " ends: "
          + String.join(" | ", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
    } catch (IOException e) {
      return "";
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

  private static int criuRestore(Path criu, Path images, String... extra) throws Exception {
    Path pidFile = images.resolve("restore.pid");
    List<String> cmd = new ArrayList<>(List.of(criu.toString(), "restore", "-d", "-D",
        images.toString(), "-o", "restore.log", "--pidfile", pidFile.toString()));
    cmd.addAll(List.of(extra));
    exec(cmd.toArray(String[]::new));
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

package io.criu4j.testing;

import io.criu4j.internal.posix.Native;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * A real process for CRIU to checkpoint: {@code src/test/c/payload.c}, compiled once per JVM
 * with {@code cc -O2 -pthread}, started as {@code unshare --pid --fork setsid payload ...} so it
 * is PID 1 of its own PID namespace (a restored copy can then coexist with a frozen original on
 * the same machine), with stdin, stdout and stderr at {@code /dev/null} and no other descriptor.
 * It counts in a file ({@link #counter()}), optionally with memory to carry, threads, child
 * processes and a second file it keeps appending to ({@link #appendedRecords()}), and stops
 * counting when anything it had did not survive a restore.
 *
 * <p>{@link #start} returns once the payload is ready (its memory is filled and the counter
 * file holds a number). {@link #close()} kills the payload, its {@code unshare} wrapper and
 * every copy of it that was restored from a checkpoint (registered or not: any process whose
 * command line names this payload's counter file), waits until they are dead, and removes the
 * payload's directory on tmpfs. Idempotent. Thread-safe.
 *
 * <p>The C source is found through the system property {@value #SOURCE_PROPERTY} (the core pom
 * sets it for surefire and failsafe) or relative to the working directory; the binary goes to
 * {@value #BINARY_DIR_PROPERTY}, else {@code target/} of the working directory, else a
 * temporary directory. Needs Linux, {@code cc} and {@code unshare}; root for the PID
 * namespace.
 */
public final class Payload implements AutoCloseable {
  /** System property naming {@code payload.c}. */
  public static final String SOURCE_PROPERTY = "criu4j.payload.source";
  /** System property naming the directory the compiled payload goes to. */
  public static final String BINARY_DIR_PROPERTY = "criu4j.payload.dir";

  /** Bytes per record in the counter and appended files (payload.c's RECORD_LEN). */
  private static final int RECORD_LEN = 20;
  private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration KILL_TIMEOUT = Duration.ofSeconds(10);
  private static Path compiled;

  private final Path binary;
  private final TmpfsDir dir;
  private final Path counterFile;
  private final Path appendFile;
  private final Process wrapper;
  private final int pid;
  private final Set<Integer> restored = new LinkedHashSet<>();
  private boolean closed;

  private Payload(Path binary, TmpfsDir dir, Path counterFile, Path appendFile, Process wrapper,
      int pid) {
    this.binary = binary;
    this.dir = dir;
    this.counterFile = counterFile;
    this.appendFile = appendFile;
    this.wrapper = wrapper;
    this.pid = pid;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A payload with no extra memory, threads or children, counting every 20 ms. */
  public static Payload start() {
    return builder().start();
  }

  /** The payload's pid as this process sees it (the child of the {@code unshare} wrapper). */
  public int pid() {
    return pid;
  }

  /** The file the payload writes its counter to. */
  public Path counterFile() {
    return counterFile;
  }

  /**
   * The file the payload appends one record per tick to (see {@link Builder#appendFile}), or
   * {@code null} when it was started without one.
   */
  public Path appendFile() {
    return appendFile;
  }

  /**
   * The numbers in the {@linkplain #appendFile() appended file}, in file order; record n holds
   * n, so a process that was checkpointed and restored correctly leaves {@code 1, 2, 3, ...}
   * with no gap and no repeat. A record the payload is still writing at the end is left out.
   *
   * @throws IllegalStateException if the payload has no appended file
   */
  public List<Long> appendedRecords() {
    if (appendFile == null) {
      throw new IllegalStateException("payload " + pid + " was started without appendFile()");
    }
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(appendFile);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + appendFile, e);
    }
    List<Long> records = new ArrayList<>();
    for (int off = 0; off + RECORD_LEN <= bytes.length; off += RECORD_LEN) {
      String rec = new String(bytes, off, RECORD_LEN, StandardCharsets.US_ASCII);
      if (rec.charAt(RECORD_LEN - 1) != '\n') {
        throw new IllegalStateException("record at offset " + off + " of " + appendFile
            + " is not newline-terminated: '" + rec + "'");
      }
      records.add(Long.parseLong(rec.trim()));
    }
    return records;
  }

  /** The compiled payload binary. */
  public Path binary() {
    return binary;
  }

  /**
   * The counter as the payload last wrote it, or {@code -1} if the file holds no number yet.
   * The file is shared by the original and any restored copy: whichever runs writes it.
   */
  public long counter() {
    return readCounter(counterFile);
  }

  /**
   * Waits until the counter is greater than {@code value}, and returns the value seen.
   *
   * @throws AssertionError if it is not within {@code timeout}, saying whether the payload lives
   */
  public long awaitCounterAbove(long value, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long now = counter();
      if (now > value) {
        return now;
      }
      if (System.nanoTime() - deadline > 0) {
        throw new AssertionError("payload counter stayed at " + now + ", not above " + value
            + " within " + timeout + "; " + describeState());
      }
      sleep(5);
    }
  }

  /** Whether the original payload process is running (not dead, not a zombie). */
  public boolean isAlive() {
    return isRunning(pid);
  }

  /**
   * Registers a copy restored from a checkpoint of this payload (such as
   * {@code RestoreResult.pid()}), so {@link #close()} kills it too. Returns {@code pid}.
   */
  public synchronized int registerRestored(int restoredPid) {
    restored.add(restoredPid);
    return restoredPid;
  }

  /** Whether process {@code pid} exists and is not a zombie. */
  public static boolean isRunning(int pid) {
    char state = state(pid);
    return state != 0 && state != 'Z' && state != 'X';
  }

  /** The pids of every running process whose command line names this payload's counter file. */
  public List<Integer> findCopies() {
    String needle = counterFile.toString();
    List<Integer> found = new ArrayList<>();
    File[] entries = new File("/proc").listFiles();
    if (entries == null) {
      return found;
    }
    for (File e : entries) {
      String name = e.getName();
      if (!name.chars().allMatch(Character::isDigit)) {
        continue;
      }
      try {
        byte[] cmdline = readProcFile(e.toPath().resolve("cmdline"));
        String text = new String(cmdline, StandardCharsets.UTF_8).replace('\0', ' ');
        int p = Integer.parseInt(name);
        if (text.contains(needle) && !text.startsWith("unshare ") && isRunning(p)) {
          found.add(p);
        }
      } catch (IOException | NumberFormatException gone) {
        // the process ended while we looked
      }
    }
    return found;
  }

  /**
   * Kills the payload, its wrapper and every restored copy (registered or found by command
   * line) with SIGKILL, waits until they are dead, then removes the payload's directory.
   * Idempotent.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      Set<Integer> victims = new LinkedHashSet<>(restored);
      victims.add(pid);
      victims.addAll(findCopies());
      for (int p : victims) {
        if (isRunning(p) && isOurs(p)) {
          Native.libc().kill(p, Native.SIGKILL);
        }
      }
      wrapper.destroyForcibly();
      long deadline = System.nanoTime() + KILL_TIMEOUT.toNanos();
      for (int p : victims) {
        while (isRunning(p) && isOurs(p) && System.nanoTime() < deadline) {
          sleep(5);
        }
      }
      try {
        wrapper.waitFor(KILL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      List<Integer> survivors = findCopies();
      if (!survivors.isEmpty() || wrapper.isAlive()) {
        throw new IllegalStateException("payload processes " + survivors + " (wrapper alive: "
            + wrapper.isAlive() + ") survived SIGKILL for " + KILL_TIMEOUT);
      }
    } finally {
      dir.close();
    }
  }

  /** Whether {@code p} still is a payload of ours: it runs our binary with our counter file. */
  private boolean isOurs(int p) {
    try {
      String cmdline = new String(readProcFile(Paths.get("/proc", String.valueOf(p),
          "cmdline")), StandardCharsets.UTF_8);
      return cmdline.contains(counterFile.toString());
    } catch (IOException gone) {
      return false;
    }
  }

  /** What the payload's processes are doing, for failure messages. */
  public String describeState() {
    StringBuilder sb = new StringBuilder("payload pid ").append(pid)
        .append(isAlive() ? " alive" : " not running");
    if (!wrapper.isAlive()) {
      sb.append(", unshare wrapper ").append(exitDescription(wrapper.exitValue()));
    }
    synchronized (this) {
      for (int p : restored) {
        sb.append(", restored pid ").append(p).append(isRunning(p) ? " alive" : " not running");
      }
    }
    return sb.toString();
  }

  /** unshare exits with the payload's exit code, or 128 + signal. */
  private static String exitDescription(int code) {
    String meaning = switch (code) {
      case 0 -> "ended by SIGTERM/SIGINT";
      case 1 -> "bad usage or failed start-up";
      case 2 -> "memory pattern mismatch";
      case 3 -> "a child process died";
      case 4 -> "pipe from the children closed";
      case 5 -> "a thread stopped counting";
      case 6 -> "the appended file lost or repeated data";
      default -> code > 128 ? "killed by signal " + (code - 128) : "unknown";
    };
    return "exited with " + code + " (" + meaning + ")";
  }

  private static long readCounter(Path file) {
    for (int attempt = 0; ; attempt++) {
      String text;
      try {
        text = Files.readString(file, StandardCharsets.US_ASCII).trim();
      } catch (NoSuchFileException e) {
        return -1;
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + file, e);
      }
      if (text.isEmpty()) {
        return -1;
      }
      try {
        return Long.parseLong(text);
      } catch (NumberFormatException torn) {
        // A read racing the payload's rewrite; the next one sees a whole record.
        if (attempt > 100) {
          throw new IllegalStateException("counter file " + file + " holds '" + text + "'");
        }
        sleep(1);
      }
    }
  }

  /** 0 when the process does not exist, else its state letter from {@code /proc/<pid>/stat}. */
  private static char state(int pid) {
    try {
      String stat = new String(readProcFile(Paths.get("/proc", String.valueOf(pid), "stat")),
          StandardCharsets.US_ASCII);
      int close = stat.lastIndexOf(')');
      return close < 0 || close + 2 >= stat.length() ? 0 : stat.charAt(close + 2);
    } catch (IOException e) {
      return 0;
    }
  }

  /**
   * Reads a {@code /proc} file through a stream. {@code Files.readAllBytes} trusts the size
   * {@code /proc} reports (0) and some of these files do not support its small follow-up reads
   * ({@code /proc/sys} files then read as their first byte).
   */
  static byte[] readProcFile(Path file) throws IOException {
    try (var in = Files.newInputStream(file)) {
      return in.readAllBytes();
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  // ------------------------------------------------------------------------------ compiling

  /** Compiles the payload if needed (once per JVM) and returns the binary. */
  public static synchronized Path compile() {
    if (compiled != null && Files.isExecutable(compiled)) {
      return compiled;
    }
    Path source = findSource();
    Path outDir = binaryDir();
    Path out = outDir.resolve("payload");
    try {
      Files.createDirectories(outDir);
      Path tmp = Files.createTempFile(outDir, "payload-", ".tmp");
      List<String> cmd = List.of("cc", "-O2", "-pthread", "-o", tmp.toString(),
          source.toString());
      Process cc = new ProcessBuilder(cmd).redirectErrorStream(true)
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
      String output = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!cc.waitFor(2, TimeUnit.MINUTES) || cc.exitValue() != 0) {
        Files.deleteIfExists(tmp);
        throw new IllegalStateException("compiling the payload failed: " + String.join(" ", cmd)
            + System.lineSeparator() + output);
      }
      // Atomic, so concurrent JVMs (forked test runners) never run a half-written binary.
      Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot compile the payload " + source + " into " + outDir
          + " (is cc installed?)", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while compiling the payload", e);
    }
    compiled = out.toAbsolutePath();
    return compiled;
  }

  private static Path findSource() {
    String prop = System.getProperty(SOURCE_PROPERTY);
    if (prop != null && !prop.isBlank()) {
      Path p = Paths.get(prop);
      if (!Files.isRegularFile(p)) {
        throw new IllegalStateException(SOURCE_PROPERTY + "=" + prop + " is not a file");
      }
      return p.toAbsolutePath();
    }
    Path cwd = Paths.get(System.getProperty("user.dir"));
    List<Path> tried = new ArrayList<>();
    for (String rel : List.of("src/test/c/payload.c", "core/src/test/c/payload.c",
        "../core/src/test/c/payload.c")) {
      Path p = cwd.resolve(rel).normalize();
      if (Files.isRegularFile(p)) {
        return p;
      }
      tried.add(p);
    }
    throw new IllegalStateException("payload.c not found (tried " + tried + "); set -D"
        + SOURCE_PROPERTY);
  }

  private static Path binaryDir() {
    String prop = System.getProperty(BINARY_DIR_PROPERTY);
    if (prop != null && !prop.isBlank()) {
      return Paths.get(prop);
    }
    Path target = Paths.get(System.getProperty("user.dir"), "target");
    if (Files.isDirectory(target)) {
      return target.resolve("payload");
    }
    return Paths.get(System.getProperty("java.io.tmpdir"), "criu4j-payload");
  }

  /** Options of the payload to start. Not thread-safe. */
  public static final class Builder {
    private int memMib;
    private int threads;
    private int children;
    private int intervalMillis = 20;
    private boolean appendFile;

    private Builder() {}

    /**
     * Whether the payload also keeps a file open that it appends one record to per tick
     * ({@link Payload#appendFile()}, in the payload's directory); default false.
     */
    public Builder appendFile(boolean value) {
      this.appendFile = value;
      return this;
    }

    /** MiB of memory the payload fills with a pattern and keeps checking; default 0. */
    public Builder memMib(int value) {
      if (value < 0) {
        throw new IllegalArgumentException("memMib < 0: " + value);
      }
      this.memMib = value;
      return this;
    }

    /** Extra threads, each counting on its own; default 0. */
    public Builder threads(int value) {
      if (value < 0) {
        throw new IllegalArgumentException("threads < 0: " + value);
      }
      this.threads = value;
      return this;
    }

    /** Child processes writing to the payload through a pipe; default 0. */
    public Builder children(int value) {
      if (value < 0) {
        throw new IllegalArgumentException("children < 0: " + value);
      }
      this.children = value;
      return this;
    }

    /** Milliseconds between counter updates; default 20. */
    public Builder intervalMillis(int value) {
      if (value < 1) {
        throw new IllegalArgumentException("intervalMillis < 1: " + value);
      }
      this.intervalMillis = value;
      return this;
    }

    /** Starts the payload and waits until it is ready (its counter file holds a number). */
    public Payload start() {
      Path binary = compile();
      TmpfsDir dir = TmpfsDir.create("criu4j-payload-");
      Process wrapper = null;
      try {
        Path counterFile = dir.resolve("counter");
        Path appended = appendFile ? dir.resolve("appended") : null;
        List<String> cmd = new ArrayList<>(List.of("unshare", "--pid", "--fork", "setsid",
            binary.toString(), "--file", counterFile.toString(), "--mem",
            String.valueOf(memMib), "--interval-ms", String.valueOf(intervalMillis),
            "--threads", String.valueOf(threads), "--children", String.valueOf(children)));
        if (appended != null) {
          cmd.addAll(List.of("--append-file", appended.toString()));
        }
        File devNull = new File("/dev/null");
        // ProcessBuilder closes every other descriptor in the child.
        wrapper = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(devNull))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        int pid = awaitChild(wrapper, binary);
        Payload payload = new Payload(binary, dir, counterFile, appended, wrapper, pid);
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (payload.counter() < 0) {
          if (!wrapper.isAlive() || System.nanoTime() - deadline > 0) {
            String state = payload.describeState();
            payload.close();
            throw new IllegalStateException("payload " + cmd + " not ready within "
                + START_TIMEOUT + ": " + state);
          }
          sleep(2);
        }
        return payload;
      } catch (IOException e) {
        dir.close();
        throw new UncheckedIOException("cannot start the payload (is unshare installed?)", e);
      } catch (RuntimeException | Error e) {
        if (wrapper != null) {
          wrapper.destroyForcibly();
        }
        dir.close();
        throw e;
      }
    }

    /** The wrapper's only child, once it runs the payload binary (setsid has exec'd). */
    private static int awaitChild(Process wrapper, Path binary) {
      long wrapperPid = wrapper.pid();
      Path children = Paths.get("/proc", String.valueOf(wrapperPid), "task",
          String.valueOf(wrapperPid), "children");
      long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
      while (System.nanoTime() - deadline < 0) {
        if (!wrapper.isAlive()) {
          throw new IllegalStateException("unshare " + exitDescription(wrapper.exitValue())
              + " before starting the payload (root needed for a PID namespace)");
        }
        try {
          String text = new String(readProcFile(children), StandardCharsets.US_ASCII).trim();
          if (!text.isEmpty()) {
            int child = Integer.parseInt(text.split("\\s+")[0]);
            Path exe = Paths.get("/proc", String.valueOf(child), "exe");
            if (Files.readSymbolicLink(exe).toString().startsWith(binary.toString())) {
              return child;
            }
          }
        } catch (IOException | NumberFormatException notYet) {
          // the child is being created or exec'd
        }
        sleep(1);
      }
      wrapper.destroyForcibly();
      throw new IllegalStateException("the payload did not start within " + START_TIMEOUT);
    }
  }

  @Override
  public String toString() {
    return "Payload(pid " + pid + ", " + counterFile + ")";
  }
}

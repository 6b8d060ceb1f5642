package io.criu4j.examples;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The programs' process to checkpoint: {@code core/src/test/c/payload.c} (the same payload the
 * real-CRIU tests use), compiled with {@code cc -O2 -pthread} and started as
 * {@code unshare --pid --fork setsid payload --file DIR/counter ...}, so it is PID 1 of its own
 * PID namespace, with stdin, stdout and stderr at {@code /dev/null}. It counts in
 * {@code DIR/counter}; the counter file stays empty until its memory is filled.
 *
 * <p>The C source comes from the system property {@value #SOURCE_PROPERTY} (the scripts set
 * it), else {@code core/src/test/c/payload.c} below the working directory or its parent.
 *
 * <p>{@link #close()} kills the payload, its wrapper and every process whose command line names
 * this payload's counter file (restored copies included) and waits until they are dead. It
 * does not delete {@code DIR}. Idempotent. Not thread-safe.
 */
final class PayloadProcess implements AutoCloseable {
  static final String SOURCE_PROPERTY = "criu4j.payload.source";

  private final Process wrapper;
  private final int pid;
  private final Path counterFile;
  private boolean closed;

  private PayloadProcess(Process wrapper, int pid, Path counterFile) {
    this.wrapper = wrapper;
    this.pid = pid;
    this.counterFile = counterFile;
  }

  /** Compiles the payload into {@code outDir} (if missing or older than the source). */
  static Path compile(Path outDir) throws IOException, InterruptedException {
    Path source = findSource();
    Path out = outDir.resolve("payload").toAbsolutePath();
    if (Files.isExecutable(out)
        && Files.getLastModifiedTime(out).compareTo(Files.getLastModifiedTime(source)) > 0) {
      return out;
    }
    Files.createDirectories(outDir);
    Path tmp = Files.createTempFile(outDir, "payload-", ".tmp");
    List<String> cmd = List.of("cc", "-O2", "-pthread", "-o", tmp.toString(), source.toString());
    Process cc = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    String output = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!cc.waitFor(2, TimeUnit.MINUTES) || cc.exitValue() != 0) {
      Files.deleteIfExists(tmp);
      throw new IOException("compiling the payload failed: " + String.join(" ", cmd) + "\n"
          + output);
    }
    Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return out;
  }

  private static Path findSource() throws IOException {
    String prop = System.getProperty(SOURCE_PROPERTY);
    if (prop != null && !prop.isBlank()) {
      Path p = Paths.get(prop).toAbsolutePath();
      if (!Files.isRegularFile(p)) {
        throw new IOException(SOURCE_PROPERTY + "=" + prop + " is not a file");
      }
      return p;
    }
    Path cwd = Paths.get("").toAbsolutePath();
    List<Path> tried = new ArrayList<>();
    for (Path base : List.of(cwd, cwd.getParent() == null ? cwd : cwd.getParent())) {
      Path p = base.resolve("core/src/test/c/payload.c");
      if (Files.isRegularFile(p)) {
        return p;
      }
      tried.add(p);
    }
    throw new IOException("payload.c not found (tried " + tried + "); set -D" + SOURCE_PROPERTY);
  }

  /**
   * Starts {@code binary} with {@code memMib} MiB of memory, counting every
   * {@code intervalMillis} ms into {@code dir/counter}, and waits until it is ready.
   */
  static PayloadProcess start(Path binary, Path dir, int memMib, int intervalMillis)
      throws IOException, InterruptedException {
    Path counterFile = dir.resolve("counter").toAbsolutePath();
    List<String> cmd = List.of("unshare", "--pid", "--fork", "setsid", binary.toString(),
        "--file", counterFile.toString(), "--mem", String.valueOf(memMib), "--interval-ms",
        String.valueOf(intervalMillis));
    File devNull = new File("/dev/null");
    // ProcessBuilder closes every other descriptor in the child: the payload holds none of ours.
    Process wrapper = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(devNull))
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
    PayloadProcess p = null;
    try {
      int pid = awaitChild(wrapper, binary);
      p = new PayloadProcess(wrapper, pid, counterFile);
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (p.counter() < 0) {
        if (!wrapper.isAlive()) {
          throw new IOException("payload exited with " + wrapper.exitValue() + " while starting");
        }
        if (System.nanoTime() - deadline > 0) {
          throw new IOException("payload not ready within 60 s");
        }
        Thread.sleep(2);
      }
      return p;
    } catch (IOException | InterruptedException | RuntimeException e) {
      if (p != null) {
        p.close();
      } else {
        wrapper.destroyForcibly();
      }
      throw e;
    }
  }

  private static int awaitChild(Process wrapper, Path binary)
      throws IOException, InterruptedException {
    long w = wrapper.pid();
    Path children = Paths.get("/proc", String.valueOf(w), "task", String.valueOf(w), "children");
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (System.nanoTime() - deadline < 0) {
      if (!wrapper.isAlive()) {
        throw new IOException("unshare exited with " + wrapper.exitValue()
            + " before starting the payload (root needed for a PID namespace)");
      }
      try {
        String text = new String(readProcFile(children), StandardCharsets.US_ASCII).trim();
        if (!text.isEmpty()) {
          int child = Integer.parseInt(text.split("\\s+")[0]);
          Path exe = Files.readSymbolicLink(Paths.get("/proc", String.valueOf(child), "exe"));
          if (exe.toString().startsWith(binary.toString())) {
            return child;
          }
        }
      } catch (IOException | NumberFormatException notYet) {
        // being forked or exec'd
      }
      Thread.sleep(1);
    }
    throw new IOException("the payload did not start within 30 s");
  }

  int pid() {
    return pid;
  }

  Path counterFile() {
    return counterFile;
  }

  /** The counter, or -1 while the file holds no number. */
  long counter() throws IOException {
    for (int attempt = 0; ; attempt++) {
      String text;
      try {
        text = Files.readString(counterFile, StandardCharsets.US_ASCII).trim();
      } catch (NoSuchFileException e) {
        return -1;
      }
      if (text.isEmpty()) {
        return -1;
      }
      try {
        return Long.parseLong(text);
      } catch (NumberFormatException torn) {
        if (attempt > 100) {
          throw new IOException("counter file holds '" + text + "'");
        }
      }
    }
  }

  /** Waits until the counter exceeds {@code value}; returns what it read. */
  long awaitCounterAbove(long value, Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long now = counter();
      if (now > value) {
        return now;
      }
      if (System.nanoTime() - deadline > 0) {
        throw new IOException("counter stayed at " + now + ", not above " + value + " within "
            + timeout);
      }
      Thread.sleep(2);
    }
  }

  /** Whether {@code pid} exists and is not a zombie. */
  static boolean isRunning(int pid) {
    try {
      String stat = new String(readProcFile(Paths.get("/proc", String.valueOf(pid), "stat")),
          StandardCharsets.US_ASCII);
      char state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state != 'Z' && state != 'X';
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** Running processes whose command line names this payload's counter file. */
  List<Integer> findCopies() {
    String needle = counterFile.toString();
    List<Integer> found = new ArrayList<>();
    File[] entries = new File("/proc").listFiles();
    if (entries == null) {
      return found;
    }
    for (File e : entries) {
      String name = e.getName();
      if (name.isEmpty() || !name.chars().allMatch(Character::isDigit)) {
        continue;
      }
      try {
        String cmdline = new String(readProcFile(e.toPath().resolve("cmdline")),
            StandardCharsets.UTF_8).replace('\0', ' ');
        int p = Integer.parseInt(name);
        if (cmdline.contains(needle) && !cmdline.startsWith("unshare ") && isRunning(p)) {
          found.add(p);
        }
      } catch (IOException | NumberFormatException gone) {
        // ended while we looked
      }
    }
    return found;
  }

  /** Kills every copy of the payload and the wrapper, and waits until they are dead. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    List<Integer> victims = findCopies();
    for (int p : victims) {
      kill(p);
    }
    wrapper.destroyForcibly();
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    try {
      while ((!findCopies().isEmpty() || wrapper.isAlive()) && System.nanoTime() < deadline) {
        for (int p : findCopies()) {
          kill(p);
        }
        Thread.sleep(5);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (!findCopies().isEmpty()) {
      System.err.println("payload processes " + findCopies() + " survived SIGKILL");
    }
  }

  /**
   * Kills the original payload process (for example one a dump left stopped), leaving any
   * restored copy running.
   */
  void killOriginal() {
    kill(pid);
  }

  /** SIGKILL (ProcessHandle checks the start time, so a reused pid is not hit). */
  private static void kill(int pid) {
    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
  }

  static byte[] readProcFile(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return in.readAllBytes();
    }
  }
}

package io.criu4j.it;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A {@code main} class of the test sources in a JVM of its own, talked to by lines: what it
 * prints on standard output is queued for {@link #awaitLine}, {@link #send} writes a line to its
 * standard input. Its standard error goes to a log file. Lets a test SIGKILL, SIGSTOP or SIGCONT
 * it, and find its CRIU descendants. {@link #close()} ends its input, waits a little, then kills
 * it; idempotent. Not thread-safe apart from the reader thread it owns.
 */
final class ChildJvm implements AutoCloseable {
  private static final String EOF = "\u0000EOF";

  private final String name;
  private final Process process;
  private final Path log;
  private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
  private final List<String> seen = new ArrayList<>();
  private final Thread reader;
  private boolean closed;

  private ChildJvm(String name, Process process, Path log) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.reader = new Thread(this::readLines, "child-jvm-" + name);
    reader.setDaemon(true);
    reader.start();
  }

  /** Starts {@code main} with {@code args} on this JVM's class path. */
  static ChildJvm start(String name, Class<?> main, List<String> args, Path log)
      throws IOException {
    String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd = new ArrayList<>(List.of(java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-Xshare:auto", "-cp", System.getProperty("java.class.path"), main.getName()));
    cmd.addAll(args);
    Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
    return new ChildJvm(name, p, log);
  }

  private void readLines() {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
        StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        lines.add(line);
      }
    } catch (IOException e) {
      // the process died or was closed
    } finally {
      lines.add(EOF);
    }
  }

  /**
   * Waits for the next line starting with {@code prefix}, skipping others; null if the process
   * ended its output first or {@code timeout} passed.
   */
  String awaitLine(String prefix, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return null;
      }
      String line = lines.poll(left, TimeUnit.NANOSECONDS);
      if (line == null) {
        return null;
      }
      if (line.equals(EOF)) {
        lines.add(EOF); // later waits see the end too
        return null;
      }
      synchronized (seen) {
        seen.add(line);
      }
      if (line.startsWith(prefix)) {
        return line;
      }
    }
  }

  /** Lines consumed by {@link #awaitLine} so far. */
  List<String> seen() {
    synchronized (seen) {
      return List.copyOf(seen);
    }
  }

  /** Writes one line to its standard input; false if it is gone. */
  boolean send(String line) {
    try {
      OutputStream out = process.getOutputStream();
      out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** SIGKILL, and waits until the JVM is reaped. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  void signal(String signal) throws IOException, InterruptedException {
    new ProcessBuilder("kill", "-" + signal, String.valueOf(pid())).inheritIO().start()
        .waitFor();
  }

  /** Waits for the JVM to exit; whether it did within {@code timeout}. */
  boolean awaitExit(Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The last lines of its standard error. */
  String logTail() {
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - 30), all.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  @Override
  public void close() throws InterruptedException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      process.getOutputStream().close();
    } catch (IOException ignored) {
      // it is gone already
    }
    if (!process.waitFor(20, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
    reader.join(5_000);
    try {
      process.getInputStream().close();
      process.getErrorStream().close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }

  @Override
  public String toString() {
    return name + "[" + pid() + "]";
  }
}

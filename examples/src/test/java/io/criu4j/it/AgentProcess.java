package io.criu4j.it;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@link AgentMain} running in a JVM of its own inside a {@link NetnsHost}: the destination
 * host of a migration between two network namespaces. It uses this JVM's class path. Its
 * standard error goes to a log file, shown in failure messages. {@link #close()} ends its input
 * (the agent closes and the JVM exits), kills it if it does not exit in time, and closes the
 * pipes to it. Idempotent. Not thread-safe.
 */
final class AgentProcess implements AutoCloseable {
  private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);

  private final Process process;
  private final BufferedReader out;
  private final Path log;
  private final URI address;
  private Integer exitCode;
  private String lastLine;

  private AgentProcess(Process process, BufferedReader out, Path log, URI address) {
    this.process = process;
    this.out = out;
    this.log = log;
    this.address = address;
  }

  /**
   * Starts the agent in {@code host}, listening on {@code listen}, with per-session directories
   * under {@code directory}; returns once it listens.
   */
  static AgentProcess start(NetnsHost host, URI listen, Path directory, Path log)
      throws IOException {
    String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd = host.inside(List.of(java, "-cp", System.getProperty("java.class.path"),
        AgentMain.class.getName(), listen.toString(), directory.toString()));
    Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(),
        StandardCharsets.UTF_8));
    try {
      CompletableFuture<String> first = CompletableFuture.supplyAsync(() -> {
        try {
          return out.readLine();
        } catch (IOException e) {
          return null;
        }
      });
      String line;
      try {
        line = first.get(START_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      } catch (Exception e) {
        line = null;
      }
      if (line == null || !line.startsWith(AgentMain.LISTENING + " ")) {
        throw new IOException("agent (" + AgentMain.class.getSimpleName() + " " + listen + " "
            + directory + ") in " + host + " did not start, said '" + line + "'; log:\n"
            + tail(log));
      }
      return new AgentProcess(p, out, log,
          URI.create(line.substring(AgentMain.LISTENING.length() + 1).trim()));
    } catch (IOException | RuntimeException e) {
      p.destroyForcibly();
      closeQuietly(p, out);
      throw e;
    }
  }

  /** The address the agent listens on. */
  URI address() {
    return address;
  }

  /** The agent JVM's pid. */
  long pid() {
    return process.pid();
  }

  /** Exit code of the agent JVM after {@link #close()}; -1 if it had to be killed. */
  Integer exitCode() {
    return exitCode;
  }

  /** The last line the agent printed before exiting, such as {@value AgentMain#STOPPED}. */
  String lastLine() {
    return lastLine;
  }

  /** The agent's log (its standard error), last lines. */
  String logTail() {
    return tail(log);
  }

  @Override
  public void close() {
    if (!process.isAlive() && exitCode != null) {
      return;
    }
    try {
      process.getOutputStream().close(); // end of input: the agent closes and exits
      String line;
      while ((line = out.readLine()) != null) {
        lastLine = line;
      }
      if (process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        exitCode = process.exitValue();
      } else {
        process.destroyForcibly().waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      }
    } catch (IOException e) {
      process.destroyForcibly();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    } finally {
      closeQuietly(process, out);
      if (exitCode == null) {
        exitCode = -1;
      }
    }
  }

  private static void closeQuietly(Process p, BufferedReader out) {
    try {
      out.close();
    } catch (IOException ignored) {
      // closing anyway
    }
    try {
      p.getOutputStream().close();
    } catch (IOException ignored) {
      // closing anyway
    }
    try {
      p.getErrorStream().close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }
}

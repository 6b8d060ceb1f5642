package io.criu4j.cli;

import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code criu4j agent}: the destination side; serves migrations until Ctrl-C or SIGTERM. */
@Command(name = "agent", mixinStandardHelpOptions = true,
    description = {"Receive migrations on URI and restore them on this host.",
        "Runs until Ctrl-C or SIGTERM, which abort the sessions that have not committed "
            + "(their sources resume)."})
final class AgentCommand implements Callable<Integer> {
  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = {"-l", "--listen"}, required = true, paramLabel = "URI",
      description = "where to listen: tls://0.0.0.0:7070 (with --tls-cert, --tls-key, "
          + "--tls-ca), unix:///run/x.sock, or tcp://... with --insecure-plain")
  URI listen;

  @CommandLine.Mixin
  SecurityOptions security = new SecurityOptions();

  @Option(names = {"-d", "--dir"}, defaultValue = "/dev/shm", paramLabel = "DIR",
      description = "tmpfs directory under which each session keeps its images "
          + "(default ${DEFAULT-VALUE})")
  Path dir;

  @Option(names = "--memory-limit", paramLabel = "SIZE", converter = Converters.Size.class,
      description = "image data each session may hold in memory, e.g. 256M, 1G")
  Long memoryLimit;

  @Option(names = "--max-sessions", paramLabel = "N",
      description = "sessions served at once; more are refused at pre-flight")
  Integer maxSessions;

  @Option(names = "--max-image-bytes", paramLabel = "SIZE", converter = Converters.Size.class,
      description = "images one session may send, e.g. 8G (default 32G)")
  Long maxImageBytes;

  @Option(names = "--max-files", paramLabel = "N",
      description = "image files one session may send (default 100000)")
  Integer maxFiles;

  @Option(names = "--max-frame-bytes", paramLabel = "SIZE", converter = Converters.Size.class,
      description = "largest control message or data frame, 4K..1M (default 1M)")
  Long maxFrameBytes;

  @Option(names = "--handshake-timeout", paramLabel = "DURATION",
      converter = Converters.Time.class,
      description = "from a connection to its first request (default 10s)")
  Duration handshakeTimeout;

  @Option(names = "--idle-timeout", paramLabel = "DURATION", converter = Converters.Time.class,
      description = "a session with neither a step from its source nor image data for this "
          + "long ends (default 60s)")
  Duration idleTimeout;

  @Option(names = "--criu-log-level", paramLabel = "N", description = "CRIU's log level, 0..4")
  Integer criuLogLevel;

  @Option(names = "--quiet", description = "print only the listening address, no session "
      + "events")
  boolean quiet;

  AgentSpec toSpec() {
    CommandLine cl = spec.commandLine();
    if (listen.getScheme() == null) {
      throw new CommandLine.ParameterException(cl, "--listen needs a scheme, e.g. tls://"
          + listen + " (got '" + listen + "')");
    }
    if (memoryLimit != null && memoryLimit < 64 * 1024) {
      throw new CommandLine.ParameterException(cl, "--memory-limit below 64 KiB: "
          + memoryLimit);
    }
    if (maxSessions != null && maxSessions < 1) {
      throw new CommandLine.ParameterException(cl, "--max-sessions must be >= 1: "
          + maxSessions);
    }
    if (maxImageBytes != null && maxImageBytes < 1) {
      throw new CommandLine.ParameterException(cl, "--max-image-bytes must be > 0: "
          + maxImageBytes);
    }
    if (maxFiles != null && maxFiles < 1) {
      throw new CommandLine.ParameterException(cl, "--max-files must be >= 1: " + maxFiles);
    }
    if (maxFrameBytes != null && (maxFrameBytes < 4096 || maxFrameBytes > 1 << 20)) {
      throw new CommandLine.ParameterException(cl, "--max-frame-bytes must be 4K..1M: "
          + maxFrameBytes);
    }
    if (criuLogLevel != null && (criuLogLevel < 0 || criuLogLevel > 4)) {
      throw new CommandLine.ParameterException(cl, "--criu-log-level must be 0..4: "
          + criuLogLevel);
    }
    LinkSecurity link = security.resolve(cl, "--listen", listen);
    return new AgentSpec(listen, dir, memoryLimit, maxSessions, criuLogLevel,
        Criu4jCommand.root(spec).criu, link, new AgentSpec.Limits(maxImageBytes, maxFiles,
            maxFrameBytes == null ? null : maxFrameBytes.intValue(), handshakeTimeout,
            idleTimeout));
  }

  @Override
  public Integer call() throws Exception {
    AgentSpec request = toSpec();
    if (!Files.isDirectory(request.directory())) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--dir " + dir
          + " is not a directory");
    }
    Backend backend = Criu4jCommand.root(spec).backend;
    PrintWriter out = spec.commandLine().getOut();
    if (request.security().insecurePlain()) {
      PrintWriter err = spec.commandLine().getErr();
      err.println("criu4j agent: WARNING: --insecure-plain: anyone who can reach " + listen
          + " can send this host a process to run, and the images cross the network "
          + "unencrypted");
      err.flush();
    }
    ProgressDisplay events = new ProgressDisplay(out, false, System::nanoTime);
    CountDownLatch stopped = new CountDownLatch(1);
    try (Backend.RunningAgent agent = backend.startAgent(request,
        quiet ? io.criu4j.MigrationListener.NONE : events)) {
      try (Backend.Registration hook = backend.onShutdown(() -> {
        agent.close();
        stopped.countDown();
      })) {
        out.printf("criu4j agent listening on %s (images under %s)%n", agent.address(),
            Paths.get(dir.toString()).toAbsolutePath());
        out.flush();
        stopped.await();
      }
      out.println("criu4j agent stopped");
      out.flush();
    }
    return Criu4jCommand.OK;
  }
}

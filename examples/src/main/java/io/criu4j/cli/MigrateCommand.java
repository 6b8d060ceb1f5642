package io.criu4j.cli;

import io.criu4j.CriuOptions;
import io.criu4j.MigrationCancelledException;
import io.criu4j.MigrationException;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code criu4j migrate}: the source side of one live migration. */
@Command(name = "migrate", mixinStandardHelpOptions = true,
    description = {"Move the process tree rooted at PID to the agent at URI.",
        "Ctrl-C before the commit point cancels: the process keeps running here."},
    footerHeading = "%nPhases for --phase-timeout:%n",
    footer = "preflight, pre-copy, final-dump, transfer, restore, commit, post-copy, cleanup")
final class MigrateCommand implements Callable<Integer> {
  /** How long a Ctrl-C waits for the rollback (or the commit) before the JVM exits. */
  static final Duration SHUTDOWN_WAIT = Duration.ofMinutes(2);

  enum ProgressMode { AUTO, TTY, PLAIN, NONE }

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = {"-p", "--pid"}, required = true, paramLabel = "PID",
      description = "root of the tree to migrate (a process or a PID-namespace init)")
  int pid;

  @Option(names = {"-t", "--to"}, required = true, paramLabel = "URI",
      description = "the agent: tls://host:port (with --tls-cert, --tls-key, --tls-ca), "
          + "unix:///path, or tcp://host:port with --insecure-plain")
  URI to;

  @CommandLine.Mixin
  SecurityOptions security = new SecurityOptions();

  @Option(names = "--json", description = "print the report as JSON on stdout (progress, if "
      + "any, goes to stderr)")
  boolean json;

  @Option(names = "--progress", defaultValue = "auto", paramLabel = "MODE",
      description = "auto (a live status line on a terminal, plain lines otherwise), tty, "
          + "plain or none (default ${DEFAULT-VALUE})")
  ProgressMode progress;

  @Option(names = "--tcp-established", description = "dump and restore established TCP "
      + "connections")
  boolean tcpEstablished;

  @Option(names = "--shell-job", description = "the tree is a shell job (has a terminal)")
  boolean shellJob;

  @Option(names = "--ext-unix-sk", description = "allow external Unix sockets")
  boolean extUnixSk;

  @Option(names = "--file-locks", description = "dump and restore file locks")
  boolean fileLocks;

  @Option(names = "--link-remap", description = "remap open, unlinked files")
  boolean linkRemap;

  @Option(names = "--external", paramLabel = "SPEC",
      description = "an external resource, CRIU --external syntax (repeatable)")
  List<String> externals = new ArrayList<>();

  @Option(names = "--manage-cgroups", paramLabel = "MODE",
      converter = Converters.CgroupMode.class,
      description = "ignore, none, props, soft, full, strict or default")
  CriuOptions.CgroupMode manageCgroups;

  @Option(names = "--network-lock", paramLabel = "METHOD",
      converter = Converters.NetworkLock.class,
      description = "iptables, nftables or skip")
  CriuOptions.NetworkLockMethod networkLock;

  @Option(names = "--criu-log-level", paramLabel = "N", description = "CRIU's log level, 0..4")
  Integer criuLogLevel;

  @Option(names = "--phase-timeout", paramLabel = "PHASE=DURATION",
      converter = Converters.PhaseTimeout.class,
      description = "longest time a phase may take, e.g. final-dump=2m (repeatable)")
  List<Map.Entry<MigrationPhase, Duration>> phaseTimeouts = new ArrayList<>();

  @Option(names = "--no-pre-copy", description = "go straight to the final dump")
  boolean noPreCopy;

  @Option(names = "--post-copy", description = "post-copy (CRIU lazy pages): the destination "
      + "runs the tree once everything but its memory arrived, and the memory follows from the "
      + "frozen source, on demand and in the background. The freeze is shorter and no longer "
      + "grows with the memory size. A failure before all memory arrived kills the copy and "
      + "resumes the source (its work on the destination is lost). Needs userfaultfd on both "
      + "hosts and fs.pipe-max-size >= 4194304 here; skips pre-copy")
  boolean postCopy;

  @Option(names = "--staging-dir", paramLabel = "DIR",
      description = "tmpfs parent of the staging directories (default /dev/shm)")
  Path stagingDir;

  /** The parsed request; validates what picocli cannot. */
  MigrateSpec toSpec() {
    CommandLine cl = spec.commandLine();
    if (pid <= 0) {
      throw new CommandLine.ParameterException(cl, "--pid must be > 0: " + pid);
    }
    if (to.getScheme() == null) {
      throw new CommandLine.ParameterException(cl, "--to needs a scheme, e.g. tls://"
          + to + " (got '" + to + "')");
    }
    if (criuLogLevel != null && (criuLogLevel < 0 || criuLogLevel > 4)) {
      throw new CommandLine.ParameterException(cl, "--criu-log-level must be 0..4: "
          + criuLogLevel);
    }
    for (String e : externals) {
      if (e.isBlank()) {
        throw new CommandLine.ParameterException(cl, "--external is blank");
      }
    }
    Map<MigrationPhase, Duration> timeouts = new EnumMap<>(MigrationPhase.class);
    phaseTimeouts.forEach(e -> timeouts.put(e.getKey(), e.getValue()));
    LinkSecurity link = security.resolve(cl, "--to", to);
    return new MigrateSpec(pid, to, tcpEstablished, shellJob, extUnixSk, fileLocks, linkRemap,
        externals, manageCgroups, networkLock, criuLogLevel, timeouts, !noPreCopy, postCopy,
        stagingDir,
        Criu4jCommand.root(spec).criu, link);
  }

  @Override
  public Integer call() throws Exception {
    MigrateSpec request = toSpec();
    Backend backend = Criu4jCommand.root(spec).backend;
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (request.security().insecurePlain()) {
      err.println("criu4j migrate: WARNING: --insecure-plain: the agent at " + to + " is not "
          + "authenticated and the process's memory crosses the network unencrypted");
      err.flush();
    }
    PrintWriter progressOut = json ? err : out;
    boolean tty = switch (progress) {
      case TTY -> true;
      case AUTO -> !json && System.console() != null;
      default -> false;
    };
    ProgressDisplay display = progress == ProgressMode.NONE ? null
        : new ProgressDisplay(progressOut, tty, System::nanoTime, request.postCopy());
    MigrationListener listener = display != null ? display : MigrationListener.NONE;

    CountDownLatch finished = new CountDownLatch(1);
    AtomicBoolean interrupted = new AtomicBoolean();
    try (Backend.Migration migration = backend.open(request, listener);
        Backend.Registration hook = backend.onShutdown(() -> {
          interrupted.set(true);
          migration.cancel();
          try {
            // The JVM must not exit before the source has resumed (or the commit completed).
            finished.await(SHUTDOWN_WAIT.toMillis(), TimeUnit.MILLISECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        })) {
      MigrationReport report;
      try {
        report = migration.migrate();
      } catch (MigrationCancelledException e) {
        if (display != null) {
          display.finish();
        }
        err.println("criu4j migrate: cancelled" + (interrupted.get() ? " (interrupted)" : "")
            + "; pid " + pid + " runs on here: " + Criu4jCommand.describe(e));
        err.flush();
        return Criu4jCommand.FAILED;
      } catch (MigrationException e) {
        if (display != null) {
          display.finish();
        }
        err.println("criu4j migrate: migration of pid " + pid + " to " + to + " failed: "
            + Criu4jCommand.describe(e));
        if (Criu4jCommand.root(spec).verbose) {
          e.printStackTrace(err);
        }
        err.flush();
        return Criu4jCommand.FAILED;
      }
      if (display != null) {
        display.finish();
      }
      if (json) {
        out.println(report.toJson());
      } else {
        ReportText.print(out, report, to);
      }
      out.flush();
      return Criu4jCommand.OK;
    } finally {
      finished.countDown();
    }
  }
}

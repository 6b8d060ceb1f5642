package io.criu4j.cli;

import io.criu4j.MigrationException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * The {@code criu4j} command: live migration of Linux processes with CRIU.
 *
 * <ul>
 *   <li>{@code criu4j agent --listen tls://0.0.0.0:7070 --tls-cert ... --dir /dev/shm}: the
 *       destination; serves migrations until Ctrl-C or SIGTERM;
 *   <li>{@code criu4j migrate --pid N --to tls://host:7070 --tls-cert ... [--json]}: moves the
 *       tree rooted at N to that agent, with a live progress display; Ctrl-C before the commit
 *       point cancels (the process keeps running here); plain {@code tcp://} only with
 *       {@code --insecure-plain};
 *   <li>{@code criu4j check}: is this host ready (CRIU, kernel features, CPU description,
 *       tmpfs space)?
 * </ul>
 *
 * <p>Exit codes: 0 success; 1 the migration (or check) was refused or failed, with the reason
 * on stderr (a stack trace only with {@code --verbose}); 2 bad usage. Run it with
 * {@code scripts/criu4j}.
 */
@Command(name = "criu4j", mixinStandardHelpOptions = true,
    versionProvider = Criu4jCommand.Version.class,
    description = "Live migration of Linux processes with CRIU.",
    subcommands = {AgentCommand.class, MigrateCommand.class, CheckCommand.class,
        CommandLine.HelpCommand.class},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:success", "1:migration or check refused or failed (reason on stderr)",
        "2:bad usage"})
public final class Criu4jCommand implements Runnable {
  static final int OK = 0;
  static final int FAILED = 1;
  static final int USAGE = 2;

  @Option(names = {"-v", "--verbose"}, scope = ScopeType.INHERIT,
      description = "debug logging, and stack traces with errors")
  boolean verbose;

  @Option(names = "--criu", scope = ScopeType.INHERIT, paramLabel = "PATH",
      description = "the criu executable (default: -Dcriu4j.criu, $CRIU4J_CRIU, or criu on "
          + "PATH)")
  Path criu;

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  final Backend backend;

  Criu4jCommand(Backend backend) {
    this.backend = backend;
  }

  public static void main(String[] args) {
    // Before the first logger exists: the library's info logs would break the progress display.
    List<String> list = Arrays.asList(args);
    boolean verbose = list.contains("-v") || list.contains("--verbose");
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", verbose ? "debug" : "warn");
    }
    int code = commandLine(Backend.REAL).execute(args);
    System.out.flush();
    System.exit(code);
  }

  /** The configured command line, with {@code backend} behind the subcommands. */
  static CommandLine commandLine(Backend backend) {
    CommandLine cl = new CommandLine(new Criu4jCommand(backend));
    cl.setExecutionExceptionHandler(Criu4jCommand::handleFailure);
    cl.setCaseInsensitiveEnumValuesAllowed(true);
    return cl;
  }

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(),
        "a command is required: agent, migrate or check");
  }

  /** Root of every subcommand: the top command's options. */
  static Criu4jCommand root(CommandLine.Model.CommandSpec sub) {
    CommandLine.Model.CommandSpec s = sub;
    while (s.parent() != null) {
      s = s.parent();
    }
    return (Criu4jCommand) s.userObject();
  }

  /**
   * Errors escaping a command: the reason on stderr, with the causes' messages; the stack trace
   * only with {@code --verbose}. Misuse that the library detects (an invalid value) is a usage
   * error.
   */
  private static int handleFailure(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
    PrintWriter err = cl.getErr();
    boolean verbose = root(cl.getCommandSpec()).verbose;
    String name = cl.getCommandSpec().qualifiedName();
    int code = e instanceof IllegalArgumentException ? USAGE : FAILED;
    String what = e instanceof MigrationException || e instanceof IllegalArgumentException
        || e instanceof IllegalStateException ? "" : e.getClass().getSimpleName() + ": ";
    err.println(name + ": " + what + describe(e));
    if (verbose) {
      e.printStackTrace(err);
    } else if (code == FAILED && !(e instanceof MigrationException)) {
      err.println("(run with --verbose for details)");
    }
    err.flush();
    return code;
  }

  /** The message of {@code e}, followed by its causes' messages where they add something. */
  static String describe(Throwable e) {
    StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
    Throwable c = e.getCause();
    for (int depth = 0; c != null && c != e && depth < 5; depth++, c = c.getCause()) {
      String m = c.getMessage();
      if (m != null && !sb.toString().contains(m)) {
        sb.append(": ").append(m);
      }
    }
    return sb.toString();
  }

  /** {@code criu4j --version}. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Criu4jCommand.class.getPackage().getImplementationVersion();
      return new String[] {"criu4j " + (v != null ? v : "0.1.0-SNAPSHOT"),
          "Java " + System.getProperty("java.version")};
    }
  }
}

package io.criu4j;

import io.criu4j.internal.criu.CriuFiles;
import io.criu4j.internal.criu.OptionsMapper;
import io.criu4j.internal.criu.SwrkConnection;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.rpc.CriuRpc.Features;
import io.criu4j.internal.rpc.CriuRpc.Options;
import io.criu4j.internal.rpc.CriuRpc.Request;
import io.criu4j.internal.rpc.CriuRpc.RequestType;
import io.criu4j.internal.rpc.CriuRpc.Response;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client for CRIU's RPC interface. Each operation starts its own {@code criu swrk} child
 * connected over a {@code SOCK_SEQPACKET} socketpair, sends the request, answers notifications
 * through a {@link Notifier}, and reaps the child before returning, on success and on failure.
 *
 * <p>The binary is, in this order: {@link Builder#binary(Path)}, the system property
 * {@value #BINARY_PROPERTY}, the environment variable {@value #BINARY_ENV}, or {@code criu} on
 * {@code PATH}. The CRIU version is probed once per instance (one VERSION round trip) and cached;
 * it decides which options may be sent, and versions older than {@link #OLDEST_SUPPORTED} are
 * refused.
 *
 * <p>Thread-safe: operations may run concurrently, each on its own child. Descriptors passed in
 * options stay owned by the caller; CRIU receives copies.
 *
 * <p>To test code that uses this class without root or CRIU, point {@link Builder#binary(Path)}
 * at the fake CRIU of the criu4j-core test-jar ({@code io.criu4j.testing.FakeCriu}).
 *
 * @since 0.1
 */
public final class Criu {
  private static final Logger log = LoggerFactory.getLogger(Criu.class);

  /** System property naming the criu binary. */
  public static final String BINARY_PROPERTY = "criu4j.criu";
  /** Environment variable naming the criu binary. */
  public static final String BINARY_ENV = "CRIU4J_CRIU";
  /** Oldest CRIU this client talks to. */
  public static final CriuVersion OLDEST_SUPPORTED = CriuVersion.of(3, 17, 0);

  private final Path configuredBinary;
  private final int logLevel;
  private final String logFileName;
  private final Duration timeout;
  private final Map<String, String> environment;
  private volatile CriuVersion version;

  private Criu(Builder b) {
    this.configuredBinary = b.binary;
    this.logLevel = b.logLevel;
    this.logFileName = b.logFileName;
    this.timeout = b.timeout;
    this.environment = b.environment == null ? null : Map.copyOf(b.environment);
  }

  /** A client with default settings. */
  public static Criu create() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The criu binary this client runs; resolved on each call, so PATH changes are seen. */
  public Path binary() throws MigrationException {
    if (configuredBinary != null) {
      return executable(configuredBinary, "the builder");
    }
    String prop = System.getProperty(BINARY_PROPERTY);
    if (prop != null && !prop.isBlank()) {
      return executable(Paths.get(prop), "system property " + BINARY_PROPERTY);
    }
    String env = System.getenv(BINARY_ENV);
    if (env != null && !env.isBlank()) {
      return executable(Paths.get(env), "environment variable " + BINARY_ENV);
    }
    String path = System.getenv().getOrDefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    List<String> dirs = new ArrayList<>(List.of(path.split(":")));
    dirs.addAll(List.of("/usr/local/sbin", "/usr/sbin", "/sbin"));
    for (String dir : dirs) {
      if (!dir.isEmpty()) {
        Path candidate = Paths.get(dir, "criu");
        if (Files.isExecutable(candidate) && !Files.isDirectory(candidate)) {
          return candidate;
        }
      }
    }
    throw new MigrationException("criu not found on PATH (" + path + "); install CRIU >= "
        + OLDEST_SUPPORTED + " or name the binary with " + BINARY_ENV + " or -D"
        + BINARY_PROPERTY, 2, null);
  }

  private static Path executable(Path p, String source) throws MigrationException {
    if (!Files.exists(p)) {
      throw new MigrationException("criu binary " + p + " (from " + source
          + ") does not exist", 2 /* ENOENT */, null);
    }
    if (!Files.isExecutable(p) || Files.isDirectory(p)) {
      throw new MigrationException("criu binary " + p + " (from " + source
          + ") is not an executable file", 13 /* EACCES */, null);
    }
    return p;
  }

  /** Sends VERSION (once per instance; later calls return the cached answer). */
  public CriuVersion version() throws MigrationException {
    CriuVersion v = version;
    if (v == null) {
      synchronized (this) {
        v = version;
        if (v == null) {
          v = probeVersion();
          version = v;
        }
      }
    }
    return v;
  }

  private CriuVersion probeVersion() throws MigrationException {
    Path bin = binary();
    Response resp;
    try (SwrkConnection c = spawn(List.of())) {
      resp = c.call(Request.newBuilder().setType(RequestType.VERSION).build(), RequestType.VERSION,
          null, (r, veto) -> failure(RequestType.VERSION, r, null, veto));
    }
    if (!resp.hasVersion()) {
      throw new ProtocolException("CRIU answered VERSION without a version (is " + bin
          + " CRIU?)");
    }
    var pv = resp.getVersion();
    CriuVersion v = new CriuVersion(pv.getMajorNumber(), pv.getMinorNumber(), pv.getSublevel(),
        pv.getExtra(), pv.hasGitid() ? pv.getGitid() : null, pv.hasName() ? pv.getName() : null);
    if (v.compareTo(OLDEST_SUPPORTED) < 0) {
      throw new MigrationException("CRIU " + v + " at " + bin + " is older than the oldest "
          + "supported version " + OLDEST_SUPPORTED);
    }
    log.debug("{} is CRIU {}", bin, v);
    return v;
  }

  /**
   * Runs CRIU's CHECK: fails with a {@link CriuException} if CRIU cannot work on this kernel.
   * Uses a temporary images directory (CRIU 4.1 needs one) and removes it afterwards.
   */
  public void check() throws MigrationException {
    version();
    Path dir = createTempDir("criu4j-check-");
    try {
      simple(RequestType.CHECK, RequestType.CHECK, dir, CriuOptions.DEFAULTS, "check.log");
    } finally {
      FileTree.delete(dir);
    }
  }

  /** Runs FEATURE_CHECK for every feature CRIU can report. */
  public CriuFeatures checkFeatures() throws MigrationException {
    version();
    Request req = Request.newBuilder().setType(RequestType.FEATURE_CHECK)
        .setFeatures(Features.newBuilder().setMemTrack(true).setLazyPages(true)
            .setPidfdStore(true))
        .build();
    Response resp;
    try (SwrkConnection c = spawn(List.of())) {
      // CRIU reports success=false when a feature is missing, yet still lists what it found.
      resp = c.call(req, RequestType.FEATURE_CHECK, null, (r, veto) -> {
        if (r.hasFeatures()) {
          return null;
        }
        return failure(RequestType.FEATURE_CHECK, r, null, veto);
      });
    }
    if (!resp.hasFeatures()) {
      throw new ProtocolException("CRIU answered FEATURE_CHECK without features");
    }
    Features f = resp.getFeatures();
    return new CriuFeatures(f.getMemTrack(), f.getLazyPages(), f.getPidfdStore());
  }

  /** Writes this host's CPU description ({@code cpuinfo.img}) into {@code imagesDir}. */
  public void dumpCpuInfo(Path imagesDir) throws MigrationException {
    version();
    simple(RequestType.CPUINFO_DUMP, RequestType.CPUINFO_DUMP, imagesDir, CriuOptions.DEFAULTS,
        "cpuinfo-dump.log");
  }

  /**
   * Checks that images whose {@code cpuinfo.img} is in {@code imagesDir} can be restored on this
   * host's CPU; fails with a {@link CriuException} if not.
   */
  public void checkCpuInfo(Path imagesDir) throws MigrationException {
    version();
    simple(RequestType.CPUINFO_CHECK, RequestType.CPUINFO_CHECK, imagesDir, CriuOptions.DEFAULTS,
        "cpuinfo-check.log");
  }

  /** Dumps the tree {@code options.pid()} into {@code imagesDir}. */
  public DumpResult dump(Path imagesDir, CriuOptions options) throws MigrationException {
    return dump(imagesDir, options, Notifier.NONE);
  }

  /**
   * Dumps the tree {@code options.pid()} into {@code imagesDir}, calling {@code notifier} at
   * each notification point. Unless {@code leaveRunning}, CRIU kills the tree once the dump is
   * complete; a veto or failure before that leaves it running. With {@link Notifier#NONE}
   * CRIU is asked for no notifications at all.
   */
  public DumpResult dump(Path imagesDir, CriuOptions options, Notifier notifier)
      throws MigrationException {
    Objects.requireNonNull(notifier, "notifier");
    version();
    Path logFile = logPath(imagesDir, options, "dump.log");
    Path stats = freshStatsFile(imagesDir, options);
    run(RequestType.DUMP, RequestType.DUMP, imagesDir, options, "dump.log", notifyMode(notifier),
        false);
    return new DumpResult(imagesDir, CriuFiles.readDumpStats(stats), logFile);
  }

  /**
   * One pre-dump (SINGLE_PRE_DUMP): copies memory into {@code imagesDir} while the tree keeps
   * running, tracking dirty pages for a later dump with {@code parentImages}.
   */
  public DumpResult preDump(Path imagesDir, CriuOptions options) throws MigrationException {
    version();
    Path logFile = logPath(imagesDir, options, "pre-dump.log");
    Path stats = freshStatsFile(imagesDir, options);
    run(RequestType.SINGLE_PRE_DUMP, RequestType.SINGLE_PRE_DUMP, imagesDir, options,
        "pre-dump.log", null, false);
    return new DumpResult(imagesDir, CriuFiles.readDumpStats(stats), logFile);
  }

  /**
   * Starts a series of pre-dumps ending with a dump, all on one CRIU connection (PRE_DUMP × n,
   * then DUMP), so CRIU keeps its dirty-page tracking state between them. The caller closes the
   * returned object.
   */
  public IterativeDump iterativeDump() throws MigrationException {
    version();
    return new IterativeDump(this);
  }

  /** Restores the tree whose images are in {@code imagesDir}. */
  public RestoreResult restore(Path imagesDir, CriuOptions options) throws MigrationException {
    return restore(imagesDir, options, Notifier.NONE);
  }

  /**
   * Restores the tree whose images are in {@code imagesDir}, with notifications ({@link
   * Notifier#NONE}: none asked for).
   */
  public RestoreResult restore(Path imagesDir, CriuOptions options, Notifier notifier)
      throws MigrationException {
    Objects.requireNonNull(notifier, "notifier");
    version();
    Response resp = run(RequestType.RESTORE, RequestType.RESTORE, imagesDir, options,
        "restore.log", notifyMode(notifier), false);
    if (!resp.hasRestore()) {
      throw new ProtocolException("CRIU answered RESTORE without the restored pid");
    }
    return new RestoreResult(resp.getRestore().getPid(), logPath(imagesDir, options,
        "restore.log"));
  }

  /**
   * Starts a page server daemon (PAGE_SERVER) that writes the pages it receives into
   * {@code imagesDir}; {@code options.pageServer()} gives the address and port (0: any). The
   * daemon is not a child of this process and exits after its one client is done.
   */
  public PageServer.Info startPageServer(Path imagesDir, CriuOptions options)
      throws MigrationException {
    version();
    requirePageServer(options);
    Response resp = run(RequestType.PAGE_SERVER, RequestType.PAGE_SERVER, imagesDir, options,
        "page-server.log", null, false);
    return new PageServer.Info(resp.getPs().getPid(), resp.getPs().getPort());
  }

  /**
   * Starts a page server as a child of its CRIU process (PAGE_SERVER_CHLD), serving
   * {@code options.pageServer()}: a port, or a connected stream socket fd of this process
   * (CRIU gets a copy; the caller keeps its own). The returned object can wait for the server
   * to finish (WAIT_PID) and owns both processes.
   */
  public PageServer startPageServerChild(Path imagesDir, CriuOptions options)
      throws MigrationException {
    version();
    requirePageServer(options);
    return PageServer.start(this, imagesDir, options);
  }

  private static void requirePageServer(CriuOptions options) {
    if (options.pageServer() == null) {
      throw new IllegalArgumentException("options.pageServer() is null: a page server needs a "
          + "port or an fd");
    }
  }

  // ---------------------------------------------------------------- plumbing for this package

  /**
   * The notifier to run a request with, or null for none: {@link Notifier#NONE} turns notify
   * mode off, which saves CRIU a round trip per notification point.
   */
  static Notifier notifyMode(Notifier notifier) {
    return notifier == Notifier.NONE ? null : notifier;
  }

  SwrkConnection spawn(List<Integer> fds) throws MigrationException {
    return SwrkConnection.spawn(binary(), environment != null ? environment : System.getenv(),
        fds, timeout);
  }

  Path logPath(Path imagesDir, CriuOptions options, String defaultName) {
    return workDir(imagesDir, options).resolve(logName(defaultName));
  }

  String logName(String defaultName) {
    return logFileName != null ? logFileName : defaultName;
  }

  static Path workDir(Path imagesDir, CriuOptions options) {
    return options.workDir() != null ? options.workDir() : imagesDir;
  }

  /**
   * The {@code stats-dump} file the coming dump writes, with any left by an earlier dump into
   * the same directory removed first: CRIU skips writing it on some failures, and stale figures
   * must never be reported as this dump's.
   */
  static Path freshStatsFile(Path imagesDir, CriuOptions options) throws MigrationException {
    Path stats = workDir(imagesDir, options).resolve("stats-dump");
    try {
      Files.deleteIfExists(stats);
    } catch (IOException e) {
      throw new MigrationException("cannot remove stale " + stats + ": " + e.getMessage(), e);
    }
    return stats;
  }

  /** An open images directory (and work directory) for one request. */
  final class Dirs implements AutoCloseable {
    final Fd images;
    final Fd work;

    Dirs(Path imagesDir, CriuOptions options) throws MigrationException {
      Fd imagesFd = openDir(imagesDir);
      try {
        this.work = options.workDir() != null ? openDir(options.workDir()) : null;
      } catch (MigrationException e) {
        imagesFd.close();
        throw e;
      }
      this.images = imagesFd;
    }

    @Override
    public void close() {
      images.close();
      if (work != null) {
        work.close();
      }
    }
  }

  private static Fd openDir(Path dir) throws MigrationException {
    String path = dir.toAbsolutePath().toString();
    return Fd.adopt((int) Native.check("open(" + path + ", O_DIRECTORY)",
        () -> Native.libc().open(path, Native.openDirectoryFlags(), 0)));
  }

  Options.Builder requestOptions(OptionsMapper mapper, CriuOptions options, Dirs dirs,
      String logName) {
    Options.Builder opts = mapper.map(options, dirs.images.get());
    if (dirs.work != null) {
      opts.setWorkDirFd(dirs.work.get());
    }
    opts.setLogLevel(logLevel);
    opts.setLogFile(logName(logName));
    return opts;
  }

  private void simple(RequestType type, RequestType expected, Path dir, CriuOptions options,
      String logName) throws MigrationException {
    run(type, expected, dir, options, logName, null, false);
  }

  Response run(RequestType type, RequestType expected, Path imagesDir, CriuOptions options,
      String logName, Notifier notifier, boolean keepOpen) throws MigrationException {
    Objects.requireNonNull(imagesDir, "imagesDir");
    Objects.requireNonNull(options, "options");
    OptionsMapper mapper = new OptionsMapper(version);
    try (Dirs dirs = new Dirs(imagesDir, options)) {
      Options.Builder opts = requestOptions(mapper, options, dirs, logName);
      if (notifier != null) {
        opts.setNotifyScripts(true);
      }
      Request req = Request.newBuilder().setType(type).setOpts(opts).build();
      Path logFile = logPath(imagesDir, options, logName);
      try (SwrkConnection c = spawn(mapper.childFds())) {
        return c.call(req, expected, notifier == null ? null : new NotifyDispatcher(notifier),
            (r, veto) -> failure(type, r, logFile, veto));
      }
    }
  }

  /**
   * The exception for a failed reply to {@code request}. Named after the request sent, not the
   * reply's type: CRIU answers some failures with type EMPTY ("Invalid req", "Bad req seq").
   */
  CriuException failure(RequestType request, Response resp, Path logFile, Throwable veto) {
    String msg = resp.hasCrErrmsg() ? resp.getCrErrmsg() : null;
    List<String> tail = CriuFiles.logTail(logFile);
    if (msg != null && msg.contains("RLIMIT_NOFILE")) {
      // CRIU 4.x reports its first logged error, a harmless rlimit warning, as cr_errmsg; the
      // real reason is the first other error in the log (later ones say "FAILED" and no more).
      for (int i = 0; i < tail.size(); i++) {
        if (tail.get(i).contains("Error") && !tail.get(i).contains("RLIMIT_NOFILE")) {
          msg = tail.get(i).strip();
          break;
        }
      }
    }
    if (veto != null && (msg == null || msg.isBlank())) {
      msg = "vetoed by the notifier: " + veto;
    }
    return new CriuException(request.name(), resp.getCrErrno(), msg, logFile, tail, veto);
  }

  static Path createTempDir(String prefix) throws MigrationException {
    try {
      return Files.createTempDirectory(prefix);
    } catch (IOException e) {
      throw new MigrationException("cannot create a temporary directory: " + e.getMessage(), e);
    }
  }


  /** Configures a {@link Criu}; not thread-safe. */
  public static final class Builder {
    private Path binary;
    private int logLevel = 2;
    private String logFileName;
    private Duration timeout = Duration.ofMinutes(10);
    private Map<String, String> environment;

    private Builder() {}

    /** The criu binary to run, overriding the property, environment variable and PATH. */
    public Builder binary(Path binary) {
      this.binary = Objects.requireNonNull(binary, "binary");
      return this;
    }

    /** CRIU's log level, 0 (none) to 4 (debug); default 2 (errors and warnings). */
    public Builder logLevel(int level) {
      if (level < 0 || level > 4) {
        throw new IllegalArgumentException("log level out of range 0..4: " + level);
      }
      this.logLevel = level;
      return this;
    }

    /**
     * File name of CRIU's log in the work directory, for every operation; default: one name per
     * operation ({@code dump.log}, {@code restore.log}, ...). A plain name, no {@code /}.
     */
    public Builder logFileName(String name) {
      Objects.requireNonNull(name, "name");
      if (name.isEmpty() || name.contains("/")) {
        throw new IllegalArgumentException("log file name must be a plain file name: '" + name
            + "'");
      }
      this.logFileName = name;
      return this;
    }

    /**
     * How long to wait for each message from CRIU before killing it; {@link Duration#ZERO}
     * waits forever. Time spent in {@link Notifier} callbacks does not count. Default 10 min.
     */
    public Builder timeout(Duration timeout) {
      Objects.requireNonNull(timeout, "timeout");
      if (timeout.isNegative()) {
        throw new IllegalArgumentException("timeout < 0: " + timeout);
      }
      this.timeout = timeout;
      return this;
    }

    /** Environment of the criu processes; default: this process's environment. */
    public Builder environment(Map<String, String> environment) {
      this.environment = Map.copyOf(environment);
      return this;
    }

    public Criu build() {
      return new Criu(this);
    }
  }
}

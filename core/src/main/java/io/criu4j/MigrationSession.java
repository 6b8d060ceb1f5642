package io.criu4j;

import io.criu4j.internal.migrate.SourceMigration;
import io.criu4j.internal.migrate.SourceSettings;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import java.net.URI;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;

/**
 * The source side of one live migration: moves the process tree rooted at {@link Builder#pid}
 * to a {@link MigrationAgent}, with the shortest freeze this host's CRIU allows, and never loses
 * it.
 *
 * <pre>{@code
 * try (MigrationSession session = MigrationSession.builder()
 *     .pid(1234).destination(URI.create("tcp://10.0.0.2:7070")).build()) {
 *   MigrationReport report = session.migrate();
 *   log.info("now pid {}, down {}", report.destinationPid(), report.downtime());
 * }
 * }</pre>
 *
 * <p>Phases ({@link MigrationPhase}): pre-flight on both hosts before anything is frozen;
 * pre-copy rounds while the tree runs (when both CRIUs track dirty memory); the final dump, whose
 * post-dump notification holds the tree frozen while the images finish shipping and the agent
 * restores them; then the commit. Until the agent reports the restored tree ready, any failure,
 * timeout or {@link #cancel()} vetoes the dump: the source tree resumes and the agent discards
 * its copy. See {@code docs/migration.md} for the protocol and its one failure window.
 *
 * <p>One instance is one attempt: {@link #migrate()} runs once. Thread-safe: {@link #cancel()}
 * and {@link #close()} may be called from any thread. The session owns its connections, CRIU
 * children, threads and staging directories, and frees them all before {@code migrate()} returns
 * or throws; it does not own the {@link Criu}, the {@link Transport} or the listener.
 *
 * @since 0.1
 */
public final class MigrationSession implements AutoCloseable {
  private final SourceMigration migration;

  private MigrationSession(SourceSettings settings) {
    this.migration = new SourceMigration(settings);
  }

  public static Builder builder() {
    return new Builder();
  }

  /** This session's id; the agent logs it too. */
  public UUID sessionId() {
    return migration.settings().sessionId();
  }

  /**
   * Runs the migration and blocks until it is committed or rolled back.
   *
   * @return the report of the committed migration; the tree now runs on the destination
   * @throws MigrationCancelledException if {@link #cancel()} or {@link #close()} stopped it
   *     before the commit point; the source tree runs
   * @throws MigrationException if a check refused it (nothing was frozen) or a phase failed or
   *     timed out before the commit point (the source tree was resumed); the message names the
   *     reason
   * @throws IllegalStateException if called a second time or after {@link #close()}
   */
  public MigrationReport migrate() throws MigrationException {
    return migration.run();
  }

  /**
   * Asks a running migration to stop; returns at once. Before the commit point the source
   * resumes and {@link #migrate()} throws {@link MigrationCancelledException}; after it, this has
   * no effect and the migration completes. Before {@code migrate()} it makes {@code migrate()}
   * fail at once. Idempotent.
   */
  public void cancel() {
    migration.cancel();
  }

  /**
   * Cancels a running migration, waits for it to end, and frees what is left. Idempotent; never
   * throws.
   */
  @Override
  public void close() {
    migration.close();
  }

  @Override
  public String toString() {
    return "MigrationSession[" + migration.settings().sessionId() + ", pid "
        + migration.settings().pid() + " -> " + migration.settings().destination() + "]";
  }

  /**
   * Configures a {@link MigrationSession}. Not thread-safe.
   *
   * @since 0.1
   */
  public static final class Builder {
    private int pid;
    private URI destination;
    private Transport transport;
    private Criu criu;
    private final CriuOptions.Builder options = CriuOptions.builder();
    private final List<String> externals = new ArrayList<>();
    private int criuLogLevel = -1;
    private PreCopyPolicy preCopy = PreCopyPolicy.defaults();
    private final Map<MigrationPhase, Duration> timeouts = new EnumMap<>(MigrationPhase.class);
    private MigrationListener listener = MigrationListener.NONE;
    private Path staging = Paths.get("/dev/shm");
    private UUID sessionId;
    private SourceSettings.TestHooks hooks = SourceSettings.TestHooks.NONE;

    private Builder() {}

    /** The root of the tree to migrate (a process or a PID-namespace init). Required. */
    public Builder pid(int pid) {
      if (pid <= 0) {
        throw new IllegalArgumentException("pid must be > 0: " + pid);
      }
      this.pid = pid;
      return this;
    }

    /**
     * The agent's address; the transport is found by its scheme ({@link Transports#forUri}):
     * {@code tcp://host:port}, {@code unix:///path}, {@code mem://name}. Required (or the
     * two-argument form).
     */
    public Builder destination(URI agent) {
      Objects.requireNonNull(agent, "agent");
      return destination(Transports.forUri(agent), agent);
    }

    /** The agent's address, reached with {@code transport}. */
    public Builder destination(Transport transport, URI agent) {
      this.transport = Objects.requireNonNull(transport, "transport");
      this.destination = Objects.requireNonNull(agent, "agent");
      return this;
    }

    /** The CRIU client for the source's dumps; default {@link Criu#create()}. */
    public Builder criu(Criu criu) {
      this.criu = Objects.requireNonNull(criu, "criu");
      return this;
    }

    /** Dump and restore established TCP connections (CRIU {@code --tcp-established}). */
    public Builder tcpEstablished(boolean on) {
      options.tcpEstablished(on);
      return this;
    }

    /** The tree is a shell job (CRIU {@code --shell-job}). */
    public Builder shellJob(boolean on) {
      options.shellJob(on);
      return this;
    }

    /** Allow external Unix sockets (CRIU {@code --ext-unix-sk}). */
    public Builder extUnixSockets(boolean on) {
      options.externalUnixSockets(on);
      return this;
    }

    /** Dump and restore file locks (CRIU {@code --file-locks}). */
    public Builder fileLocks(boolean on) {
      options.fileLocks(on);
      return this;
    }

    /** Remap unlinked files that are still open (CRIU {@code --link-remap}). */
    public Builder linkRemap(boolean on) {
      options.linkRemap(on);
      return this;
    }

    /** An external resource, in CRIU's {@code --external} syntax. Repeatable. */
    public Builder external(String spec) {
      Objects.requireNonNull(spec, "spec");
      if (spec.isBlank()) {
        throw new IllegalArgumentException("external spec is blank");
      }
      externals.add(spec);
      return this;
    }

    /** How CRIU handles cgroups, on dump and restore (CRIU {@code --manage-cgroups}). */
    public Builder manageCgroups(CriuOptions.CgroupMode mode) {
      options.manageCgroups(Objects.requireNonNull(mode, "mode"));
      return this;
    }

    /** How CRIU locks the network of a dumped network namespace. */
    public Builder networkLock(CriuOptions.NetworkLockMethod method) {
      options.networkLock(Objects.requireNonNull(method, "method"));
      return this;
    }

    /**
     * CRIU's log level (0..4) of the source's CRIU operations when no {@link #criu(Criu)} is
     * given (a given client keeps its own level); the agent uses its own client's level.
     * Default 2 (errors and warnings).
     */
    public Builder criuLogLevel(int level) {
      if (level < 0 || level > 4) {
        throw new IllegalArgumentException("CRIU log level out of range 0..4: " + level);
      }
      this.criuLogLevel = level;
      return this;
    }

    /**
     * Post-copy (CRIU lazy pages; default off): the destination runs the tree as soon as
     * everything but its memory arrived, and the memory follows from the frozen original, on
     * demand and in the background. The freeze then no longer grows with the memory size. The
     * original is gone only once all of it arrived; until then a failure (or {@code cancel()})
     * kills the copy and resumes the original, so the tree's work since the restore is lost,
     * and what it did to the world outside (files, connections) stays done. Needs userfaultfd
     * on both hosts and, on the source, pipes of 4 MiB ({@code fs.pipe-max-size}) or
     * CAP_SYS_RESOURCE; the pre-flight refuses otherwise. Pre-copy rounds are skipped.
     */
    public Builder postCopy(boolean on) {
      options.lazyPages(on);
      return this;
    }

    /** Pre-copy policy; default {@link PreCopyPolicy#defaults()}. */
    public Builder preCopy(PreCopyPolicy policy) {
      this.preCopy = Objects.requireNonNull(policy, "policy");
      return this;
    }

    /**
     * Longest time {@code phase} may take before the migration fails (rolled back if before the
     * commit point). Defaults: pre-flight 60 s, pre-copy the policy's {@code maxTotal} plus a
     * round, final dump 5 min, transfer 5 min, restore 5 min, commit 30 s, post-copy 10 min,
     * cleanup 30 s.
     */
    public Builder phaseTimeout(MigrationPhase phase, Duration timeout) {
      Objects.requireNonNull(phase, "phase");
      Objects.requireNonNull(timeout, "timeout");
      if (timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("timeout of " + phase + " must be positive: "
            + timeout);
      }
      timeouts.put(phase, timeout);
      return this;
    }

    /** Receives the session's events; default {@link MigrationListener#NONE}. */
    public Builder listener(MigrationListener listener) {
      this.listener = Objects.requireNonNull(listener, "listener");
      return this;
    }

    /**
     * Parent directory (on tmpfs) of the session's staging directories; default
     * {@code /dev/shm}. It must exist.
     */
    public Builder stagingDirectory(Path parent) {
      this.staging = Objects.requireNonNull(parent, "parent");
      return this;
    }

    /** The session id; default a random one. */
    public Builder sessionId(UUID id) {
      this.sessionId = Objects.requireNonNull(id, "id");
      return this;
    }

    /** Test hooks (package-private: criu4j's own tests play CRIU's page stream). */
    Builder testHooks(SourceSettings.TestHooks hooks) {
      this.hooks = Objects.requireNonNull(hooks, "hooks");
      return this;
    }

    /**
     * @throws IllegalStateException if the pid or the destination is not set
     */
    public MigrationSession build() {
      if (pid <= 0) {
        throw new IllegalStateException("pid is required");
      }
      if (destination == null) {
        throw new IllegalStateException("destination is required");
      }
      CriuOptions base = options.pid(pid).externals(List.copyOf(externals)).build();
      return new MigrationSession(new SourceSettings(pid, transport, destination,
          criu != null ? criu : criuLogLevel >= 0
              ? Criu.builder().logLevel(criuLogLevel).build() : Criu.create(), base, preCopy,
          SourceSettings.timeouts(timeouts, preCopy), listener, staging.toAbsolutePath(),
          sessionId != null ? sessionId : UUID.randomUUID(), hooks));
    }
  }
}

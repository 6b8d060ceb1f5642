package io.criu4j;

import io.criu4j.internal.migrate.AgentHooks;
import io.criu4j.internal.migrate.AgentSettings;
import io.criu4j.internal.migrate.DestinationAgent;
import io.criu4j.internal.image.PageSink;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import java.net.URI;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Objects;

/**
 * The destination side of live migrations: listens on a transport address, and for each
 * {@link MigrationSession} that connects answers the pre-flight, receives the images into a
 * per-session directory on tmpfs ({@link ImageCache}), restores the tree, and lets it run once
 * the source has let go of it. Embeddable (tests, servers) and run by the command-line tool.
 *
 * <pre>{@code
 * try (MigrationAgent agent = MigrationAgent.builder()
 *     .listen(URI.create("tcp://0.0.0.0:7070")).start()) {
 *   ... // sessions are served in the background until close()
 * }
 * }</pre>
 *
 * <p><b>Limits.</b> Each session is bounded: {@link Builder#maxImageBytes} and
 * {@link Builder#maxFiles} for what it may send, {@link Builder#maxFrameBytes} for each message
 * and data frame, {@link Builder#handshakeTimeout} and {@link Builder#idleTimeout} for a peer
 * that stops talking, and {@link Builder#maxConcurrentSessions} for the agent as a whole.
 * Exceeding one ends only that session, with an error that names the limit and its value; the
 * source resumes its process, and the other sessions carry on.
 *
 * <p>A restored tree stays stopped until the source's commit; if the session fails, is
 * cancelled or loses its connection before that, the restore is vetoed and the restored copy
 * discarded. The agent owns its listener, every session's connections, CRIU children, threads
 * and directories; it does not own the {@link Criu} or the {@link Transport}. Thread-safe.
 *
 * @since 0.1
 */
public final class MigrationAgent implements AutoCloseable {
  /** The default of {@link Builder#maxImageBytes}: 32 GiB. */
  public static final long DEFAULT_MAX_IMAGE_BYTES = 32L << 30;
  /** The default of {@link Builder#maxFiles}. */
  public static final int DEFAULT_MAX_FILES = 100_000;
  /** The default, and the largest value, of {@link Builder#maxFrameBytes}: 1 MiB. */
  public static final int DEFAULT_MAX_FRAME_BYTES = 1 << 20;
  private final DestinationAgent agent;

  static {
    AgentHooks.register(a -> a.agent);
  }

  private MigrationAgent(DestinationAgent agent) {
    this.agent = agent;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The address the agent listens on, with a port 0 resolved: give it to the sources. */
  public URI address() {
    return agent.address();
  }

  /** Sessions being served right now. */
  public int activeSessions() {
    return agent.activeSessions();
  }

  /** Sessions committed since the start (the tree runs here). */
  public int completedSessions() {
    return agent.completedSessions();
  }

  /**
   * Stops accepting, aborts the sessions that have not committed (their sources resume), waits
   * for them to end and frees everything. Idempotent; never throws.
   */
  @Override
  public void close() {
    agent.close();
  }

  @Override
  public String toString() {
    return "MigrationAgent[" + agent.address() + "]";
  }

  /**
   * Configures a {@link MigrationAgent}. Not thread-safe.
   *
   * @since 0.1
   */
  public static final class Builder {
    private Transport transport;
    private URI listen;
    private Path directory = Paths.get("/dev/shm");
    private Criu criu;
    private long memoryLimit = 256L * 1024 * 1024;
    private int maxConcurrentSessions = 4;
    private Notifier restoreNotifier = Notifier.NONE;
    private MigrationListener listener = MigrationListener.NONE;
    private Duration restoreTimeout = Duration.ofMinutes(5);
    private Duration commitTimeout = Duration.ofSeconds(60);
    private PageSink.Factory pageSinks;
    private long maxImageBytes = DEFAULT_MAX_IMAGE_BYTES;
    private int maxFiles = DEFAULT_MAX_FILES;
    private int maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
    private Duration handshakeTimeout = Duration.ofSeconds(10);
    private Duration idleTimeout = Duration.ofSeconds(60);

    private Builder() {}

    /** Where to listen; the transport is found by the scheme ({@link Transports#forUri}). */
    public Builder listen(URI uri) {
      Objects.requireNonNull(uri, "uri");
      return listen(Transports.forUri(uri), uri);
    }

    /** Where to listen, with {@code transport}. Required (one of the two). */
    public Builder listen(Transport transport, URI uri) {
      this.transport = Objects.requireNonNull(transport, "transport");
      this.listen = Objects.requireNonNull(uri, "uri");
      return this;
    }

    /**
     * Parent directory (on tmpfs) of the per-session image directories; default /dev/shm. The
     * session directories are named after the agent's process (pid and start time); at start the
     * agent deletes those whose process no longer runs (what a killed agent left), and leaves
     * those of other live agents sharing the directory.
     */
    public Builder directory(Path parent) {
      this.directory = Objects.requireNonNull(parent, "parent");
      return this;
    }

    /** The CRIU client for page servers and restores; default {@link Criu#create()}. */
    public Builder criu(Criu criu) {
      this.criu = Objects.requireNonNull(criu, "criu");
      return this;
    }

    /** Most bytes of image file data each session holds in memory; default 256 MiB. */
    public Builder memoryLimit(long bytes) {
      if (bytes < 64 * 1024) {
        throw new IllegalArgumentException("memoryLimit below 64 KiB: " + bytes);
      }
      this.memoryLimit = bytes;
      return this;
    }

    /** Sessions served at once; more are refused at pre-flight. Default 4. */
    public Builder maxConcurrentSessions(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("maxConcurrentSessions < 1: " + n);
      }
      this.maxConcurrentSessions = n;
      return this;
    }

    /**
     * An extra hook called at each notification of every restore, before the agent's own
     * handling; throwing vetoes the restore (the source then resumes). {@code preResume} and
     * {@code postResume} come after the commit: the tree runs whatever they do. Default none.
     */
    public Builder restoreNotifier(Notifier notifier) {
      this.restoreNotifier = Objects.requireNonNull(notifier, "notifier");
      return this;
    }

    /** Receives the events of every session; default {@link MigrationListener#NONE}. */
    public Builder listener(MigrationListener listener) {
      this.listener = Objects.requireNonNull(listener, "listener");
      return this;
    }

    /** Longest wait for the images and the restore of one session; default 5 min. */
    public Builder restoreTimeout(Duration timeout) {
      this.restoreTimeout = positive("restoreTimeout", timeout);
      return this;
    }

    /**
     * Longest wait, with a restored tree held stopped, for the source's commit; default 60 s.
     * Past it the restore is vetoed.
     */
    public Builder commitTimeout(Duration timeout) {
      this.commitTimeout = positive("commitTimeout", timeout);
      return this;
    }

    /**
     * Most bytes of images one session may send (file data and page stream, all rounds
     * together); default 32 GiB. A source that announces more at pre-flight is refused there;
     * one that sends more is stopped when it does, before the excess is stored.
     */
    public Builder maxImageBytes(long bytes) {
      if (bytes < 1) {
        throw new IllegalArgumentException("maxImageBytes < 1: " + bytes);
      }
      this.maxImageBytes = bytes;
      return this;
    }

    /** Most image files one session may send (all rounds together); default 100000. */
    public Builder maxFiles(int files) {
      if (files < 1) {
        throw new IllegalArgumentException("maxFiles < 1: " + files);
      }
      this.maxFiles = files;
      return this;
    }

    /**
     * Largest control message and largest image data frame a source may send, 4 KiB to 1 MiB;
     * default 1 MiB. Sources adapt their data frames to it; a larger one ends the session.
     */
    public Builder maxFrameBytes(int bytes) {
      if (bytes < 4096 || bytes > DEFAULT_MAX_FRAME_BYTES) {
        throw new IllegalArgumentException("maxFrameBytes outside 4096.."
            + DEFAULT_MAX_FRAME_BYTES + ": " + bytes);
      }
      this.maxFrameBytes = bytes;
      return this;
    }

    /**
     * Longest time from accepting a connection to its first message: the image connection's
     * preamble, or the control connection's pre-flight request; default 10 s. A transport's own
     * handshake (TLS) has its own timeout before that.
     */
    public Builder handshakeTimeout(Duration timeout) {
      this.handshakeTimeout = positive("handshakeTimeout", timeout);
      return this;
    }

    /**
     * Longest time a session waits for the source's next step while its images make no
     * progress either; default 60 s. Image transfers that keep moving never hit it.
     */
    public Builder idleTimeout(Duration timeout) {
      this.idleTimeout = positive("idleTimeout", timeout);
      return this;
    }

    /** Test seam: replaces the CRIU page server of every session's image cache. */
    Builder pageSinks(PageSink.Factory factory) {
      this.pageSinks = Objects.requireNonNull(factory, "factory");
      return this;
    }

    private static Duration positive(String what, Duration d) {
      Objects.requireNonNull(d, what);
      if (d.isNegative() || d.isZero()) {
        throw new IllegalArgumentException(what + " must be positive: " + d);
      }
      return d;
    }

    /**
     * Binds the address and starts accepting in the background.
     *
     * @throws IllegalStateException if no address was given
     * @throws MigrationException if the address cannot be bound or the directory is unusable
     */
    public MigrationAgent start() throws MigrationException {
      if (listen == null) {
        throw new IllegalStateException("listen address is required");
      }
      return new MigrationAgent(DestinationAgent.start(new AgentSettings(transport, listen,
          directory.toAbsolutePath(), criu != null ? criu : Criu.create(), memoryLimit,
          maxConcurrentSessions, restoreNotifier, listener, restoreTimeout, commitTimeout,
          pageSinks, maxImageBytes, maxFiles, maxFrameBytes, handshakeTimeout, idleTimeout)));
    }
  }
}

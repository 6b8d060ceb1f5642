package io.criu4j.internal.migrate;

import io.criu4j.Criu;
import io.criu4j.MigrationException;
import io.criu4j.internal.posix.ChildProcess;
import io.criu4j.internal.transport.NioSockets;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination's part of a post-copy: a {@code criu lazy-pages} daemon for the restore in
 * {@code dir}, which fetches the tree's memory from a page server it finds on a loopback port
 * of this object, and the {@link LazyPageRelay} from that port to the source. When the relay
 * fails, {@code stopCopy} kills the restored tree before the source hears of it.
 *
 * <p>Owns the daemon, the listening socket, and the relay with its socket and connection;
 * {@link #close()} ends them all (and, unless the post-copy completed, the copy). Thread-safe.
 */
final class PostCopyDestination implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PostCopyDestination.class);
  /** The name of the socket the daemon creates in its work directory for the restore. */
  static final String DAEMON_SOCKET = "lazy-pages.socket";
  private static final String DAEMON_LOG = "lazy-pages.log";
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(10);
  private static final Duration EXIT_WAIT = Duration.ofSeconds(30);

  private final String label;
  private final Path dir;
  private final ServerSocketChannel listener;
  private final ChildProcess daemon;
  private final LazyPageRelay relay;
  private final Thread acceptor;
  private volatile Connection connection;
  private volatile SocketChannel accepted;
  private ChildProcess guard;
  private io.criu4j.internal.posix.Pipe guardPipe;
  private java.util.concurrent.ScheduledExecutorService beats;

  private PostCopyDestination(String label, Path dir, ServerSocketChannel listener,
      ChildProcess daemon, Consumer<String> stopCopy) {
    this.label = label;
    this.dir = dir;
    this.listener = listener;
    this.daemon = daemon;
    this.relay = new LazyPageRelay(label, new LazyPageRelay.Side() {
      @Override
      public boolean localEnded() {
        return daemonExitedWell();
      }

      @Override
      public void stopLocalCopy(String why) {
        stopCopy.accept("post-copy failed: " + why);
      }

      @Override
      public Duration fence(LazyPageRelay.Cause cause) {
        return Duration.ZERO;
      }
    });
    this.acceptor = new Thread(this::acceptDaemon, "criu4j-" + label + "-lazy-accept");
    this.acceptor.setDaemon(true);
  }

  /** Starts the daemon for a restore from {@code dir} and waits until it is ready. */
  static PostCopyDestination start(Criu criu, Path dir, String label, Consumer<String> stopCopy)
      throws MigrationException {
    ServerSocketChannel l;
    try {
      l = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(),
          0), 1);
    } catch (IOException e) {
      throw new MigrationException("cannot listen on a loopback port for the lazy-pages "
          + "daemon: " + e, e);
    }
    ChildProcess d;
    try {
      int port = ((InetSocketAddress) l.getLocalAddress()).getPort();
      d = ChildProcess.spawn(criu.binary(), List.of("criu", "lazy-pages", "--page-server",
          "--address", "127.0.0.1", "--port", Integer.toString(port), "--images-dir",
          dir.toString(), "--log-file", DAEMON_LOG, "-v2"), System.getenv(), List.of());
    } catch (IOException | RuntimeException e) {
      NioSockets.closeQuietly(l);
      throw e instanceof MigrationException m ? m
          : new MigrationException("cannot start the lazy-pages daemon: " + e, e);
    }
    PostCopyDestination pc = new PostCopyDestination(label, dir, l, d, stopCopy);
    try {
      pc.awaitReady();
    } catch (MigrationException | RuntimeException e) {
      pc.close();
      throw e;
    }
    pc.acceptor.start();
    return pc;
  }

  private void awaitReady() throws MigrationException {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    Path socket = dir.resolve(DAEMON_SOCKET);
    while (!Files.exists(socket)) {
      Integer status = daemon.pollStatus();
      if (status != null) {
        throw new MigrationException("the lazy-pages daemon " + ChildProcess.describe(status)
            + " before it was ready" + logTail());
      }
      if (System.nanoTime() - deadline > 0) {
        throw new MigrationException("the lazy-pages daemon was not ready within "
            + READY_TIMEOUT.toMillis() + " ms" + logTail());
      }
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException("interrupted while the lazy-pages daemon started", e);
      }
    }
    log.debug("{}: lazy-pages daemon {} ready in {}", label, daemon.pid(), dir);
  }

  /** The post-copy connection from the source; the relay starts once the daemon connected. */
  void attach(Connection c) {
    c.setReadTimeout(Wire.POST_COPY_STALL);
    connection = c;
    pairUp();
  }

  private void acceptDaemon() {
    try {
      accepted = listener.accept();
      pairUp();
    } catch (IOException e) {
      // closed: close() takes care of the rest
      log.debug("{}: no daemon connection: {}", label, e.toString());
    }
  }

  private synchronized void pairUp() {
    if (connection != null && accepted != null) {
      relay.start(accepted, connection);
    }
  }

  /**
   * Starts the watchdog that kills the copy unless this process keeps vouching for it. The copy
   * depends on this process during the post-copy: without the relay the daemon fails, and
   * memory that had not arrived reads as zeros once the daemon's userfaultfd is gone, while the
   * source, after its fence, resumes the original. So a shell reads 5-byte messages from a pipe
   * whose only writer is this process: "beat" every {@link Wire#POST_COPY_BEAT} renews a lease
   * of {@link Wire#POST_COPY_LEASE} (shorter than the source's fence), "done" lets the copy be.
   * End of file (this process died), an expired lease (it stalled) or anything else makes it
   * kill the processes listed, each only if it still is the process started at the time given.
   *
   * @param processes pid and start time (clock ticks after boot) of each restored process,
   *     listed while CRIU holds them stopped; processes forked later die with them only if the
   *     root is a PID-namespace init
   */
  synchronized void guardCopy(List<long[]> processes) throws MigrationException {
    StringBuilder list = new StringBuilder();
    for (long[] p : processes) {
      list.append(p[0]).append(' ').append(p[1]).append(' ');
    }
    String script = "set -- $0; while :; do "
        + "m=$(timeout " + Wire.POST_COPY_LEASE.toSeconds()
        + " dd bs=5 count=1 status=none 2>/dev/null) || m=; "
        + "case \"$m\" in done) exit 0;; beat) ;; *) break;; esac; done; "
        + "while [ $# -ge 2 ]; do "
        + "t=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f20); "
        + "[ \"$t\" = \"$2\" ] && kill -KILL $1; shift 2; done";
    guardPipe = io.criu4j.internal.posix.Pipe.open();
    guard = ChildProcess.spawn(java.nio.file.Paths.get("/bin/sh"), List.of("sh", "-c", script,
        list.toString().trim()), System.getenv(), List.of(), guardPipe.readEnd().get(), -1, -1);
    guardPipe.readEnd().close();
    sendToGuard("beat\n");
    beats = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "criu4j-" + label + "-lease");
      t.setDaemon(true);
      return t;
    });
    long every = Wire.POST_COPY_BEAT.toMillis();
    beats.scheduleAtFixedRate(() -> sendToGuard("beat\n"), every, every,
        java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  private synchronized void sendToGuard(String message) {
    if (guard == null) {
      return;
    }
    byte[] b = message.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    jnr.ffi.Pointer buf = jnr.ffi.Memory.allocateDirect(io.criu4j.internal.posix.Native.runtime(),
        b.length);
    buf.put(0, b, 0, b.length);
    // 5 bytes into a pipe: one atomic write, read whole by the watchdog's dd.
    io.criu4j.internal.posix.Native.libc().write(guardPipe.writeEnd().get(), buf, b.length);
  }

  /** Ends the lease: "done" if the copy may live (all its memory arrived); reaps the shell. */
  private void releaseGuard(boolean copyMayLive) {
    java.util.concurrent.ScheduledExecutorService b;
    ChildProcess g;
    synchronized (this) {
      b = beats;
      beats = null;
      g = guard;
    }
    if (g == null) {
      return;
    }
    b.shutdownNow();
    if (copyMayLive) {
      sendToGuard("done\n");
    }
    synchronized (this) {
      guardPipe.close();
      guard = null;
    }
    try {
      g.waitFor(2_000);
    } catch (MigrationException e) {
      log.debug("{}: waiting for the watchdog: {}", label, e.getMessage());
    }
    g.close();
  }

  /** Completes when the daemon received all memory and the source acknowledged the end. */
  java.util.concurrent.CompletableFuture<Void> done() {
    return relay.done();
  }

  /** Stops the post-copy (killing the copy first) unless it completed. */
  void fail(String why) {
    relay.fail(why, LazyPageRelay.Cause.ABORT);
  }

  /**
   * Fails the post-copy (stopping the copy) if the daemon exited without ever connecting: the
   * relay would wait for it forever, and the copy's missing memory would never come.
   */
  void checkDaemon() {
    if (accepted != null) {
      return; // from here the relay sees the daemon go
    }
    try {
      Integer status = daemon.pollStatus();
      if (status != null) {
        relay.fail("the lazy-pages daemon " + ChildProcess.describe(status)
            + " before it connected" + logTail(), LazyPageRelay.Cause.LOCAL);
      }
    } catch (MigrationException e) {
      relay.fail("cannot watch the lazy-pages daemon: " + e.getMessage(),
          LazyPageRelay.Cause.LOCAL);
    }
  }

  long bytesReceived() {
    return relay.bytesIn();
  }

  private boolean daemonExitedWell() {
    try {
      Integer status = daemon.waitFor(EXIT_WAIT.toMillis());
      if (status == null) {
        log.warn("{}: the lazy-pages daemon closed its connection but did not exit", label);
        return false;
      }
      if (status != 0) {
        log.warn("{}: the lazy-pages daemon {}{}", label, ChildProcess.describe(status),
            logTail());
        return false;
      }
      return true;
    } catch (MigrationException e) {
      log.warn("{}: waiting for the lazy-pages daemon: {}", label, e.getMessage());
      return false;
    }
  }

  private String logTail() {
    try {
      List<String> lines = Files.readAllLines(dir.resolve(DAEMON_LOG));
      List<String> errors = lines.stream().filter(x -> x.contains("Error")).toList();
      List<String> show = errors.isEmpty() ? lines : errors;
      return "; its log ends: " + String.join(" | ",
          show.subList(Math.max(0, show.size() - 3), show.size()));
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  @Override
  public void close() {
    relay.close();
    releaseGuard(relay.done().isDone() && !relay.done().isCompletedExceptionally());
    daemon.close();
    NioSockets.closeQuietly(listener);
    try {
      acceptor.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    SocketChannel a = accepted;
    if (a != null && !relay.done().isDone()) {
      NioSockets.closeQuietly(a);
    }
    Connection c = connection;
    if (c != null) {
      c.close();
    }
  }
}

package io.criu4j;

import io.criu4j.internal.criu.OptionsMapper;
import io.criu4j.internal.criu.SwrkConnection;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.rpc.CriuRpc.Options;
import io.criu4j.internal.rpc.CriuRpc.Request;
import io.criu4j.internal.rpc.CriuRpc.RequestType;
import io.criu4j.internal.rpc.CriuRpc.Response;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A CRIU page server running as a child of its CRIU process (PAGE_SERVER_CHLD): it writes the
 * pages one dump sends into its images directory, then exits.
 *
 * <p>Owns the CRIU process and the page server: {@link #awaitExit()} reaps the server
 * through CRIU (WAIT_PID); {@link #close()} kills it first if it still runs. Idempotent.
 * Thread-safe.
 *
 * @since 0.1
 */
public final class PageServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PageServer.class);

  /** Where a page server runs: its pid and the TCP port it listens on (0 when serving an fd). */
  public record Info(int pid, int port) {}

  private final Criu criu;
  private final SwrkConnection connection;
  private final Info info;
  private final Path logFile;
  private Integer status;
  private boolean closed;
  /** WAIT_PID was tried: the connection is finished, CRIU and its children are gone. */
  private boolean finished;

  private PageServer(Criu criu, SwrkConnection connection, Info info, Path logFile) {
    this.criu = criu;
    this.connection = connection;
    this.info = info;
    this.logFile = logFile;
  }

  static PageServer start(Criu criu, Path imagesDir, CriuOptions options)
      throws MigrationException {
    OptionsMapper mapper = new OptionsMapper(criu.version());
    try (Criu.Dirs dirs = criu.new Dirs(imagesDir, options)) {
      Options.Builder opts = criu.requestOptions(mapper, options, dirs, "page-server.log");
      // keep_open: the same connection later reaps the server with WAIT_PID.
      Request req = Request.newBuilder().setType(RequestType.PAGE_SERVER_CHLD).setOpts(opts)
          .setKeepOpen(true).build();
      Path logFile = criu.logPath(imagesDir, options, "page-server.log");
      SwrkConnection c = criu.spawn(mapper.childFds());
      try {
        // CRIU answers PAGE_SERVER_CHLD with a reply typed PAGE_SERVER.
        Response resp = c.call(req, RequestType.PAGE_SERVER, null,
            (r, veto) -> criu.failure(RequestType.PAGE_SERVER_CHLD, r, logFile, veto));
        if (!resp.hasPs() || resp.getPs().getPid() <= 0) {
          throw new ProtocolException("CRIU answered PAGE_SERVER_CHLD without the server's pid");
        }
        return new PageServer(criu, c, new Info(resp.getPs().getPid(), resp.getPs().getPort()),
            logFile);
      } catch (MigrationException | RuntimeException e) {
        c.close();
        throw e;
      }
    }
  }

  public int pid() {
    return info.pid();
  }

  /** The TCP port the server listens on; 0 when it serves a descriptor. */
  public int port() {
    return info.port();
  }

  public Info info() {
    return info;
  }

  /**
   * Waits for the page server to exit (it does once its client closed the connection) and
   * returns its raw wait status; {@code 0} means success. The wait is bounded by the
   * {@link Criu} timeout.
   */
  public synchronized int awaitExit() throws MigrationException {
    if (status != null) {
      return status;
    }
    if (closed) {
      throw new IllegalStateException("page server already closed");
    }
    if (finished) {
      throw new IllegalStateException("an earlier awaitExit failed; the page server is gone");
    }
    Request req = Request.newBuilder().setType(RequestType.WAIT_PID).setPid(info.pid()).build();
    try {
      Response resp = connection.call(req, RequestType.WAIT_PID, null,
          (r, veto) -> criu.failure(RequestType.WAIT_PID, r, logFile, veto));
      status = resp.getStatus();
      return status;
    } finally {
      finished = true;
      connection.finish();
    }
  }

  /** Kills the page server if it still runs, then its CRIU process. Idempotent. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    // After a failed awaitExit the connection is finished and CRIU was reaped, so the server's
    // pid may already belong to another process: never signal it then.
    if (status == null && !finished) {
      log.debug("killing page server pid {}", info.pid());
      Native.libc().kill(info.pid(), Native.SIGKILL);
      try {
        // Reaped through CRIU, whose child it is; failing that, it is reparented and reaped.
        awaitExitQuietly();
      } finally {
        connection.close();
      }
    } else {
      connection.close();
    }
  }

  private void awaitExitQuietly() {
    try {
      Request req = Request.newBuilder().setType(RequestType.WAIT_PID).setPid(info.pid()).build();
      connection.call(req, RequestType.WAIT_PID, null,
          (r, veto) -> criu.failure(RequestType.WAIT_PID, r, logFile, veto));
    } catch (MigrationException e) {
      log.debug("reaping page server {}: {}", info.pid(), e.getMessage());
    }
  }

  @Override
  public String toString() {
    return "PageServer(pid " + info.pid() + ", port " + info.port() + ")";
  }
}

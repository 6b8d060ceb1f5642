package io.criu4j.internal.criu;

import com.google.protobuf.InvalidProtocolBufferException;
import io.criu4j.CriuException;
import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.internal.posix.ChildProcess;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.OutputLogger;
import io.criu4j.internal.posix.Pipe;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.internal.rpc.CriuRpc.Options;
import io.criu4j.internal.rpc.CriuRpc.Request;
import io.criu4j.internal.rpc.CriuRpc.RequestType;
import io.criu4j.internal.rpc.CriuRpc.Response;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One {@code criu swrk} child and the SOCK_SEQPACKET socket to it: requests go out, replies come
 * back, and notifications in between are handed to a {@link NotifyHandler} and acknowledged.
 *
 * <p>Owns the child and the socket: {@link #close()} closes the socket, gives the child a moment
 * to exit, then kills and reaps it. Idempotent. Synchronous and not thread-safe: one request in
 * flight, used by one thread, apart from {@link #abort()} which any thread may call.
 */
public final class SwrkConnection implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(SwrkConnection.class);
  /** CRIU's replies are small; anything this large is not CRIU talking. */
  static final int MAX_REPLY_BYTES = 16 << 20;
  private static final long EXIT_GRACE_MILLIS = 5_000;

  private final UnixSocket socket;
  private final ChildProcess child;
  private final Duration timeout;
  private final String binary;
  private volatile boolean closed;

  private final OutputLogger output;

  private SwrkConnection(UnixSocket socket, ChildProcess child, Duration timeout, String binary,
      OutputLogger output) {
    this.output = output;
    this.socket = socket;
    this.child = child;
    this.timeout = timeout;
    this.binary = binary;
  }

  /**
   * Spawns {@code criu swrk 3} with the child's end of a new socketpair as fd 3 and
   * {@code extraFds} (owned by the caller) as fds 4, 5, ... in the child.
   */
  public static SwrkConnection spawn(Path binary, Map<String, String> env, List<Integer> extraFds,
      Duration timeout) throws MigrationException {
    UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_SEQPACKET);
    // CRIU prints to stdout/stderr (CHECK's verdict, early errors): that goes to our log, never
    // to the embedding application's console.
    Pipe output = null;
    try (Fd devNull = Fd.adopt((int) Native.check("open(/dev/null)",
        () -> Native.libc().open("/dev/null", Native.O_CLOEXEC, 0)))) {
      output = Pipe.open();
      List<Integer> inherited = new ArrayList<>();
      inherited.add(pair.second().fd().get());
      inherited.addAll(extraFds);
      ChildProcess child = ChildProcess.spawn(binary,
          List.of(binary.toString(), "swrk", String.valueOf(ChildProcess.FIRST_INHERITED_FD)),
          env, inherited, devNull.get(), output.writeEnd().get(), output.writeEnd().get());
      // Our copies of the child's ends must go, or we would never see EOF when the child dies.
      pair.second().close();
      output.writeEnd().close();
      OutputLogger logger = OutputLogger.start(output.readEnd(), log, "criu[" + child.pid() + "]");
      return new SwrkConnection(pair.first(), child, timeout, binary.toString(), logger);
    } catch (MigrationException | RuntimeException e) {
      pair.close();
      if (output != null) {
        output.close();
      }
      throw e;
    }
  }

  /**
   * A connection over {@code socket} with no child process: the peer is whatever holds the other
   * end (a test playing CRIU on a thread). Owns {@code socket}. For tests and fuzzing only.
   */
  static SwrkConnection overSocket(UnixSocket socket, Duration timeout) {
    return new SwrkConnection(socket, null, timeout, "in-process criu", null);
  }

  /** Child fd number CRIU sees for {@code extraFds.get(index)}. */
  public static int childFd(int index) {
    return ChildProcess.FIRST_INHERITED_FD + 1 + index;
  }

  public int pid() {
    return child == null ? -1 : child.pid();
  }

  /** Handles notifications during a request. */
  public interface NotifyHandler {
    /**
     * Handles notification {@code script}; throwing vetoes it.
     *
     * @return {@code --external} specifications to add (query-ext-files), or null
     * @param fds descriptors that came with it, owned by the handler
     */
    List<String> notify(String script, int pid, List<Fd> fds) throws Exception;
  }

  /**
   * Sends {@code request} and waits for its reply, answering notifications with {@code handler}
   * (null: notifications are a protocol error). A failed reply becomes a {@link CriuException}
   * via {@code failure}.
   *
   * @param expected the reply type that counts as the answer
   */
  public Response call(Request request, RequestType expected, NotifyHandler handler,
      FailureReporter failure) throws MigrationException {
    String what = request.getType().name();
    send(request, what);
    Throwable veto = null;
    while (true) {
      Response resp = receive(what, expected);
      if (resp.getType() == RequestType.NOTIFY) {
        if (handler == null) {
          throw protocolError("a notification ('" + resp.getNotify().getScript()
              + "') although notify mode is off, in reply to " + what);
        }
        String script = resp.getNotify().getScript();
        boolean ok = true;
        List<String> externals = null;
        try {
          externals = handler.notify(script, resp.getNotify().getPid(), lastFds);
        } catch (Exception | Error e) {
          if (e instanceof Error err && !(e instanceof AssertionError)) {
            abort();
            throw err;
          }
          if (e instanceof InterruptedException) {
            // A veto all the same, but the caller's thread keeps its interrupt status.
            Thread.currentThread().interrupt();
          }
          log.info("notification {} vetoed: {}", script, e.toString());
          veto = e;
          ok = false;
        }
        lastFds = List.of();
        Request.Builder ack = Request.newBuilder().setType(RequestType.NOTIFY).setNotifySuccess(ok);
        if (ok && externals != null && !externals.isEmpty()) {
          ack.setOpts(Options.newBuilder().setImagesDirFd(-1).addAllExternal(externals));
        }
        send(ack.build(), "NOTIFY(" + script + ")");
        continue;
      }
      if (!resp.getSuccess()) {
        CriuException error = failure.report(resp, veto);
        if (error != null) {
          throw error;
        }
      }
      if (resp.getType() != expected) {
        throw protocolError("expected a reply of type " + expected + " to " + what + ", got "
            + resp.getType());
      }
      return resp;
    }
  }

  /** Turns a failed reply into an exception. */
  @FunctionalInterface
  public interface FailureReporter {
    CriuException report(Response resp, Throwable veto);
  }

  private List<Fd> lastFds = List.of();

  private void send(Request request, String what) throws MigrationException {
    try {
      socket.send(request.toByteArray());
    } catch (MigrationException e) {
      throw childFailure("could not send " + what + " to criu: " + e.getMessage(), e);
    }
  }

  private Response receive(String what, RequestType expected) throws MigrationException {
    long millis = timeout.isZero() ? -1 : timeout.toMillis();
    if (!socket.awaitReadable(millis)) {
      abort();
      List<String> lines = output == null ? List.of() : output.lastLines(200);
      throw new MigrationException(binary + " (pid " + pid() + ") did not answer " + what
          + " within " + timeout + "; it was killed"
          + (lines.isEmpty() ? "" : "; its output ended with: " + String.join(" | ", lines)),
          62, null);
    }
    UnixSocket.Packet packet;
    try {
      packet = socket.receive(MAX_REPLY_BYTES);
    } catch (ProtocolException e) {
      abort();
      throw e;
    } catch (MigrationException e) {
      throw childFailure("reading the reply to " + what + " failed: " + e.getMessage(), e);
    }
    if (packet == null) {
      throw childFailure("criu closed the connection instead of answering " + what, null);
    }
    lastFds.forEach(Fd::close);
    lastFds = packet.fds();
    try {
      Response resp = Response.parseFrom(packet.data());
      if (resp.getType() != RequestType.NOTIFY && !packet.fds().isEmpty()) {
        packet.fds().forEach(Fd::close);
        lastFds = List.of();
      }
      return resp;
    } catch (InvalidProtocolBufferException e) {
      packet.fds().forEach(Fd::close);
      lastFds = List.of();
      byte[] data = packet.data();
      String hex = HexFormat.of().formatHex(data, 0, Math.min(32, data.length));
      throw protocolError("expected a criu_resp (" + expected + ") to " + what + ", got "
          + data.length + " undecodable bytes: " + hex + (data.length > 32 ? "..." : ""));
    }
  }

  private ProtocolException protocolError(String message) {
    abort();
    return new ProtocolException(message + " (is " + binary + " CRIU?)");
  }

  private MigrationException childFailure(String message, Throwable cause) {
    String status = describeExit();
    abort();
    return new ProtocolException(message + "; " + binary + " " + status, cause);
  }

  private String describeExit() {
    if (child == null) {
      return "is not a child process";
    }
    try {
      Integer st = child.waitFor(500);
      if (st == null) {
        return "is still running (pid " + child.pid() + ")";
      }
      List<String> lines = output.lastLines(200);
      return "(pid " + child.pid() + ") " + ChildProcess.describe(st)
          + (lines.isEmpty() ? "" : "; its output ended with: " + String.join(" | ", lines));
    } catch (MigrationException e) {
      return "(pid " + child.pid() + ") state unknown: " + e.getMessage();
    }
  }

  /** Kills the child and wakes the thread blocked on it. Any thread; idempotent. */
  public void abort() {
    if (child != null) {
      child.kill();
    }
    socket.shutdown();
  }

  /**
   * Closes the socket and waits briefly for CRIU to exit on its own (it does after a terminal
   * request), then kills and reaps it. Returns the wait status, or null if it had to be killed.
   */
  public Integer finish() {
    if (closed) {
      return null;
    }
    closed = true;
    lastFds.forEach(Fd::close);
    socket.close();
    if (child == null) {
      return null;
    }
    try {
      Integer st = child.waitFor(EXIT_GRACE_MILLIS);
      if (st == null) {
        log.warn("criu (pid {}) still running {} ms after its last request; killing it",
            child.pid(), EXIT_GRACE_MILLIS);
      }
      return st;
    } catch (MigrationException e) {
      log.debug("waiting for criu: {}", e.getMessage());
      return null;
    } finally {
      child.close();
    }
  }

  @Override
  public void close() {
    finish();
  }
}

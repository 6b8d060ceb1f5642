package io.criu4j.testing;

import io.criu4j.CriuFeatures;
import io.criu4j.CriuVersion;
import io.criu4j.DumpStats;
import io.criu4j.internal.rpc.CriuRpc.DumpResponse;
import io.criu4j.internal.rpc.CriuRpc.Features;
import io.criu4j.internal.rpc.CriuRpc.Notify;
import io.criu4j.internal.rpc.CriuRpc.PageServerInfo;
import io.criu4j.internal.rpc.CriuRpc.Request;
import io.criu4j.internal.rpc.CriuRpc.RequestType;
import io.criu4j.internal.rpc.CriuRpc.Response;
import io.criu4j.internal.rpc.CriuRpc.RestoreResponse;
import io.criu4j.internal.rpc.CriuRpc.Version;
import io.criu4j.internal.rpc.CriuStats.DumpStatsEntry;
import io.criu4j.internal.rpc.CriuStats.StatsEntry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A scriptable stand-in for CRIU, like MockWebServer for {@code criu swrk}: point
 * {@code Criu.builder().binary(fake.binary())} at it, {@link #enqueue} what it should do with the
 * next requests, run the code under test, then {@link #takeRequest()} to assert on what was sent.
 *
 * <p>Each CRIU child the client spawns is a real process ({@link FakeCriuProcess}) on the real
 * swrk socket, relaying packets to this object, which answers from the queue of {@link Script}s:
 * one script per request. VERSION requests are answered automatically with {@link #version} unless
 * the next script was enqueued {@link Script#forVersion() for VERSION}. Failure policies cover
 * disconnects, error replies, hangs, crashes in the middle of a notification, oversized,
 * undecodable and mistyped replies.
 *
 * <p>Needs Linux and a JDK; no root and no CRIU. Thread-safe. {@link #close()} ends every fake
 * process and removes its files; idempotent.
 */
public final class FakeCriu implements AutoCloseable {
  private final Path dir;
  private final Path binary;
  private final ServerSocketChannel control;
  private final Thread acceptor;
  private final BlockingQueue<RecordedRequest> requests = new LinkedBlockingQueue<>();
  private final BlockingQueue<Connection> connections = new LinkedBlockingQueue<>();
  private final ConcurrentLinkedQueue<Script> scripts = new ConcurrentLinkedQueue<>();
  private final List<SocketChannel> open = new CopyOnWriteArrayList<>();
  private volatile CriuVersion version = CriuVersion.of(4, 1, 1);
  private volatile CriuFeatures features = new CriuFeatures(false, true, true);
  private volatile boolean closed;

  private FakeCriu() throws IOException {
    dir = Files.createTempDirectory("fake-criu-");
    Path socket = dir.resolve("control.sock");
    control = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    control.bind(UnixDomainSocketAddress.of(socket));
    binary = dir.resolve("criu");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String script = "#!/bin/sh\n"
        + "# fake criu: relays the swrk socket to the test that started it\n"
        + "exec '" + java + "' -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k"
        + " -cp '" + System.getProperty("java.class.path") + "' "
        + FakeCriuProcess.class.getName() + " '" + socket + "' \"$@\"\n";
    Files.writeString(binary, script);
    Files.setPosixFilePermissions(binary, PosixFilePermissions.fromString("rwx------"));
    acceptor = new Thread(this::acceptLoop, "fake-criu-acceptor");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** Starts a fake CRIU. */
  public static FakeCriu start() {
    try {
      return new FakeCriu();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The executable to give {@code Criu.builder().binary(...)}. */
  public Path binary() {
    return binary;
  }

  /** The version automatic VERSION replies report; default 4.1.1. */
  public FakeCriu version(CriuVersion v) {
    this.version = Objects.requireNonNull(v);
    return this;
  }

  /** What FEATURE_CHECK replies report by default; default: no mem_track, lazy pages, pidfd. */
  public FakeCriu features(CriuFeatures f) {
    this.features = Objects.requireNonNull(f);
    return this;
  }

  /** Queues what to do with the next request (automatic VERSION answers aside). */
  public FakeCriu enqueue(Script script) {
    scripts.add(Objects.requireNonNull(script));
    return this;
  }

  /** The next request received, in order, including notification acknowledgements. */
  public RecordedRequest takeRequest() throws InterruptedException {
    RecordedRequest r = requests.poll(20, TimeUnit.SECONDS);
    if (r == null) {
      throw new AssertionError("no request within 20 s");
    }
    return r;
  }

  /** The next request that is not VERSION (the client's cached version probe). */
  public RecordedRequest takeRequestSkippingVersion() throws InterruptedException {
    while (true) {
      RecordedRequest r = takeRequest();
      if (!r.type().equals("VERSION")) {
        return r;
      }
    }
  }

  /** Requests received and not yet taken. */
  public int pendingRequests() {
    return requests.size();
  }

  /** The next fake CRIU process started, in order. */
  public Connection takeConnection() throws InterruptedException {
    Connection c = connections.poll(20, TimeUnit.SECONDS);
    if (c == null) {
      throw new AssertionError("no fake criu process within 20 s");
    }
    return c;
  }

  /** Scripts not yet used. */
  public int pendingScripts() {
    return scripts.size();
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        SocketChannel ch = control.accept();
        open.add(ch);
        Thread t = new Thread(() -> serve(ch), "fake-criu-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  /** One fake CRIU process as seen from its start. */
  public record Connection(long pid, long parentPid, List<String> openFds, List<String> argv) {
    /** True if the process had a descriptor open whose target contains {@code text}. */
    public boolean hadOpen(String text) {
      return openFds.stream().anyMatch(f -> f.contains(text));
    }
  }

  private void serve(SocketChannel ch) {
    try (ch) {
      Frame hello = Frame.read(ch);
      String[] parts = new String(hello.data, StandardCharsets.UTF_8).split("\n", 4);
      Connection conn = new Connection(Long.parseLong(parts[0]), Long.parseLong(parts[1]),
          List.of(parts[2].split("\u0001")), List.of(parts[3].split("\u0001")));
      connections.add(conn);
      Session s = new Session(conn, ch);
      s.run();
    } catch (IOException e) {
      // process gone; the client sees that for itself
    } catch (RuntimeException e) {
      // A bug in a script or in the fake: closing the control socket ends the fake process,
      // so the client fails fast instead of waiting for its timeout.
      errors.add(e);
    }
  }

  private final List<Throwable> errors = new CopyOnWriteArrayList<>();

  /** Failures inside the fake itself (not the client's); tests may assert this is empty. */
  public List<Throwable> errors() {
    return List.copyOf(errors);
  }

  private record Frame(int type, byte[] data) {
    static Frame read(SocketChannel in) throws IOException {
      ByteBuffer header = FakeCriuProcess.readFully(in, 8);
      int type = header.getInt();
      return new Frame(type, FakeCriuProcess.readFully(in, header.getInt()).array());
    }
  }

  /** Serves one fake CRIU process. */
  private final class Session {
    private final Connection conn;
    private final SocketChannel ch;

    Session(Connection conn, SocketChannel ch) {
      this.conn = conn;
      this.ch = ch;
    }

    void run() throws IOException {
      while (true) {
        Request req = nextRequest();
        if (req == null) {
          return;
        }
        Script script = scriptFor(req);
        if (!play(script, req)) {
          return;
        }
        boolean keepServing = req.getKeepOpen() || req.getType() == RequestType.PRE_DUMP;
        if (!keepServing) {
          command(FakeCriuProcess.EXIT, new byte[] {0});
          return;
        }
      }
    }

    private Request nextRequest() throws IOException {
      Frame f = Frame.read(ch);
      if (f.type == FakeCriuProcess.EOF) {
        return null;
      }
      Request req = Request.parseFrom(f.data);
      requests.add(new RecordedRequest(req, conn, clientDir(req)));
      return req;
    }

    /**
     * The directory {@code images_dir_fd} names in the client's table, resolved like CRIU does
     * (through /proc of the peer, here the fake's parent) while the client waits for the reply.
     */
    private Path clientDir(Request req) {
      if (!req.hasOpts() || req.getOpts().getImagesDirFd() < 0) {
        return null;
      }
      try {
        return Files.readSymbolicLink(Path.of("/proc", String.valueOf(conn.parentPid()), "fd",
            String.valueOf(req.getOpts().getImagesDirFd())));
      } catch (IOException e) {
        return null;
      }
    }

    private Script scriptFor(Request req) {
      if (req.getType() == RequestType.VERSION) {
        Script head = scripts.peek();
        if (head == null || !head.forVersion) {
          return Script.succeed();
        }
      }
      Script s = scripts.poll();
      return s != null ? s : Script.fail(0, "fake criu: no script enqueued for "
          + req.getType());
    }

    /** Returns false if the process is done. */
    private boolean play(Script script, Request req) throws IOException {
      for (Step step : script.steps) {
        switch (step.kind) {
          case NOTIFY -> {
            Response n = Response.newBuilder().setType(RequestType.NOTIFY).setSuccess(true)
                .setNotify(notifyBody(step)).build();
            command(step.withFd ? FakeCriuProcess.SEND_WITH_FD : FakeCriuProcess.SEND,
                n.toByteArray());
            Request ack = nextRequest();
            if (ack == null) {
              return false;
            }
            if (ack.getType() != RequestType.NOTIFY || !ack.getNotifySuccess()) {
              // What CRIU does when the client vetoes a notification.
              command(FakeCriuProcess.SEND, base(req).setSuccess(false)
                  .setCrErrmsg("RPC client reported script error").build().toByteArray());
              command(FakeCriuProcess.EXIT, new byte[] {1});
              return false;
            }
          }
          case PAUSE -> {
            try {
              Thread.sleep(step.pause.toMillis());
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              return false;
            }
          }
          case REPLY -> {
            writeFiles(step, req);
            command(FakeCriuProcess.SEND, reply(step, req).toByteArray());
          }
          case RAW -> command(FakeCriuProcess.SEND, step.raw);
          case DISCONNECT -> {
            command(FakeCriuProcess.DISCONNECT, new byte[0]);
            return false;
          }
          case CRASH -> {
            command(FakeCriuProcess.CRASH, new byte[0]);
            return false;
          }
          case HANG -> {
            // Say nothing; the process stays until the client kills it or the fake closes.
            while (Frame.read(ch).type != FakeCriuProcess.EOF) {
              // ignore further packets
            }
            return false;
          }
          default -> throw new IllegalStateException(step.kind.toString());
        }
      }
      return true;
    }

    private Notify.Builder notifyBody(Step step) {
      Notify.Builder n = Notify.newBuilder().setScript(step.script);
      if (step.pid != 0) {
        n.setPid(step.pid);
      }
      return n;
    }

    private Response.Builder base(Request req) {
      RequestType type = req.getType() == RequestType.PAGE_SERVER_CHLD
          ? RequestType.PAGE_SERVER : req.getType();
      return Response.newBuilder().setType(type);
    }

    private Response reply(Step step, Request req) {
      Response.Builder r = base(req).setSuccess(step.success);
      if (step.type != null) {
        r.setType(step.type);
      }
      if (step.errno != 0) {
        r.setCrErrno(step.errno);
      }
      if (step.message != null) {
        r.setCrErrmsg(step.message);
      }
      if (step.success) {
        switch (req.getType()) {
          case DUMP -> r.setDump(DumpResponse.newBuilder().setRestored(false));
          case RESTORE -> r.setRestore(RestoreResponse.newBuilder().setPid(step.pid));
          case VERSION -> r.setVersion(versionMessage());
          case FEATURE_CHECK -> r.setFeatures(featureMessage(step));
          case PAGE_SERVER, PAGE_SERVER_CHLD -> r.setPs(PageServerInfo.newBuilder()
              .setPid(step.pid != 0 ? step.pid : (int) conn.pid()).setPort(step.port));
          case WAIT_PID -> r.setStatus(step.status);
          default -> { }
        }
      } else if (req.getType() == RequestType.FEATURE_CHECK && step.features != null) {
        r.setFeatures(featureMessage(step));
      }
      return r.build();
    }

    private Features featureMessage(Step step) {
      CriuFeatures f = step.features != null ? step.features : features;
      return Features.newBuilder().setMemTrack(f.memTrack()).setLazyPages(f.lazyPages())
          .setPidfdStore(f.pidfdStore()).build();
    }

    private Version versionMessage() {
      CriuVersion v = version;
      Version.Builder b = Version.newBuilder().setMajorNumber(v.major())
          .setMinorNumber(v.minor());
      if (v.sublevel() != 0) {
        b.setSublevel(v.sublevel());
      }
      if (v.gitId() != null) {
        b.setGitid(v.gitId());
      }
      return b.build();
    }

    /** Writes stats and log files where CRIU would: the client's images (or work) dir. */
    private void writeFiles(Step step, Request req) throws IOException {
      if (!req.hasOpts() || (step.stats == null && step.logLines == null)) {
        return;
      }
      int dirFd = req.getOpts().hasWorkDirFd() ? req.getOpts().getWorkDirFd()
          : req.getOpts().getImagesDirFd();
      if (dirFd < 0) {
        return;
      }
      // Like CRIU: the fd lives in the client's table; the client is the fake's parent.
      Path dirPath = Files.readSymbolicLink(Path.of("/proc", String.valueOf(conn.parentPid()),
          "fd", String.valueOf(dirFd)));
      if (step.stats != null) {
        Files.write(dirPath.resolve("stats-dump"), statsFile(step.stats));
      }
      if (step.logLines != null && req.getOpts().hasLogFile()) {
        Files.write(dirPath.resolve(req.getOpts().getLogFile()), step.logLines);
      }
    }

    private void command(int type, byte[] data) throws IOException {
      FakeCriuProcess.write(ch, type, data);
    }
  }

  static byte[] statsFile(DumpStats s) {
    byte[] entry = StatsEntry.newBuilder().setDump(DumpStatsEntry.newBuilder()
        .setFreezingTime((int) s.freezingTimeMicros()).setFrozenTime((int) s.frozenTimeMicros())
        .setMemdumpTime((int) s.memdumpTimeMicros()).setMemwriteTime((int) s.memwriteTimeMicros())
        .setPagesScanned(s.pagesScanned()).setPagesSkippedParent(s.pagesSkippedParent())
        .setPagesWritten(s.pagesWritten()).setPagesLazy(s.pagesLazy())).build().toByteArray();
    ByteBuffer buf = ByteBuffer.allocate(12 + entry.length).order(ByteOrder.LITTLE_ENDIAN);
    buf.putInt(0x55105940).putInt(0x57093306).putInt(entry.length).put(entry);
    return buf.array();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      control.close();
    } catch (IOException ignored) {
      // closing anyway
    }
    for (SocketChannel ch : open) {
      try {
        ch.close();
      } catch (IOException ignored) {
        // closing anyway
      }
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // best effort
    }
  }

  enum Kind { NOTIFY, PAUSE, REPLY, RAW, DISCONNECT, CRASH, HANG }

  private static final class Step {
    final Kind kind;
    String script;
    boolean withFd;
    boolean success = true;
    int errno;
    String message;
    int pid;
    int port;
    int status;
    RequestType type;
    byte[] raw;
    CriuFeatures features;
    DumpStats stats;
    List<String> logLines;
    Duration pause;

    Step(Kind kind) {
      this.kind = kind;
    }
  }

  /**
   * What the fake does with one request: optional notifications (each waits for the client's
   * acknowledgement; a veto ends the script with CRIU's "script error" reply), then one ending:
   * a reply, a disconnect, a crash or a hang. Build with the static factories; not thread-safe.
   */
  public static final class Script {
    private final List<Step> steps = new ArrayList<>();
    private boolean forVersion;

    private Script() {}

    /** A script that starts with notifications, to be ended with a reply method. */
    public static Script notifying(String... scripts) {
      Script s = new Script();
      for (String name : scripts) {
        s.notify(name);
      }
      return s;
    }

    /** Adds a notification {@code name}. */
    public Script notify(String name) {
      return notify(name, 0);
    }

    /** Adds a notification {@code name} carrying {@code pid}. */
    public Script notify(String name, int pid) {
      Step st = new Step(Kind.NOTIFY);
      st.script = name;
      st.pid = pid;
      steps.add(st);
      return this;
    }

    /**
     * Adds a pause of {@code d} before the next step: CRIU still busy, for example tearing down
     * a large dumped tree after post-dump before it replies.
     */
    public Script pause(Duration d) {
      Step st = new Step(Kind.PAUSE);
      st.pause = d;
      steps.add(st);
      return this;
    }

    /** Adds a notification that carries a descriptor (a pipe's read end), like orphan-pts-master. */
    public Script notifyWithFd(String name) {
      notify(name);
      steps.get(steps.size() - 1).withFd = true;
      return this;
    }

    /** Success reply of the request's type. */
    public static Script succeed() {
      return new Script().thenSucceed();
    }

    /** Ends with a success reply. */
    public Script thenSucceed() {
      steps.add(new Step(Kind.REPLY));
      return this;
    }

    /** Success reply of RESTORE with the restored {@code pid}. */
    public static Script restored(int pid) {
      return new Script().thenRestored(pid);
    }

    public Script thenRestored(int pid) {
      Step st = new Step(Kind.REPLY);
      st.pid = pid;
      steps.add(st);
      return this;
    }

    /** Success reply of PAGE_SERVER(_CHLD) naming {@code pid} and {@code port}. */
    public static Script pageServer(int pid, int port) {
      Script s = new Script();
      Step st = new Step(Kind.REPLY);
      st.pid = pid;
      st.port = port;
      s.steps.add(st);
      return s;
    }

    /** Success reply of WAIT_PID with raw wait {@code status}. */
    public static Script waited(int status) {
      Script s = new Script();
      Step st = new Step(Kind.REPLY);
      st.status = status;
      s.steps.add(st);
      return s;
    }

    /** FEATURE_CHECK reply with {@code features}, success as CRIU reports it. */
    public static Script features(CriuFeatures features, boolean success) {
      Script s = new Script();
      Step st = new Step(Kind.REPLY);
      st.features = features;
      st.success = success;
      s.steps.add(st);
      return s;
    }

    /** Failure reply with {@code cr_errno} and {@code cr_errmsg}. */
    public static Script fail(int errno, String message) {
      return new Script().thenFail(errno, message);
    }

    public Script thenFail(int errno, String message) {
      Step st = new Step(Kind.REPLY);
      st.success = false;
      st.errno = errno;
      st.message = message;
      steps.add(st);
      return this;
    }

    /** Success reply whose type is {@code type} instead of the request's. */
    public static Script wrongType(String type) {
      Script s = new Script();
      Step st = new Step(Kind.REPLY);
      st.type = RequestType.valueOf(type);
      s.steps.add(st);
      return s;
    }

    /** Sends {@code bytes} as the reply packet, whatever they are. */
    public static Script raw(byte[] bytes) {
      Script s = new Script();
      Step st = new Step(Kind.RAW);
      st.raw = bytes.clone();
      s.steps.add(st);
      return s;
    }

    /** A success reply padded (with a long cr_errmsg) to about {@code bytes} bytes. */
    public static Script oversized(int bytes) {
      Script s = new Script();
      Step st = new Step(Kind.REPLY);
      st.message = "x".repeat(bytes);
      s.steps.add(st);
      return s;
    }

    /** Closes the socket and exits without answering. */
    public static Script disconnect() {
      return new Script().thenDisconnect();
    }

    public Script thenDisconnect() {
      steps.add(new Step(Kind.DISCONNECT));
      return this;
    }

    /** Dies by SIGKILL without answering. */
    public static Script crash() {
      return new Script().thenCrash();
    }

    public Script thenCrash() {
      steps.add(new Step(Kind.CRASH));
      return this;
    }

    /** Never answers. */
    public static Script hang() {
      return new Script().thenHang();
    }

    public Script thenHang() {
      steps.add(new Step(Kind.HANG));
      return this;
    }

    /** Writes {@code stats} as {@code stats-dump} into the work directory before replying. */
    public Script withStats(DumpStats stats) {
      last().stats = stats;
      return this;
    }

    /** Writes {@code lines} as the request's log file before replying. */
    public Script withLog(String... lines) {
      last().logLines = List.of(lines);
      return this;
    }

    /** Marks the script as the answer to the client's VERSION probe. */
    public Script forVersion() {
      this.forVersion = true;
      return this;
    }

    private Step last() {
      if (steps.isEmpty() || steps.get(steps.size() - 1).kind != Kind.REPLY) {
        throw new IllegalStateException("withStats/withLog follow a reply");
      }
      return steps.get(steps.size() - 1);
    }
  }

  /** How long a test should wait for fake processes; generous for slow machines. */
  public static Duration patience() {
    return Duration.ofSeconds(20);
  }
}

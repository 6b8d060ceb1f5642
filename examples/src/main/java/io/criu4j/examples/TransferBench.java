package io.criu4j.examples;

import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.ImageCache;
import io.criu4j.ImageProxy;
import io.criu4j.TransferReport;
import io.criu4j.internal.image.CacheHooks;
import io.criu4j.internal.image.InProcessPageSink;
import io.criu4j.internal.image.SyntheticPageClient;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.transport.tcp.TcpTransport;
import io.criu4j.transport.unix.UnixTransport;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * Measures image transfer through {@link ImageProxy} and {@link ImageCache} against a raw socket
 * copy of the same number of bytes and against a protocol-free relay doing the same job, over
 * loopback TCP, over a Unix socket and over loopback TCP with mutual TLS 1.3. The payload is what
 * a dump produces: a synthetic CRIU page-server stream (1 GiB of pages by default: OPEN2,
 * ADD_F|PE_PRESENT with page data, CLOSE) written into the proxy's {@code ps.fd} as CRIU would,
 * and 10,000 small image files (1 to 8 KiB) written into the staging directory while the pages
 * flow. The cache relays the pages into an in-process fake page server (it parses the stream and
 * answers like CRIU's) and materialises the files in its directory on tmpfs.
 *
 * <p>Three modes ({@code --modes}):
 * <ul>
 *   <li>{@code raw}: the same number of bytes from memory through one socket into memory; no
 *       files, no page server, no protocol.
 *   <li>{@code relay}: the criu4j job without criu4j's protocol ({@link RelaySides}): the same
 *       fake CRIU ({@link BenchCriu}) and the same fake page server; the page stream relayed
 *       unframed over one connection, each file read, unlinked and sent with a minimal header
 *       over a second one, and created, written and closed on the receiver. Its file relay
 *       learns the closed files from an in-process queue, which is cheaper than criu4j's
 *       inotify watcher, so this baseline errs on the fast side.
 *   <li>{@code criu4j}: {@link ImageProxy} to {@link ImageCache}.
 * </ul>
 *
 * <p>Each side runs in its own JVM, so CPU time and peak RSS are per side. Sender CPU excludes
 * the threads that play CRIU (writing the files and the page stream); receiver CPU is the whole
 * process during the transfer; both exclude the JIT compiler threads, and each side JVM (in
 * every mode) first makes a warm-up transfer of the same size as the measured one, so that the
 * file path as well as the page path runs compiled code. The fake CRIU writes its files from
 * one direct buffer with names made beforehand, so that its own garbage does not inflate the
 * sender's heap, hence RSS. Throughput counts page-stream plus file bytes over the sender's wall
 * time until the receiver acknowledged the complete set (criu4j: the cache; raw: the last byte).
 *
 * <p>Peak RSS is reported twice per side. After the warm-up, each side JVM resets its
 * high-water mark (VmHWM) to its current RSS by writing {@code 5} to
 * {@code /proc/self/clear_refs}; the VmHWM read after the measured transfer is its peak RSS
 * ("RSS" in the table, used for {@code overhead_rss_mib}). The peak over the JVM's whole life,
 * which also holds the warm-up's JIT compiler arenas, comes with it ("life"). Memory the JVM
 * took in the warm-up and kept (heap, buffer pools) is in both, since RSS does not go below it.
 *
 * <p>The {@code tls} transport measures what mutual TLS costs: the criu4j sides connect through
 * {@link io.criu4j.transport.tcp.TlsTransport} (each side presents its own certificate and
 * accepts only the other's), and the raw and relay sides use JDK {@link SSLSocket}s with the
 * same certificates (see {@link BenchTls}); the certificates come from {@code --tls-dir}. All
 * handshakes happen before the clock starts, as the plain connections' set-up does.
 *
 * <p>Prints a line per run, a table of the medians and, last,
 * {@code relay: tcp_criu4j_vs_relay=R unix_criu4j_vs_relay=R tcp_relay_vs_raw=R
 * unix_relay_vs_raw=R} (MB/s ratios of the medians),
 * {@code tls: criu4j_tls_mb_s=A criu4j_plain_mb_s=B tls_vs_plain=A/B raw_tls_mb_s=C
 * raw_plain_mb_s=D raw_tls_vs_plain=C/D} (plain: the TCP medians of the same run) and
 * {@code transfer: tcp_ratio=R unix_ratio=R cpu_s_per_gb=X overhead_rss_mib=M}: R = criu4j MB/s
 * over raw MB/s (median of the runs), X = the largest CPU seconds per GB of any criu4j side, M =
 * the largest peak RSS during the measured transfer of a criu4j side minus that of the same raw
 * side, all over TCP and Unix (see {@link TransferSummary}). A summary line whose
 * configurations were not all measured is left out.
 *
 * <p>Run by {@code scripts/bench-transfer.sh}. Needs Linux (4.0 or later for the RSS reset); no
 * root, no CRIU.
 */
@Command(name = "transfer-bench", mixinStandardHelpOptions = true,
    description = "ImageProxy -> ImageCache vs raw sockets, over TCP, Unix and TLS.")
public final class TransferBench implements Callable<Integer> {
  private static final int PAGE = 4096;
  private static final int PAGES_PER_REQUEST = 256;
  private static final String RESULT = "RESULT ";
  private static final String LISTENING = "LISTENING ";
  /** The socket buffers criu4j's Unix transport sets by default; the relay sets the same. */
  private static final int UNIX_BUFFER_BYTES = 4 * 1024 * 1024;

  /**
   * The staged files' names, made once per JVM: the fake CRIU should not add garbage (and so
   * heap growth, RSS) of its own to the sender's figures.
   */
  private String[] fileNames;

  @Option(names = "--page-mib", defaultValue = "1024", description = "MiB of pages "
      + "(default ${DEFAULT-VALUE})")
  long pageMib;

  @Option(names = "--files", defaultValue = "10000", description = "small files "
      + "(default ${DEFAULT-VALUE})")
  int files;

  @Option(names = "--runs", defaultValue = "3", description = "runs per configuration; the "
      + "median is reported (default ${DEFAULT-VALUE})")
  int runs;

  @Option(names = "--warmup-mib", defaultValue = "-1", description = "MiB of pages in the "
      + "warm-up transfer each side JVM makes before the measured one, with as many files as "
      + "--files (default: as many pages as --page-mib, so that both the page and the file "
      + "paths run compiled code in the measured transfer)")
  long warmupMib;

  @Option(names = "--transports", split = ",", defaultValue = "tcp,unix,tls", description =
      "which transports to measure: tcp, unix, tls (default ${DEFAULT-VALUE})")
  List<String> transports;

  @Option(names = "--modes", split = ",", defaultValue = "raw,relay,criu4j", description =
      "which sides to measure: raw (a socket copy of the same bytes), relay (the same job as "
      + "criu4j without its protocol), criu4j (default ${DEFAULT-VALUE}; the transfer: line "
      + "needs raw and criu4j, the relay: line all three)")
  List<String> modes;

  @Option(names = "--work-dir", description = "for sockets and directories (default: a new "
      + "directory under /dev/shm, removed at the end)")
  Path workDir;

  @Option(names = "--jvm-option", description = "extra option for the side JVMs (repeatable; "
      + "default -Xmx1g)")
  List<String> jvmOptions = new ArrayList<>(List.of("-Xmx1g"));

  @Option(names = "--tls-dir", description = "certificates for the tls transport, as "
      + "scripts/certs.sh makes them: ca.pem, sender.pem, sender-key.pem, receiver.pem, "
      + "receiver-key.pem, both certificates good for 127.0.0.1 (needed when measuring tls)")
  Path tlsDir;

  @Spec
  CommandSpec spec;

  // ---- side process options (internal)
  @Option(names = "--role", hidden = true)
  String role;

  @Option(names = "--mode", hidden = true)
  String mode;

  @Option(names = "--transport", hidden = true)
  String transport;

  @Option(names = "--address", hidden = true)
  String address;

  public static void main(String[] args) {
    System.exit(new CommandLine(new TransferBench()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    if (role != null) {
      return side();
    }
    checkOptions();
    boolean ownWork = workDir == null;
    Path work = ownWork ? Files.createTempDirectory(Paths.get("/dev/shm"), "criu4j-transfer-")
        : Files.createDirectories(workDir);
    try {
      return drive(work);
    } finally {
      if (ownWork) {
        CriuOverheadBench.deleteTree(work);
      }
    }
  }

  // ================================================================================= driver

  private static final List<String> TRANSPORTS = List.of("tcp", "unix", "tls");
  private static final List<String> MODES = List.of("raw", "relay", "criu4j");

  /** Fails before any side starts on what would only fail in a side. */
  private void checkOptions() {
    for (String t : transports) {
      if (!TRANSPORTS.contains(t)) {
        throw new ParameterException(spec.commandLine(), "unknown transport '" + t
            + "' in --transports (known: " + String.join(", ", TRANSPORTS) + ")");
      }
    }
    for (String m : modes) {
      if (!MODES.contains(m)) {
        throw new ParameterException(spec.commandLine(), "unknown mode '" + m
            + "' in --modes (known: " + String.join(", ", MODES) + ")");
      }
    }
    if (!transports.contains("tls")) {
      return;
    }
    if (tlsDir == null) {
      throw new ParameterException(spec.commandLine(), "the tls transport needs --tls-dir DIR "
          + "with ca.pem, sender.pem, sender-key.pem, receiver.pem and receiver-key.pem "
          + "(scripts/certs.sh init DIR; scripts/certs.sh issue DIR sender 127.0.0.1 localhost; "
          + "the same for receiver; scripts/bench-transfer.sh does this), or leave tls out "
          + "of --transports");
    }
    List<Path> missing = BenchTls.missingFiles(tlsDir);
    if (!missing.isEmpty()) {
      throw new ParameterException(spec.commandLine(), "--tls-dir " + tlsDir + " lacks "
          + missing.stream().map(p -> p.getFileName().toString()).toList()
          + " (make them with scripts/certs.sh init/issue)");
    }
  }

  /**
   * One side's figures: {@code hwmKib} is the peak RSS during the measured transfer (VmHWM,
   * reset after the warm-up), {@code lifeHwmKib} the peak over the JVM's whole life, warm-up
   * and start-up included.
   */
  record Side(long bytes, long wallNanos, long cpuNanos, long hwmKib, long lifeHwmKib) {
    /** Figures whose whole-life peak is not known yet: taken to be the measured one. */
    Side(long bytes, long wallNanos, long cpuNanos, long hwmKib) {
      this(bytes, wallNanos, cpuNanos, hwmKib, hwmKib);
    }

    static Side parse(String line) {
      Map<String, Long> v = new HashMap<>();
      for (String kv : line.substring(RESULT.length()).trim().split(" ")) {
        String[] p = kv.split("=");
        v.put(p[0], Long.parseLong(p[1]));
      }
      long hwm = v.get("hwm_kib");
      return new Side(v.get("bytes"), v.get("wall_ns"), v.get("cpu_ns"), hwm,
          v.getOrDefault("life_hwm_kib", hwm));
    }

    /** The result line a side prints, which {@link #parse} reads. */
    String resultLine() {
      return RESULT + "bytes=" + bytes + " wall_ns=" + wallNanos + " cpu_ns=" + cpuNanos
          + " hwm_kib=" + hwmKib + " life_hwm_kib=" + lifeHwmKib;
    }

    Side withLifeHwmKib(long kib) {
      return new Side(bytes, wallNanos, cpuNanos, hwmKib, kib);
    }

    double cpuSecondsPerGb() {
      return cpuNanos / 1e9 / (bytes / 1e9);
    }
  }

  /** One run: both sides. */
  record Run(Side sender, Side receiver) {
    double mbPerSecond() {
      return sender.bytes() / 1e6 / (sender.wallNanos() / 1e9);
    }
  }

  private int drive(Path work) throws Exception {
    long pages = pageMib * 1024 * 1024 / PAGE;
    long pageStream = new SyntheticPageClient(24, PAGE).streamBytes(pages, PAGES_PER_REQUEST);
    System.out.printf(Locale.ROOT, "transfer bench: %d MiB of pages (%d stream bytes) + %d "
        + "files of 1-8 KiB, %d runs per configuration, side JVMs %s%n", pageMib, pageStream,
        files, runs, jvmOptions);
    Map<String, Run> medians = new HashMap<>();
    for (String t : transports) {
      for (String m : modes) {
        List<Run> all = new ArrayList<>();
        for (int i = 0; i < runs; i++) {
          Run r = runOnce(work, t, m, i);
          all.add(r);
          System.out.println(TransferSummary.runLine(t, m, i, r));
        }
        all.sort((a, b) -> Double.compare(a.mbPerSecond(), b.mbPerSecond()));
        medians.put(t + "/" + m, all.get(all.size() / 2));
      }
    }
    // A partial run (--transports, --modes) leaves out the summary lines it cannot make.
    for (String line : TransferSummary.lines(medians)) {
      System.out.println(line);
    }
    return 0;
  }

  private Run runOnce(Path work, String t, String m, int i) throws Exception {
    Path dir = Files.createDirectories(work.resolve(t + "-" + m + "-" + i));
    String listen = t.equals("unix") ? "unix://" + dir.resolve("s.sock").toAbsolutePath()
        : t + "://127.0.0.1:0";
    Process receiver = startSide("receiver", m, t, listen, dir);
    Process sender = null;
    try {
      BufferedReader rOut = new BufferedReader(new InputStreamReader(receiver.getInputStream(),
          StandardCharsets.UTF_8));
      String actual = null;
      String line;
      while ((line = rOut.readLine()) != null) {
        if (line.startsWith(LISTENING)) {
          actual = line.substring(LISTENING.length()).trim();
          break;
        }
        System.out.println("    receiver: " + line);
      }
      if (actual == null) {
        throw new IllegalStateException("receiver exited before listening: " + describe(
            receiver));
      }
      // The receiver's output is read while the sender runs, so that it never blocks on a full
      // pipe.
      AtomicReference<String> receiverLine = new AtomicReference<>();
      Thread drain = new Thread(() -> {
        try {
          String l;
          while ((l = rOut.readLine()) != null) {
            if (l.startsWith(RESULT)) {
              receiverLine.set(l);
            } else {
              System.out.println("    receiver: " + l);
            }
          }
        } catch (IOException e) {
          System.out.println("    receiver: output unreadable: " + e);
        }
      }, "receiver-output");
      drain.start();
      sender = startSide("sender", m, t, actual, dir);
      String senderResult = resultOf(sender, "sender");
      drain.join(TimeUnit.SECONDS.toMillis(60));
      String receiverResult = receiverLine.get();
      if (!receiver.waitFor(60, TimeUnit.SECONDS) || receiver.exitValue() != 0
          || receiverResult == null) {
        throw new IllegalStateException("receiver failed: " + describe(receiver));
      }
      return new Run(Side.parse(senderResult), Side.parse(receiverResult));
    } finally {
      receiver.destroyForcibly();
      if (sender != null) {
        sender.destroyForcibly();
      }
      CriuOverheadBench.deleteTree(dir);
    }
  }

  private Process startSide(String r, String m, String t, String addr, Path dir)
      throws IOException {
    ProcessBuilder pb = new ProcessBuilder(sideCommand(r, m, t, addr, dir))
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectError(ProcessBuilder.Redirect.INHERIT);
    return pb.start();
  }

  /** The command line of a side JVM: this program with the driver's settings and a role. */
  List<String> sideCommand(String r, String m, String t, String addr, Path dir) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvmOptions);
    cmd.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn");
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"),
        TransferBench.class.getName(), "--role", r, "--mode", m, "--transport", t,
        "--address", addr, "--work-dir", dir.toString(), "--page-mib", String.valueOf(pageMib),
        "--files", String.valueOf(files), "--warmup-mib", String.valueOf(warmupMib)));
    if (tlsDir != null) {
      cmd.addAll(List.of("--tls-dir", tlsDir.toString()));
    }
    return cmd;
  }

  private static String resultOf(Process p, String what) throws Exception {
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(),
        StandardCharsets.UTF_8));
    String result = null;
    String line;
    while ((line = out.readLine()) != null) {
      if (line.startsWith(RESULT)) {
        result = line;
      } else {
        System.out.println("    " + what + ": " + line);
      }
    }
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0 || result == null) {
      throw new IllegalStateException(what + " failed: " + describe(p));
    }
    return result;
  }

  private static String describe(Process p) {
    return p.isAlive() ? "still running" : "exit " + p.exitValue();
  }

  // ================================================================================= sides

  private int side() throws Exception {
    if (role.equals("receiver")) {
      try (AutoCloseable l = listen()) {
        return rounds();
      }
    }
    return rounds();
  }

  /** The receiver's listener: a criu4j {@link Listener}, or a raw server socket. */
  private Object listener;

  private AutoCloseable listen() throws Exception {
    String shown;
    if (mode.equals("criu4j")) { // raw and relay: the same plain or TLS server socket
      Listener l = criu4jTransport().listen(URI.create(address));
      listener = l;
      shown = l.address().toString();
    } else if (transport.equals("tls")) {
      SSLServerSocket server = BenchTls.rawServer(tlsDir, role, tcpAddress(address));
      listener = server;
      shown = "tls://127.0.0.1:" + server.getLocalPort();
    } else if (transport.equals("tcp")) {
      ServerSocketChannel server = ServerSocketChannel.open();
      server.bind(tcpAddress(address));
      listener = server;
      shown = "tcp://127.0.0.1:" + ((InetSocketAddress) server.getLocalAddress()).getPort();
    } else {
      ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
      server.bind(UnixDomainSocketAddress.of(URI.create(address).getPath()));
      listener = server;
      shown = address;
    }
    System.out.println(LISTENING + shown);
    System.out.flush();
    return (AutoCloseable) listener;
  }

  private Transport criu4jTransport() {
    return switch (transport) {
      case "tcp" -> TcpTransport.create();
      case "unix" -> UnixTransport.create();
      case "tls" -> BenchTls.transport(tlsDir, role);
      default -> throw new IllegalArgumentException("unknown transport: " + transport);
    };
  }

  private int rounds() throws Exception {
    Side result = null;
    long lifeHwmBeforeReset = 0;
    fileNames = new String[files];
    for (int i = 0; i < files; i++) {
      String digits = Integer.toString(i); // not String.format: its garbage is megabytes
      fileNames[i] = "file-" + "00000".substring(Math.min(5, digits.length())) + digits + ".img";
    }
    // A warm-up transfer first, so the measured one runs compiled code, not the interpreter.
    for (int round = 0; round < 2; round++) {
      boolean warmup = round == 0;
      if (!warmup) {
        // The measured transfer's own peak: what the warm-up's peak held beyond the RSS left
        // now (memory the JIT compiler freed since, for one) stays in the whole-life peak only.
        lifeHwmBeforeReset = hwmKib();
        resetHwm();
      }
      long mib = warmup && warmupMib >= 0 ? warmupMib : pageMib;
      int n = files;
      long pages = mib * 1024 * 1024 / PAGE;
      long pageStream = new SyntheticPageClient(24, PAGE).streamBytes(pages, PAGES_PER_REQUEST);
      long[] sizes = fileSizes(n);
      long fileBytes = 0;
      for (long s : sizes) {
        fileBytes += s;
      }
      long total = pageStream + fileBytes;
      Path dir = Files.createDirectories(workDir.resolve(role + "-" + round));
      boolean sender = role.equals("sender");
      if (mode.equals("relay")) {
        // Connection 1 carries the pages, connection 2 the files; accepted in that order.
        try (RelaySides.Link pagesLink = sender ? relayConnect() : relayAccept();
            RelaySides.Link filesLink = sender ? relayConnect() : relayAccept()) {
          result = sender ? RelaySides.sender(pagesLink, filesLink, pages, 24, PAGE,
              PAGES_PER_REQUEST, fileNames, sizes, total, dir)
              : RelaySides.receiver(pagesLink, filesLink, n, 24, PAGE, total, dir);
        }
      } else if (mode.equals("raw") && transport.equals("tls")) {
        result = sender ? rawTlsSender(total) : rawTlsReceiver(total);
      } else if (mode.equals("raw")) {
        result = sender ? rawSender(transport.equals("tcp"), total) : rawReceiver(total);
      } else {
        Transport tr = criu4jTransport();
        result = role.equals("sender") ? proxySender(tr, pages, sizes, total, dir)
            : cacheReceiver(total, n, dir);
      }
    }
    result = result.withLifeHwmKib(Math.max(lifeHwmBeforeReset, hwmKib()));
    System.out.println(result.resultLine());
    System.out.flush();
    return 0;
  }

  private static long[] fileSizes(int n) {
    Random random = new Random(7);
    long[] sizes = new long[n];
    for (int i = 0; i < n; i++) {
      sizes[i] = 1024 + random.nextInt(7 * 1024 + 1);
    }
    return sizes;
  }

  private Side proxySender(Transport tr, long pages, long[] sizes, long total, Path dir)
      throws Exception {
    try (ImageProxy proxy = ImageProxy.builder(tr.connect(URI.create(address)))
        .criuVersion(CriuVersion.of(4, 1, 1)).stagingParent(dir).start()) {
      Path staging = proxy.stagingDir();
      int fd = proxy.configure(CriuOptions.DEFAULTS).pageServer().fd();
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      BenchCriu criu = BenchCriu.start(fd, 24, PAGE, pages, PAGES_PER_REQUEST, staging,
          fileNames, sizes, null);
      criu.joinPages();
      long tPages = System.nanoTime() - t0;
      criu.joinFiles();
      long tFiles = System.nanoTime() - t0;
      if (criu.failure() != null) {
        throw new IllegalStateException("fake CRIU failed", criu.failure());
      }
      TransferReport report = proxy.finish();
      long wall = System.nanoTime() - t0;
      if (System.getenv("CRIU4J_BENCH_DEBUG") != null) {
        System.err.printf(Locale.ROOT, "DEBUG fake CRIU: pages done at %d ms, files at %d ms; "
            + "finish() returned at %d ms%n", tPages / 1000000,
            tFiles / 1000000, wall / 1000000);
      }
      long cpu = cpuNanos() - cpu0 - criu.cpuNanos();
      debugThreads();
      if (report.files() != sizes.length) {
        throw new IllegalStateException("sent " + report.files() + " files");
      }
      return new Side(total, wall, cpu, hwmKib());
    }
  }

  private Side cacheReceiver(long total, int n, Path dir) throws Exception {
    Connection c = ((Listener) listener).accept(Duration.ofSeconds(60));
    long cpu0 = cpuNanos();
    long t0 = System.nanoTime();
    ImageCache.Builder b = ImageCache.builder(c).directory(dir.resolve("cache"));
    CacheHooks.pageSink(b, InProcessPageSink.factory(24, PAGE));
    try (ImageCache cache = b.start()) {
      TransferReport r = cache.awaitComplete(Duration.ofMinutes(5));
      long wall = System.nanoTime() - t0;
      long cpu = cpuNanos() - cpu0;
      debugThreads();
      if (r.files() != n) {
        throw new IllegalStateException("received " + r.files() + " files");
      }
      return new Side(total, wall, cpu, hwmKib());
    }
  }

  private Side rawSender(boolean tcp, long total) throws Exception {
    try (SocketChannel ch = tcp ? SocketChannel.open(tcpAddress(address))
        : SocketChannel.open(UnixDomainSocketAddress.of(URI.create(address).getPath()))) {
      if (tcp) {
        ch.socket().setTcpNoDelay(true);
      }
      ByteBuffer buf = ByteBuffer.allocateDirect(1024 * 1024);
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      for (long left = total; left > 0; ) {
        buf.clear().limit((int) Math.min(buf.capacity(), left));
        while (buf.hasRemaining()) {
          left -= ch.write(buf);
        }
      }
      ByteBuffer ack = ByteBuffer.allocate(1);
      while (ack.hasRemaining() && ch.read(ack) >= 0) {
        // the receiver's acknowledgement of the last byte
      }
      return new Side(total, System.nanoTime() - t0, cpuNanos() - cpu0, hwmKib());
    }
  }

  private Side rawReceiver(long total) throws Exception {
    try (SocketChannel ch = ((ServerSocketChannel) listener).accept()) {
      ByteBuffer buf = ByteBuffer.allocateDirect(1024 * 1024);
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      long got = 0;
      while (got < total) {
        buf.clear();
        int n = ch.read(buf);
        if (n < 0) {
          throw new IOException("sender ended after " + got + " of " + total + " bytes");
        }
        got += n;
      }
      ch.write(ByteBuffer.wrap(new byte[] {1}));
      return new Side(total, System.nanoTime() - t0, cpuNanos() - cpu0, hwmKib());
    }
  }

  /**
   * The raw copy over TLS: the same bytes through a JDK {@link SSLSocket}'s streams, with the
   * handshake done before the clock starts (criu4j's TLS connect also returns after it).
   */
  private Side rawTlsSender(long total) throws Exception {
    try (SSLSocket socket = BenchTls.rawClient(tlsDir, role, tcpAddress(address))) {
      socket.setTcpNoDelay(true);
      socket.startHandshake();
      OutputStream out = socket.getOutputStream();
      InputStream in = socket.getInputStream();
      byte[] buf = new byte[1024 * 1024];
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      for (long left = total; left > 0; ) {
        int n = (int) Math.min(buf.length, left);
        out.write(buf, 0, n);
        left -= n;
      }
      out.flush();
      if (in.read() < 0) {
        throw new IOException("receiver closed without acknowledging the last byte");
      }
      return new Side(total, System.nanoTime() - t0, cpuNanos() - cpu0, hwmKib());
    }
  }

  private Side rawTlsReceiver(long total) throws Exception {
    try (SSLSocket socket = (SSLSocket) ((SSLServerSocket) listener).accept()) {
      socket.startHandshake();
      InputStream in = socket.getInputStream();
      OutputStream out = socket.getOutputStream();
      byte[] buf = new byte[1024 * 1024];
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      long got = 0;
      while (got < total) {
        int n = in.read(buf);
        if (n < 0) {
          throw new IOException("sender ended after " + got + " of " + total + " bytes");
        }
        got += n;
      }
      out.write(1);
      out.flush();
      return new Side(total, System.nanoTime() - t0, cpuNanos() - cpu0, hwmKib());
    }
  }

  /**
   * A connection of the relay mode, connected (and handshaken) before the clock starts, with
   * the options criu4j's transports set: {@code TCP_NODELAY} over TCP, 4 MiB socket buffers
   * over Unix.
   */
  private RelaySides.Link relayConnect() throws IOException {
    if (transport.equals("tls")) {
      return tlsLink(BenchTls.rawClient(tlsDir, role, tcpAddress(address)));
    }
    SocketChannel ch = transport.equals("tcp") ? SocketChannel.open(tcpAddress(address))
        : SocketChannel.open(UnixDomainSocketAddress.of(URI.create(address).getPath()));
    return RelaySides.of(relayOptions(ch));
  }

  /** A relay link over {@code socket}, handshaken; closes the socket if that fails. */
  private static RelaySides.Link tlsLink(SSLSocket socket) throws IOException {
    try {
      socket.setTcpNoDelay(true);
      socket.startHandshake();
      return RelaySides.of(socket);
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
  }

  /** The receiving end of {@link #relayConnect()}: connections are accepted in their order. */
  private RelaySides.Link relayAccept() throws IOException {
    if (transport.equals("tls")) {
      return tlsLink((SSLSocket) ((SSLServerSocket) listener).accept());
    }
    return RelaySides.of(relayOptions(((ServerSocketChannel) listener).accept()));
  }

  private SocketChannel relayOptions(SocketChannel ch) throws IOException {
    try {
      if (transport.equals("tcp")) {
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
      } else {
        ch.setOption(StandardSocketOptions.SO_SNDBUF, UNIX_BUFFER_BYTES);
        ch.setOption(StandardSocketOptions.SO_RCVBUF, UNIX_BUFFER_BYTES);
      }
      return ch;
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  private void debugThreads() throws IOException {
    if (System.getenv("CRIU4J_BENCH_DEBUG") != null) {
      ThreadMXBean mx = ManagementFactory.getThreadMXBean();
      for (long id : mx.getAllThreadIds()) {
        java.lang.management.ThreadInfo ti = mx.getThreadInfo(id);
        long ns = mx.getThreadCpuTime(id);
        if (ti != null && ns >= 20_000_000L) {
          System.err.println("DEBUG " + role + " thread " + ti.getThreadName() + " "
              + ns / 1_000_000 + " ms");
        }
      }
      for (java.lang.management.BufferPoolMXBean bp
          : ManagementFactory.getPlatformMXBeans(java.lang.management.BufferPoolMXBean.class)) {
        System.err.println("DEBUG " + role + " buffers " + bp.getName() + " "
            + bp.getTotalCapacity() / 1024 / 1024 + " MiB");
      }
      for (java.lang.management.MemoryPoolMXBean mp
          : ManagementFactory.getMemoryPoolMXBeans()) {
        System.err.println("DEBUG " + role + " pool " + mp.getName() + " peak "
            + mp.getPeakUsage().getCommitted() / 1024 / 1024 + " MiB committed");
      }
      System.err.println("DEBUG " + role + " compiler " + compilerThreadNanos() / 1_000_000
          + " ms");
    }
  }

  private static InetSocketAddress tcpAddress(String uri) throws IOException {
    URI u = URI.create(uri);
    return new InetSocketAddress(InetAddress.getByName(u.getHost()), u.getPort());
  }

  /**
   * CPU time of this process, without the JIT compiler threads (their work is JVM warm-up, not
   * transfer; it shrinks with longer runs). Threads that ended still count (process total).
   */
  static long cpuNanos() throws IOException {
    long process = ((com.sun.management.OperatingSystemMXBean)
        ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    return process - compilerThreadNanos();
  }

  private static long compilerThreadNanos() throws IOException {
    long ticks = 0;
    try (var tasks = Files.list(Paths.get("/proc/self/task"))) {
      for (Path task : tasks.toList()) {
        String stat;
        try {
          stat = Files.readString(task.resolve("stat"));
        } catch (IOException gone) {
          continue;
        }
        String comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        if (comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre")) {
          String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
          ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime
        }
      }
    }
    return ticks * 10_000_000L; // USER_HZ = 100
  }

  static long hwmKib() throws IOException {
    return statusKib("VmHWM:");
  }

  private static long statusKib(String field) throws IOException {
    for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
      if (line.startsWith(field)) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }

  /**
   * Resets this process's VmHWM to its current RSS (Linux 4.0 and later: "5" into
   * {@code /proc/self/clear_refs}, which touches nothing else), so that the next reading is the
   * peak since now.
   */
  private void resetHwm() throws IOException {
    long before = hwmKib();
    try {
      Files.writeString(Paths.get("/proc/self/clear_refs"), "5");
    } catch (IOException e) {
      throw new IOException("cannot reset the peak RSS through /proc/self/clear_refs (needs "
          + "Linux 4.0 or later): " + e, e);
    }
    if (System.getenv("CRIU4J_BENCH_DEBUG") != null) {
      System.err.println("DEBUG " + role + " VmHWM reset: " + before + " kB before, "
          + hwmKib() + " kB after (VmRSS " + statusKib("VmRSS:") + " kB)");
    }
  }
}

package io.criu4j;

import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.internal.image.OwnedDirs;
import io.criu4j.internal.image.PageStreamParser;
import io.criu4j.internal.image.StagingWatcher;
import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.SplicePipe;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.internal.wire.ErrorCode;
import io.criu4j.internal.wire.MuxConfig;
import io.criu4j.internal.wire.MuxConnection;
import io.criu4j.internal.wire.OutboundFile;
import io.criu4j.internal.wire.Tunnel;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source side of an image transfer: turns what a CRIU dump produces into streams on one
 * transport {@link Connection} to an {@link ImageCache}. CRIU sends its pages to a socket this
 * proxy hands it ({@code ps.fd}); the proxy relays that page-server stream through a tunnel, in
 * both directions, and counts the pages. CRIU writes the other image files into a staging
 * directory on tmpfs that the proxy owns; the proxy ships each file as soon as CRIU closes it
 * (several at once), and deletes it from staging once sent.
 *
 * <pre>{@code
 * try (ImageProxy proxy = ImageProxy.builder(connection).criuVersion(criu.version()).start()) {
 *   criu.dump(proxy.stagingDir(), proxy.configure(options), new Notifier() {
 *     public void postDump() throws Exception {
 *       TransferReport report = proxy.finish(); // the destination has the complete set
 *     }
 *   });
 * }
 * }</pre>
 *
 * <p>For tests, connect it to an {@code ImageCache} through the in-memory transport
 * ({@link io.criu4j.spi.Transports#inMemory()}), and play CRIU's part by writing a page-server
 * stream into the descriptor {@link #configure} puts into {@link CriuOptions#pageServer()}.
 *
 * <p><b>Failures.</b> Any failure (of the connection, of the peer, a broken page stream, a file
 * that cannot be read) fails the transfer: the peer is told with an error frame, and
 * {@link #finish()} throws a {@link MigrationException} naming it ({@link ProtocolException} for
 * protocol violations reported by either side, {@link TransportException} for a broken or stalled
 * connection). Nothing waits forever on a dead or stalled peer.
 *
 * <p><b>Ownership.</b> The proxy owns the connection from {@link Builder#start()} on (also if
 * {@code start()} fails), the staging directory and its work directory (created by the proxy,
 * removed by {@link #close()}), both ends of the page socketpair, and its threads (named daemon
 * platform threads). {@link #close()} frees all of it; it is idempotent and never throws.
 *
 * <p>Thread-safe. {@link #progress()} may be called from any thread at any time.
 *
 * @since 0.1
 */
public final class ImageProxy implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ImageProxy.class);
  private static final AtomicLong IDS = new AtomicLong();
  private static final int RELAY_BUFFER_BYTES = 1024 * 1024;
  /** Page data of a request at least this large is spliced, where the connection allows. */
  private static final int SPLICE_MIN_BYTES = 64 * 1024;
  /** SO_SNDBUF of CRIU's end of the page socketpair (capped by {@code net.core.wmem_max}). */
  private static final int PAGE_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
  /** The pipe for splicing (the kernel may grant less: {@code fs.pipe-max-size}). */
  private static final int SPLICE_PIPE_BYTES = 1024 * 1024;
  private static final Duration TAKE_POLL = Duration.ofMillis(50);
  /** Name prefix of staging directories, followed by the owner's pid and start time. */
  static final String STAGING_PREFIX = "criu4j-proxy-";
  /** The name of the page tunnel; {@link ImageCache} expects it. */
  static final String PAGE_TUNNEL = "pages";
  private static final java.util.Set<StandardOpenOption> READ = java.util.Set.of(
      StandardOpenOption.READ);

  private final String label;
  private final MuxConnection mux;
  private final Path root;
  private final Path staging;
  private final Path work;
  private final UnixSocket criuEnd;
  private final UnixSocket relayEnd;
  private final Tunnel tunnel;
  private final StagingWatcher watcher;
  private final ThreadPoolExecutor senders;
  private final Thread uplink;
  private final Thread downlink;
  private final int senderThreads;
  private final int headerSize;
  private final int pageSize;
  private final Duration finishTimeout;
  private final long startNanos = System.nanoTime();

  private final Object lock = new Object();
  // guarded by lock
  private MigrationException failure;
  private boolean uplinkDone;
  private boolean downlinkDone;
  private long repliesExpected;
  private long repliesDelivered;
  private int pendingFiles;
  /** Sender threads still taking names from the watcher. */
  private int takers;
  private boolean finishing;
  private boolean closed;
  private TransferReport report;

  private volatile boolean stopDispatch;
  private final AtomicInteger filesSent = new AtomicInteger();
  private final AtomicLong fileBytesSent = new AtomicLong();
  /** Written by the uplink thread only. */
  private volatile long pages;
  private volatile long pageStreamBytes;
  /** Whether the uplink splices page data (set by the uplink thread once it knows). */
  private volatile boolean splicing;

  private ImageProxy(Builder b, String label, MuxConnection mux, Path root, Path staging,
      Path work, UnixSocket.Pair pair, Tunnel tunnel, StagingWatcher watcher) {
    this.label = label;
    this.mux = mux;
    this.root = root;
    this.staging = staging;
    this.work = work;
    this.criuEnd = pair.first();
    this.relayEnd = pair.second();
    this.tunnel = tunnel;
    this.watcher = watcher;
    this.headerSize = b.criuVersion.pageServerHeaderSize();
    this.pageSize = b.pageSize;
    this.finishTimeout = b.finishTimeout;
    AtomicInteger n = new AtomicInteger();
    this.senders = new ThreadPoolExecutor(b.senderThreads, b.senderThreads, 10, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), r -> newThread("sender-" + n.incrementAndGet(), r));
    senders.allowCoreThreadTimeOut(true);
    this.uplink = newThread("pages-up", this::uplinkLoop);
    this.downlink = newThread("pages-down", this::downlinkLoop);
    this.senderThreads = b.senderThreads;
  }

  /**
   * A builder for a proxy that sends over {@code connection}. The proxy takes ownership of the
   * connection when {@link Builder#start()} is called.
   */
  public static Builder builder(Connection connection) {
    return new Builder(Objects.requireNonNull(connection, "connection"));
  }

  private Thread newThread(String what, Runnable body) {
    Thread t = new Thread(body, "criu4j-" + label + "-" + what);
    t.setDaemon(true);
    return t;
  }

  private void startThreads() {
    uplink.start();
    downlink.start();
    // Each sender thread takes names from the watcher and ships them itself: no handoff per file.
    synchronized (lock) {
      takers = senderThreads;
    }
    for (int i = 0; i < senderThreads; i++) {
      senders.execute(this::takeLoop);
    }
  }

  /**
   * The directory CRIU writes its image files into: pass it as the images directory of the dump.
   * Owned by the proxy, removed by {@link #close()}.
   */
  public Path stagingDir() {
    return staging;
  }

  /**
   * Returns {@code options} with the page server set to this proxy's socket ({@code ps.fd}; CRIU
   * gets a copy, the proxy keeps its own) and the work directory (CRIU's log and statistics) set
   * to a directory of the proxy outside the staging directory, so that only images get shipped.
   */
  public CriuOptions configure(CriuOptions options) {
    Objects.requireNonNull(options, "options");
    return options.toBuilder()
        .pageServer(PageServerTarget.fd(criuEnd.fd().get()))
        .workDir(work)
        .build();
  }

  /** What was sent so far: complete files, and pages that went into the tunnel. */
  public TransferReport progress() {
    return new TransferReport(filesSent.get(), fileBytesSent.get(), pages, pages * pageSize,
        Duration.ofNanos(System.nanoTime() - startNanos));
  }

  /**
   * Completes the transfer once CRIU's images are complete (call it at post-dump, or after the
   * dump returned): waits until CRIU ended its page stream ({@code PS_IOV_CLOSE}) and got its
   * answer, ships the staged files not shipped yet, ends the image and waits for the cache to
   * acknowledge it, which it does once it stored every file with a good checksum and its page
   * server finished. Then ends the connection cleanly.
   *
   * @return the totals sent
   * @throws MigrationException if the transfer failed, here or at the cache, or CRIU did not end
   *     its page stream within the finish timeout
   * @throws IllegalStateException if called twice or after {@link #close()}
   */
  public TransferReport finish() throws MigrationException {
    synchronized (lock) {
      if (closed) {
        throw new IllegalStateException(label + " is closed");
      }
      if (finishing) {
        throw new IllegalStateException("finish() was already called on " + label);
      }
      finishing = true;
    }
    long deadline = System.nanoTime() + finishTimeout.toNanos();
    synchronized (lock) {
      while (!(uplinkDone && repliesDelivered >= repliesExpected)) {
        awaitLocked(deadline, () -> "CRIU did not end its page stream within " + finishTimeout
            + " (" + pageStreamBytes + " bytes so far, end seen: " + uplinkDone
            + "); was the dump given configure(options)?");
      }
      throwIfFailedLocked();
    }
    stopDispatch = true;
    watcher.stopWaiting();
    synchronized (lock) {
      while (takers > 0) {
        awaitLocked(0, null);
      }
    }
    List<String> rest = watcher.drain();
    for (String name : rest) {
      submit(name);
    }
    synchronized (lock) {
      while (pendingFiles > 0) {
        awaitLocked(0, null);
      }
      throwIfFailedLocked();
    }
    try {
      mux.endImage();
    } catch (MigrationException | RuntimeException e) {
      fail("ending the image", e);
      synchronized (lock) {
        throwIfFailedLocked();
      }
      throw e;
    }
    synchronized (lock) {
      while (!downlinkDone) {
        awaitLocked(deadline, () -> "the destination page server did not finish within "
            + finishTimeout);
      }
      throwIfFailedLocked();
      report = progress();
    }
    mux.close(); // GOODBYE: the image is complete, nothing more will be sent
    log.debug("{}: finished, {}", label, report);
    return report;
  }

  private void awaitLocked(long deadline, java.util.function.Supplier<String> timeoutMessage)
      throws MigrationException {
    throwIfFailedLocked();
    if (closed) {
      throw new IllegalStateException(label + " was closed");
    }
    try {
      if (deadline == 0) {
        lock.wait();
      } else {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          MigrationException e = new TransportException(label + ": " + timeoutMessage.get());
          failLocked(e);
          mux.sendError(ErrorCode.CANCELLED, e.getMessage());
          relayEnd.shutdown();
          throw e;
        }
        TimeUnit.NANOSECONDS.timedWait(lock, left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException(label + ": interrupted", e);
    }
  }

  private void throwIfFailedLocked() throws MigrationException {
    if (failure != null) {
      throw failure;
    }
  }

  // ------------------------------------------------------------------------------ page tunnel

  /**
   * CRIU -> tunnel: relays the page stream, parsing it, until PS_IOV_CLOSE.
   *
   * <p>Where the connection is a plain socket ({@link Tunnel#canSplice()}), page data of large
   * requests does not pass through this process: only the headers are read, and the data moves
   * from CRIU's socket through a pipe into the connection's socket with {@code splice(2)}. The
   * parser then skips it unseen. Otherwise (TLS, in-memory) everything is read and copied.
   */
  private void uplinkLoop() {
    ByteBuffer buf = ByteBuffer.allocateDirect(RELAY_BUFFER_BYTES);
    long[] lastData = {0};
    PageStreamParser parser = new PageStreamParser(headerSize, pageSize,
        java.nio.ByteOrder.nativeOrder(), (command, flags, nrPages, vaddr, dstId, offset) -> {
          if (command == PageStreamParser.PS_IOV_ADD
              || (command == PageStreamParser.PS_IOV_ADD_F
                  && (flags & PageStreamParser.PE_PRESENT) != 0)) {
            pages += nrPages;
            lastData[0] = nrPages * pageSize;
          }
        });
    SplicePipe pipe = null;
    try {
      pipe = openPipe();
      splicing = pipe != null;
      while (true) {
        buf.clear();
        if (pipe != null && lastData[0] >= SPLICE_MIN_BYTES) {
          // Large requests come in a row: read up to the next header's end, not into its data.
          long upTo = parser.payloadLeft() + parser.headerBytesLeft();
          buf.limit((int) Math.min(buf.capacity(), Math.max(1, upTo)));
        }
        int n = relayEnd.read(buf);
        if (n < 0) {
          if (isClosed()) {
            return;
          }
          throw new ProtocolException("the page-server socket ended without PS_IOV_CLOSE after "
              + parser.offset() + " bytes");
        }
        buf.flip();
        parser.feed(buf.duplicate());
        pageStreamBytes = parser.offset();
        if (pipe != null && parser.payloadLeft() >= SPLICE_MIN_BYTES) {
          if (buf.remaining() > MuxConnection.SPLICE_PREFIX_MAX) {
            writeAll(buf);
          }
          if (!splicePayload(parser, pipe, buf)) {
            return; // closed meanwhile
          }
        } else {
          writeAll(buf);
        }
        if (parser.closeSeen()) {
          break;
        }
      }
      tunnel.shutdownOutput();
      synchronized (lock) {
        uplinkDone = true;
        repliesExpected = parser.stats().replyBytes();
        lock.notifyAll();
      }
    } catch (IOException | RuntimeException e) {
      fail("relaying CRIU's page stream", e);
    } finally {
      if (pipe != null) {
        pipe.close();
      }
    }
  }

  /** Whether page data is spliced rather than copied (known once the page stream started). */
  boolean splicesPages() {
    return splicing;
  }

  /** A pipe for splicing page data, or null if the tunnel cannot splice (then it copies). */
  private SplicePipe openPipe() {
    if (!tunnel.canSplice()) {
      return null;
    }
    try {
      return SplicePipe.open(SPLICE_PIPE_BYTES);
    } catch (MigrationException e) {
      log.debug("{}: no pipe for splicing page data, copying it: {}", label, e.getMessage());
      return null;
    }
  }

  /**
   * Moves the rest of the current request's page data from CRIU's socket into the tunnel with
   * {@code splice(2)}, after {@code prefix} (bytes read but not yet sent, such as the header).
   *
   * @return false if CRIU's socket ended because the proxy was closed
   */
  private boolean splicePayload(PageStreamParser parser, SplicePipe pipe, ByteBuffer prefix)
      throws IOException {
    int fd = relayEnd.fd().get();
    while (parser.payloadLeft() > 0) {
      int want = (int) Math.min(parser.payloadLeft(), pipe.free());
      int got = pipe.fillFrom(fd, want, true);
      if (got < 0) {
        if (isClosed()) {
          return false;
        }
        throw new ProtocolException("the page-server socket ended inside page data, after "
            + parser.offset() + " bytes");
      }
      while (got < want) { // take what else is there, without waiting
        int more = pipe.fillFrom(fd, want - got, false);
        if (more <= 0) {
          break;
        }
        got += more;
      }
      parser.skipPayload(got);
      pageStreamBytes = parser.offset();
      while (pipe.buffered() > 0) {
        tunnel.writeSpliced(prefix, pipe, pipe.buffered());
      }
    }
    return true;
  }

  private void writeAll(ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      tunnel.write(buf);
    }
  }

  /** Tunnel -> CRIU: the page server's answers, until the destination ends the tunnel. */
  private void downlinkLoop() {
    WritableByteChannel toCriu = new WritableByteChannel() {
      @Override
      public int write(ByteBuffer src) throws IOException {
        int n = src.remaining();
        while (src.hasRemaining()) {
          relayEnd.write(src);
        }
        synchronized (lock) {
          repliesDelivered += n;
          lock.notifyAll();
        }
        return n;
      }

      @Override
      public boolean isOpen() {
        return true;
      }

      @Override
      public void close() {}
    };
    try {
      tunnel.transferTo(toCriu);
      synchronized (lock) {
        downlinkDone = true;
        lock.notifyAll();
      }
    } catch (IOException | RuntimeException e) {
      fail("relaying the page server's answers", e);
    }
  }

  // ------------------------------------------------------------------------------ files

  /** Ships the files the watcher reports until {@link #finish()} stops it. */
  private void takeLoop() {
    try {
      while (!isClosed()) {
        String name = watcher.take(TAKE_POLL);
        if (name == null) {
          if (stopDispatch) {
            return; // the rest is drained by finish()
          }
          continue;
        }
        synchronized (lock) {
          if (closed || failure != null) {
            return;
          }
          pendingFiles++;
        }
        ship(name);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (MigrationException | RuntimeException e) {
      fail("watching the staging directory", e);
    } finally {
      synchronized (lock) {
        takers--;
        lock.notifyAll();
      }
    }
  }

  private void submit(String name) {
    synchronized (lock) {
      if (closed || failure != null) {
        return;
      }
      pendingFiles++;
    }
    try {
      senders.execute(() -> ship(name));
    } catch (RejectedExecutionException e) {
      fileDone();
    }
  }

  private void ship(String name) {
    try {
      synchronized (lock) {
        if (closed || failure != null) {
          return;
        }
      }
      Path file = staging.resolve(name);
      long size;
      try (FileChannel ch = FileChannel.open(file, READ)) {
        size = ch.size();
        // No mode: CRIU creates its images 0600, which is what the cache uses for mode 0, and a
        // stat per file is measurable with thousands of small files.
        OutboundFile out = mux.openFile(name, size, 0);
        long n = out.transferFrom(ch);
        if (n != size) {
          throw new MigrationException("staged file \"" + name + "\" changed while it was sent: "
              + n + " bytes read, " + size + " expected");
        }
        out.close();
      }
      Files.delete(file);
      fileBytesSent.addAndGet(size);
      filesSent.incrementAndGet();
    } catch (IOException | RuntimeException e) {
      fail("sending \"" + name + "\"", e);
    } finally {
      fileDone();
    }
  }

  private void fileDone() {
    synchronized (lock) {
      pendingFiles--;
      lock.notifyAll();
    }
  }

  // ------------------------------------------------------------------------------ failures

  private boolean isClosed() {
    synchronized (lock) {
      return closed;
    }
  }

  /**
   * Records the first failure and tells the peer. Failures caused by close() are not recorded.
   */
  private void fail(String what, Throwable e) {
    // A MigrationException (the connection's failure, or the page parser's) names the offence.
    MigrationException m = e instanceof MigrationException me ? me
        : new MigrationException(label + ": " + what + ": " + e, e);
    synchronized (lock) {
      if (closed || failure != null) {
        log.debug("{}: {} after the end: {}", label, what, e.toString());
        return;
      }
      failLocked(m);
    }
    log.debug("{}: {} failed", label, what, e);
    // No-op if the connection already failed (then the peer knows, or told us).
    mux.sendError(ErrorCode.INTERNAL, what + ": " + m.getMessage());
    // CRIU may be waiting for a page-server answer that will never come: end its socket so the
    // dump fails now (and the tasks resume) instead of hanging until close().
    relayEnd.shutdown();
  }

  private void failLocked(MigrationException e) {
    if (failure == null) {
      failure = e;
    }
    lock.notifyAll();
  }

  /**
   * Stops everything and frees the connection, the socketpair, the threads and the staging and
   * work directories. Before a successful {@link #finish()} the peer is told the transfer was
   * cancelled. Idempotent; never throws.
   */
  @Override
  public void close() {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
      lock.notifyAll();
    }
    stopDispatch = true;
    relayEnd.shutdown(); // wakes the relay threads blocked on CRIU's socket
    mux.close(); // fails blocked tunnel and file calls
    senders.shutdownNow();
    try {
      if (!senders.awaitTermination(10, TimeUnit.SECONDS)) {
        log.warn("{}: sender threads did not stop", label);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    join(uplink);
    join(downlink);
    watcher.close();
    criuEnd.close();
    relayEnd.close();
    FileTree.delete(root);
    log.debug("{}: closed", label);
  }

  private void join(Thread t) {
    if (t == Thread.currentThread() || !t.isAlive()) {
      return;
    }
    try {
      t.join(TimeUnit.SECONDS.toMillis(10));
      if (t.isAlive()) {
        log.warn("{}: thread {} did not stop", label, t.getName());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "ImageProxy[" + label + ", " + staging + "]";
  }

  /**
   * Configures an {@link ImageProxy}. Not thread-safe.
   *
   * @since 0.1
   */
  public static final class Builder {
    private final Connection connection;
    private CriuVersion criuVersion;
    private Path stagingParent = Paths.get("/dev/shm");
    private UUID sessionId;
    private int senderThreads = 4;
    private int pageSize = 4096;
    private Duration stallTimeout = Duration.ofSeconds(30);
    private Duration finishTimeout = Duration.ofSeconds(60);

    private Builder(Connection connection) {
      this.connection = connection;
    }

    /**
     * The version of the CRIU that dumps (required): it decides the page-server header size
     * (24 bytes up to 4.1, 32 from 4.2), which must match the destination's CRIU.
     */
    public Builder criuVersion(CriuVersion version) {
      this.criuVersion = Objects.requireNonNull(version, "version");
      return this;
    }

    /**
     * Where the staging directory is created: a tmpfs, so that staged images never touch a
     * disk. Default {@code /dev/shm}. The staging directory is named after this process (pid
     * and start time); starting a proxy deletes the staging directories in the same parent whose
     * process no longer runs (what a killed source left).
     */
    public Builder stagingParent(Path dir) {
      this.stagingParent = Objects.requireNonNull(dir, "dir");
      return this;
    }

    /** The session id announced to the cache. Default: a random one. */
    public Builder sessionId(UUID id) {
      this.sessionId = Objects.requireNonNull(id, "id");
      return this;
    }

    /** How many files are sent at once. Default 4. */
    public Builder senderThreads(int threads) {
      if (threads < 1 || threads > 64) {
        throw new IllegalArgumentException("senderThreads outside 1..64: " + threads);
      }
      this.senderThreads = threads;
      return this;
    }

    /** The page size of the dumping host. Default 4096. */
    public Builder pageSize(int bytes) {
      if (bytes < 4096 || Integer.bitCount(bytes) != 1) {
        throw new IllegalArgumentException("pageSize must be a power of two >= 4096: " + bytes);
      }
      this.pageSize = bytes;
      return this;
    }

    /**
     * How long a blocked transfer tolerates hearing nothing from the peer before it fails with a
     * {@link TransportException} "peer stalled". Default 30 s.
     */
    public Builder stallTimeout(Duration timeout) {
      this.stallTimeout = positive("stallTimeout", timeout);
      return this;
    }

    /**
     * How long {@link ImageProxy#finish()} waits for CRIU to end its page stream, and then for
     * the destination page server to finish. Default 60 s.
     */
    public Builder finishTimeout(Duration timeout) {
      this.finishTimeout = positive("finishTimeout", timeout);
      return this;
    }

    /**
     * Creates the staging directory and the page socketpair, and performs the handshake with
     * the cache (waiting for it, within the stall timeout). The proxy owns the connection from
     * here on; if this method fails, it has closed the connection and freed everything.
     *
     * @throws IllegalStateException if {@link #criuVersion} was not set
     * @throws MigrationException if the staging directory cannot be created or the handshake
     *     fails (for example a {@link ProtocolException} for a peer of another protocol version)
     */
    public ImageProxy start() throws MigrationException {
      if (criuVersion == null) {
        connection.close();
        throw new IllegalStateException("criuVersion is required (it decides the page-server "
            + "header size)");
      }
      String label = "proxy-" + IDS.incrementAndGet();
      Path root = null;
      StagingWatcher watcher = null;
      UnixSocket.Pair pair = null;
      MuxConnection mux = null;
      try {
        // What a killed proxy left in the same parent goes first; then ours, named after us.
        OwnedDirs.reclaim(stagingParent, STAGING_PREFIX);
        root = OwnedDirs.create(stagingParent, STAGING_PREFIX);
        Path staging = Files.createDirectory(root.resolve("images"));
        Path work = Files.createDirectory(root.resolve("work"));
        watcher = StagingWatcher.open(staging);
        pair = UnixSocket.pair(Native.SOCK_STREAM);
        // CRIU writes the page stream in large pieces; the default 208 KiB send buffer would
        // make it wait for the relay every few pages.
        pair.first().setBufferSizes(PAGE_SOCKET_BUFFER_BYTES, 0);
        mux = MuxConnection.open(connection, connection,
            MuxConfig.sender(sessionId != null ? sessionId : UUID.randomUUID())
                .name(label).stallTimeout(stallTimeout).build());
        Tunnel tunnel = mux.openTunnel(PAGE_TUNNEL);
        ImageProxy proxy = new ImageProxy(this, label, mux, root, staging, work, pair, tunnel,
            watcher);
        proxy.startThreads();
        log.debug("{}: started, staging {}", label, staging);
        return proxy;
      } catch (IOException | RuntimeException e) {
        if (mux != null) {
          mux.close();
        }
        connection.close();
        if (pair != null) {
          pair.close();
        }
        if (watcher != null) {
          watcher.close();
        }
        if (root != null) {
          FileTree.delete(root);
        }
        if (e instanceof MigrationException m) {
          throw m;
        }
        if (e instanceof IOException io) {
          throw new MigrationException("cannot create a staging directory under "
              + stagingParent + ": " + io, io);
        }
        throw (RuntimeException) e;
      }
    }

    private static Duration positive(String what, Duration d) {
      if (d == null || d.isNegative() || d.isZero()) {
        throw new IllegalArgumentException(what + " must be positive: " + d);
      }
      return d;
    }
  }
}

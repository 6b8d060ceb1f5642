package io.criu4j;

import io.criu4j.internal.image.CacheHooks;
import io.criu4j.internal.image.CriuPageSink;
import io.criu4j.internal.image.ImageLimits;
import io.criu4j.internal.image.MemoryBudget;
import io.criu4j.internal.image.OwnedDirs;
import io.criu4j.internal.image.PageSink;
import io.criu4j.internal.image.PageStreamParser;
import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.wire.ErrorCode;
import io.criu4j.internal.wire.ImageEnd;
import io.criu4j.internal.wire.Inbound;
import io.criu4j.internal.wire.InboundFile;
import io.criu4j.internal.wire.MuxConfig;
import io.criu4j.internal.wire.MuxConnection;
import io.criu4j.internal.wire.Tunnel;
import io.criu4j.internal.wire.WireProtocolException;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination side of an image transfer: receives what an {@link ImageProxy} sends over one
 * transport {@link Connection} and materialises the image set in a directory on tmpfs, ready for
 * {@code criu.restore(cache.directory(), options)}. The page tunnel is relayed into a CRIU page
 * server (PAGE_SERVER_CHLD on a socketpair), which writes the {@code pagemap-*} and
 * {@code pages-*} images; every other file is held in memory until it arrived complete with a
 * good checksum and then written to the directory, so the directory never holds a partial or
 * corrupt file under its real name.
 *
 * <pre>{@code
 * try (ImageCache cache = ImageCache.builder(connection).criu(criu).start()) {
 *   TransferReport received = cache.awaitComplete(Duration.ofMinutes(5));
 *   RestoreResult restored = criu.restore(cache.directory(), options);
 * }
 * }</pre>
 *
 * <p><b>Memory bound.</b> File data held in memory never exceeds {@link Builder#memoryLimit}.
 * Nothing is read from the connection, and so no credit is granted to the sender, before a file
 * has room: the sender blocks (nothing is dropped). Held files are written through to the
 * directory as soon as they are complete, which frees their memory. A file larger than the
 * limit, or one that found no room within a short wait (250 ms), is streamed to a temporary
 * name in the directory and renamed once verified instead; that way files waiting for memory
 * never starve the files holding it, and an image set of any size gets through. On top of the
 * limit, the connection buffers at most its receive window (16 streams of 4 MiB, in buffers
 * sized to the frames).
 *
 * <p><b>Bad input.</b> Names that are not a single path component, files sent twice, sizes or
 * checksums that do not match, a peer of another protocol version or a stalled peer are rejected
 * by the connection; a second image, a second tunnel, a broken page stream or a name that
 * collides with a page-server image are rejected here. Each rejection sends the sender an error
 * frame naming the offence and fails {@link #awaitComplete}; nothing is written outside the
 * directory, and memory is released.
 *
 * <p><b>Ownership.</b> The cache owns the connection from {@link Builder#start()} on (also if
 * {@code start()} fails), its directory (created, or adopted if empty, and removed entirely by
 * {@link #close()}), a work directory for the page server's log next to it, the page server and
 * its CRIU process, and its threads (named daemon platform threads). It does not own the
 * {@link Criu}. {@link #close()} is idempotent and never throws.
 *
 * <p>For tests, connect an {@code ImageProxy} through the in-memory transport
 * ({@link io.criu4j.spi.Transports#inMemory()}).
 *
 * <p>Thread-safe.
 *
 * @since 0.1
 */
public final class ImageCache implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ImageCache.class);
  /** Name prefix of a directory the cache makes itself, followed by its owner's tag. */
  static final String DEFAULT_DIR_PREFIX = "criu4j-cache-";
  /** Name prefix of the work directory (page server log), next to the images directory. */
  public static final String WORK_DIR_PREFIX = ".criu4j-cache-work-";
  private static final AtomicLong IDS = new AtomicLong();
  /** Streams the sender may have open at once. */
  static final int MAX_OPEN_STREAMS = 16;
  /** Credit per stream; the connection window covers all streams, so none can starve. */
  static final int STREAM_WINDOW = 4 * 1024 * 1024;
  static final long DEFAULT_MEMORY_LIMIT = 256L * 1024 * 1024;
  /**
   * Largest DATA frame accepted. Receive buffers are sized to the frames (in power-of-two
   * classes), so small files do not take buffers of this size.
   */
  static final int MAX_FRAME_PAYLOAD = 1024 * 1024;
  /**
   * Files up to this size are stored by the thread that accepts them: a handoff to a storer
   * thread costs more than storing such a file. The sender can send all of it without further
   * credit (it is below the stream window), so storing it never waits for anything but the
   * sender.
   */
  static final long INLINE_STORE_MAX = 64 * 1024;
  /** Largest file held in memory (a Java array); larger ones are streamed to the directory. */
  private static final long MAX_HELD_FILE = 1L << 30;
  private static final int RELAY_BUFFER_BYTES = 64 * 1024;
  private static final String PARTIAL_PREFIX = ".criu4j-partial-";
  private static final Set<StandardOpenOption> CREATE_NEW =
      Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
  /** What files sent without a mode get: CRIU creates its images 0600. */
  private static final FileAttribute<Set<PosixFilePermission>> DEFAULT_PERMISSIONS =
      permissionBits(0600);
  /** How long a file waits for room in memory before it is streamed to the directory. */
  private static final long MEMORY_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(250);

  static {
    CacheHooks.register(new CacheHooks.Access() {
      @Override
      public void pageSink(Builder builder, PageSink.Factory factory) {
        builder.pageSinkFactory = factory;
      }

      @Override
      public void limits(Builder builder, ImageLimits limits, int maxFramePayload) {
        builder.limits = limits;
        builder.maxFramePayload = maxFramePayload;
      }

      @Override
      public long peakHeldBytes(ImageCache cache) {
        return cache.peakHeldBytes();
      }
    });
  }

  private final String label;
  private final MuxConnection mux;
  private final Path directory;
  private final Path workDir;
  private final MemoryBudget budget;
  private final long heldFileMax;
  private final PageSink.Factory sinkFactory;
  private final int headerSize;
  private final int pageSize;
  private final Duration sinkExitTimeout;
  private final ImageLimits limits;
  private final ThreadPoolExecutor storers;
  private final Thread acceptor;
  private final long startNanos = System.nanoTime();
  private final CompletableFuture<TransferReport> completion = new CompletableFuture<>();

  private final Object lock = new Object();
  // guarded by lock
  private MigrationException failure;
  private boolean closed;
  private int storing;
  private Tunnel tunnel;
  private PageSink sink;
  private Thread pagesDown;
  private Thread pagesUp;
  private boolean tunnelDone;
  private boolean imageEnded;

  /** The acceptor thread's buffer for the files it stores itself, and its end probe. */
  private ByteBuffer inlineBuffer;
  private ByteBuffer inlineProbe;

  private final AtomicInteger filesStored = new AtomicInteger();
  private final AtomicLong bytesStored = new AtomicLong();
  /** Written by the pages-down thread only. */
  private volatile long pages;

  private ImageCache(Builder b, String label, MuxConnection mux, Path directory, Path workDir,
      int headerSize) {
    this.label = label;
    this.mux = mux;
    this.directory = directory;
    this.workDir = workDir;
    this.budget = new MemoryBudget(b.memoryLimit);
    this.heldFileMax = Math.min(b.memoryLimit, MAX_HELD_FILE);
    this.sinkFactory = b.pageSinkFactory;
    this.headerSize = headerSize;
    this.pageSize = b.pageSize;
    this.sinkExitTimeout = b.stallTimeout;
    this.limits = b.limits;
    AtomicInteger n = new AtomicInteger();
    // One thread per file being stored; at most the open streams plus files being written out.
    this.storers = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 10, TimeUnit.SECONDS,
        new SynchronousQueue<>(), r -> newThread("store-" + n.incrementAndGet(), r));
    this.acceptor = newThread("accept", this::acceptLoop);
  }

  /**
   * A builder for a cache that receives over {@code connection}. The cache takes ownership of
   * the connection when {@link Builder#start()} is called.
   */
  public static Builder builder(Connection connection) {
    return new Builder(Objects.requireNonNull(connection, "connection"));
  }

  private Thread newThread(String what, Runnable body) {
    Thread t = new Thread(body, "criu4j-" + label + "-" + what);
    t.setDaemon(true);
    return t;
  }

  /** The directory the image set is materialised in; pass it to {@code Criu.restore}. */
  public Path directory() {
    return directory;
  }

  /** What was received so far: files stored, and pages relayed to the page server. */
  public TransferReport progress() {
    return new TransferReport(filesStored.get(), bytesStored.get(), pages, pages * pageSize,
        Duration.ofNanos(System.nanoTime() - startNanos));
  }

  /**
   * Waits until the image set is complete: every file stored with a good checksum, the page
   * stream relayed to its end and the page server exited with status 0. The sender has been
   * told (image acknowledged) when this returns.
   *
   * @return the totals received
   * @throws MigrationException if the transfer failed (the message names the offence), or the
   *     set was not complete within {@code timeout} (a {@link TransportException}; the transfer
   *     goes on)
   */
  public TransferReport awaitComplete(Duration timeout) throws MigrationException {
    try {
      return completion.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      throw new TransportException(label + ": image set not complete within " + timeout
          + " (so far " + progress() + ")", e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof MigrationException m) {
        throw m;
      }
      throw new MigrationException(label + ": " + cause, cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException(label + ": interrupted waiting for the image set", e);
    }
  }

  // ------------------------------------------------------------------------------ accepting

  private void acceptLoop() {
    try {
      while (true) {
        Inbound in = mux.accept();
        if (in == null) {
          break;
        }
        if (in instanceof InboundFile f) {
          onFile(f);
        } else if (in instanceof Tunnel t) {
          onTunnel(t);
        } else if (in instanceof ImageEnd e) {
          onImageEnd(e);
        }
      }
      if (!completion.isDone()) {
        throw new TransportException(label + ": the sender ended the connection before the "
            + "image set was complete");
      }
      mux.close(); // the sender said GOODBYE: answer it
    } catch (MigrationException | RuntimeException e) {
      fail(e, ErrorCode.INTERNAL);
    }
  }

  private void onFile(InboundFile f) throws MigrationException {
    synchronized (lock) {
      if (imageEnded || f.image() != 0) {
        throw reject(ErrorCode.PROTOCOL_ERROR, "a cache holds one image; the sender opened \""
            + f.name() + "\" in image " + f.image());
      }
      if (closed || failure != null) {
        return;
      }
      String refusal = limits.admitFile(f.name(), f.size());
      if (refusal != null) {
        throw reject(ErrorCode.RESOURCE_LIMIT, refusal);
      }
      storing++;
    }
    if (f.size() <= INLINE_STORE_MAX) {
      store(f, true);
    } else {
      storers.execute(() -> store(f, false));
    }
  }

  private void onTunnel(Tunnel t) throws MigrationException {
    synchronized (lock) {
      if (tunnel != null) {
        throw reject(ErrorCode.PROTOCOL_ERROR, "second tunnel \"" + t.name()
            + "\"; a cache relays one page stream");
      }
      if (!ImageProxy.PAGE_TUNNEL.equals(t.name())) {
        throw reject(ErrorCode.PROTOCOL_ERROR, "unknown tunnel \"" + t.name() + "\"; expected \""
            + ImageProxy.PAGE_TUNNEL + "\"");
      }
      if (closed || failure != null) {
        return;
      }
      tunnel = t;
      pagesDown = newThread("pages-down", this::pagesDownLoop);
      pagesDown.start();
    }
  }

  private void onImageEnd(ImageEnd end) throws MigrationException {
    synchronized (lock) {
      imageEnded = true;
      while (storing > 0) {
        awaitLocked();
      }
      if (tunnel == null) {
        throw reject(ErrorCode.PROTOCOL_ERROR, "image " + end.image() + " ended without a page "
            + "tunnel");
      }
      while (!tunnelDone) {
        awaitLocked();
      }
      throwIfFailedLocked();
    }
    if (end.fileCount() != filesStored.get() || end.totalBytes() != bytesStored.get()) {
      throw reject(ErrorCode.IMAGE_MISMATCH, "image " + end.image() + " announces "
          + end.fileCount() + " files of " + end.totalBytes() + " bytes, the cache stored "
          + filesStored.get() + " files of " + bytesStored.get() + " bytes");
    }
    TransferReport report = progress();
    mux.acknowledgeImage(end);
    completion.complete(report);
    log.debug("{}: image complete in {}: {}", label, directory, report);
  }

  private void awaitLocked() throws MigrationException {
    throwIfFailedLocked();
    if (closed) {
      throw new MigrationException(label + " was closed");
    }
    try {
      lock.wait();
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

  // ------------------------------------------------------------------------------ files

  /**
   * Stores a file; {@code inline} on the acceptor thread, which then holds it in its reusable
   * buffer (no garbage per file: a heap buffer per small file adds up to heap growth, so RSS).
   */
  private void store(InboundFile f, boolean inline) {
    String name = f.name();
    long size = f.size();
    try {
      Path target = directory.resolve(name);
      if (!name.equals(target.getFileName().toString())
          || !directory.equals(target.getParent())) {
        // The connection already rejects such names; this guards the directory regardless.
        throw reject(ErrorCode.BAD_NAME, "bad file name \"" + name + "\"");
      }
      if (name.startsWith(PARTIAL_PREFIX)) {
        throw reject(ErrorCode.BAD_NAME, "file name \"" + name + "\" is reserved");
      }
      // A file waits a moment for room in memory (meanwhile it gets no credit, so the sender
      // slows down); if none frees up, it is streamed to the directory instead, so that files
      // waiting for memory can never starve the files holding it of connection credit.
      if (size <= heldFileMax && budget.tryAcquire(size, MEMORY_WAIT_NANOS)) {
        storeHeld(f, target, size, inline);
      } else {
        storeStreamed(f, target);
      }
      bytesStored.addAndGet(size);
      filesStored.incrementAndGet();
    } catch (FileAlreadyExistsException e) {
      fail(reject(ErrorCode.DUPLICATE_FILE, "file \"" + name + "\" already exists in the cache "
          + "directory (written by the page server, or sent twice)"), null);
    } catch (InterruptedException e) {
      fail(new MigrationException(label + ": interrupted storing \"" + name + "\"", e), null);
    } catch (IOException | RuntimeException e) {
      fail(e, ErrorCode.INTERNAL);
    } finally {
      f.close();
      synchronized (lock) {
        storing--;
        lock.notifyAll();
      }
    }
  }

  /** Holds the file in memory until it is verified, then writes it out and frees the memory. */
  private void storeHeld(InboundFile f, Path target, long size, boolean inline)
      throws IOException {
    try { // the caller acquired size bytes of the budget
      ByteBuffer data;
      ByteBuffer probe;
      if (inline) {
        if (inlineBuffer == null) {
          inlineBuffer = ByteBuffer.allocateDirect((int) INLINE_STORE_MAX);
          inlineProbe = ByteBuffer.allocateDirect(1);
        }
        data = inlineBuffer.clear().limit((int) size);
        probe = inlineProbe.clear();
      } else {
        data = ByteBuffer.allocate((int) size);
        probe = ByteBuffer.allocate(1);
      }
      while (data.hasRemaining()) {
        int n = f.read(data);
        if (n < 0) {
          throw new ProtocolException(label + ": \"" + f.name() + "\" ended early");
        }
        if (n > 0) {
          f.grant(n);
        }
      }
      // -1 only once the size and the checksum were verified.
      if (f.read(probe) >= 0) {
        throw new ProtocolException(label + ": \"" + f.name() + "\" is longer than announced");
      }
      data.flip();
      try (FileChannel out = FileChannel.open(target, CREATE_NEW, permissions(f.mode()))) {
        while (data.hasRemaining()) {
          out.write(data);
        }
      }
    } finally {
      budget.release(size);
    }
  }

  /** Streams a file too large to hold to a temporary name; renames it once verified. */
  private void storeStreamed(InboundFile f, Path target) throws IOException {
    Path partial = directory.resolve(PARTIAL_PREFIX + f.streamId());
    boolean done = false;
    try {
      try (FileChannel out = FileChannel.open(partial, CREATE_NEW, permissions(f.mode()))) {
        f.transferTo(out); // returns once the size and the checksum were verified
      }
      Files.move(partial, target); // fails if the target exists
      done = true;
    } finally {
      if (!done) {
        Files.deleteIfExists(partial);
      }
    }
  }

  private static FileAttribute<Set<PosixFilePermission>> permissions(int mode) {
    return mode == 0 ? DEFAULT_PERMISSIONS : permissionBits(mode & 0777);
  }

  private static FileAttribute<Set<PosixFilePermission>> permissionBits(int bits) {
    Set<PosixFilePermission> perms = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] order = {
        PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
        PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE,
        PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
        PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
        PosixFilePermission.OWNER_READ};
    for (int i = 0; i < order.length; i++) {
      if ((bits & (1 << i)) != 0) {
        perms.add(order[i]);
      }
    }
    return PosixFilePermissions.asFileAttribute(perms);
  }

  // ------------------------------------------------------------------------------ page tunnel

  /** Tunnel -> page server: starts the server, relays the stream (parsing it), ends it. */
  private void pagesDownLoop() {
    Tunnel t;
    PageSink s;
    try {
      s = sinkFactory.open(directory, workDir);
      synchronized (lock) {
        if (closed || failure != null) {
          s.close();
          return;
        }
        sink = s;
        t = tunnel;
        pagesUp = newThread("pages-up", this::pagesUpLoop);
        pagesUp.start();
      }
    } catch (MigrationException | RuntimeException e) {
      fail(e, ErrorCode.INTERNAL);
      return;
    }
    try {
      PageStreamParser parser = new PageStreamParser(headerSize, pageSize,
          ByteOrder.nativeOrder(), (command, flags, nrPages, vaddr, dstId, offset) -> {
            if (command == PageStreamParser.PS_IOV_ADD
                || (command == PageStreamParser.PS_IOV_ADD_F
                    && (flags & PageStreamParser.PE_PRESENT) != 0)) {
              pages += nrPages;
            }
          });
      WritableByteChannel parsing = new WritableByteChannel() {
        @Override
        public int write(ByteBuffer src) throws IOException {
          String refusal = limits.admitPageBytes(src.remaining());
          if (refusal != null) {
            throw reject(ErrorCode.RESOURCE_LIMIT, refusal);
          }
          parser.feed(src.duplicate());
          return s.write(src);
        }

        @Override
        public boolean isOpen() {
          return s.isOpen();
        }

        @Override
        public void close() {}
      };
      try {
        t.transferTo(parsing);
        parser.finish();
        if (!parser.closeSeen()) {
          throw new ProtocolException("page stream ended without PS_IOV_CLOSE after "
              + parser.offset() + " bytes");
        }
      } catch (ProtocolException e) {
        if (e instanceof WireProtocolException) {
          throw e;
        }
        throw reject(ErrorCode.PROTOCOL_ERROR, "bad page stream: " + e.getMessage());
      }
      s.shutdownOutput();
      // The server exits at the end of the stream; its socket reads end only after that (a real
      // page server's CRIU parent holds a copy until it is reaped), so reap first.
      int status = s.awaitExit(sinkExitTimeout);
      if (status != 0) {
        throw new MigrationException(label + ": the destination page server failed (wait "
            + "status " + status + ")");
      }
      join(pagesUp);
      synchronized (lock) {
        tunnelDone = true;
        lock.notifyAll();
      }
    } catch (IOException | RuntimeException e) {
      fail(e, ErrorCode.INTERNAL);
    }
  }

  /** Page server -> tunnel: its answers, until it exits. */
  private void pagesUpLoop() {
    PageSink s;
    Tunnel t;
    synchronized (lock) {
      s = sink;
      t = tunnel;
    }
    ByteBuffer buf = ByteBuffer.allocateDirect(RELAY_BUFFER_BYTES);
    try {
      while (s.read(buf.clear()) >= 0) {
        buf.flip();
        while (buf.hasRemaining()) {
          t.write(buf);
        }
      }
      t.shutdownOutput();
    } catch (IOException | RuntimeException e) {
      fail(e, ErrorCode.INTERNAL);
    }
  }

  // ------------------------------------------------------------------------------ failures

  /** A violation found here (not by the connection): the peer gets {@code code} and the text. */
  private WireProtocolException reject(ErrorCode code, String reason) {
    WireProtocolException e = new WireProtocolException(code, reason);
    fail(e, code);
    return e;
  }

  /**
   * Records the first failure, tells the peer (a no-op if the connection already failed), stops
   * waiting storers and the page server. Failures caused by {@link #close()} are not recorded.
   */
  private void fail(Throwable e, ErrorCode code) {
    MigrationException m = e instanceof MigrationException me ? me
        : new MigrationException(label + ": " + e, e);
    PageSink s;
    synchronized (lock) {
      if (closed) {
        return;
      }
      if (failure != null) {
        return;
      }
      failure = m;
      lock.notifyAll();
      s = sink;
    }
    log.debug("{}: failed", label, m);
    if (code != null) {
      mux.sendError(code, m instanceof WireProtocolException w ? w.reason() : m.getMessage());
    }
    budget.abort(m);
    completion.completeExceptionally(m);
    if (s != null) {
      s.close();
    }
  }

  /**
   * Stops everything and removes the directory, with everything in it, and the work directory;
   * kills the page server if it still runs. Before the set is complete the sender is told the
   * transfer was cancelled. Idempotent; never throws.
   */
  @Override
  public void close() {
    PageSink s;
    Thread down;
    Thread up;
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
      lock.notifyAll();
      s = sink;
      down = pagesDown;
      up = pagesUp;
    }
    MigrationException closedException = new MigrationException(label + " was closed");
    budget.abort(closedException);
    mux.close();
    if (s != null) {
      s.close();
    }
    storers.shutdownNow();
    try {
      if (!storers.awaitTermination(10, TimeUnit.SECONDS)) {
        log.warn("{}: storer threads did not stop", label);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    join(acceptor);
    if (down != null) {
      join(down);
    }
    synchronized (lock) {
      // pages-down may have opened the sink just before close() looked
      s = sink;
      up = pagesUp;
    }
    if (s != null) {
      s.close();
    }
    if (up != null) {
      join(up);
    }
    completion.completeExceptionally(closedException);
    FileTree.delete(directory);
    FileTree.delete(workDir);
    log.debug("{}: closed", label);
  }

  private void join(Thread t) {
    if (t == Thread.currentThread() || !t.isAlive()) {
      return;
    }
    try {
      t.join(TimeUnit.SECONDS.toMillis(15));
      if (t.isAlive()) {
        log.warn("{}: thread {} did not stop", label, t.getName());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Peak bytes of file data held in memory (test hook). */
  long peakHeldBytes() {
    return budget.peak();
  }

  @Override
  public String toString() {
    return "ImageCache[" + label + ", " + directory + "]";
  }

  /**
   * Configures an {@link ImageCache}. Not thread-safe.
   *
   * @since 0.1
   */
  public static final class Builder {
    private final Connection connection;
    private Path directory;
    private long memoryLimit = DEFAULT_MEMORY_LIMIT;
    private UUID sessionId;
    private Criu criu;
    private CriuVersion criuVersion;
    private int pageSize = 4096;
    private Duration stallTimeout = Duration.ofSeconds(30);
    PageSink.Factory pageSinkFactory;
    ImageLimits limits = ImageLimits.NONE;
    int maxFramePayload = MAX_FRAME_PAYLOAD;

    private Builder(Connection connection) {
      this.connection = connection;
    }

    /**
     * The CRIU that runs the destination page server. The caller keeps ownership. Required
     * (unless a test replaced the page server).
     */
    public Builder criu(Criu criu) {
      this.criu = Objects.requireNonNull(criu, "criu");
      return this;
    }

    /**
     * The directory to materialise the images in: created (its parent must exist), or adopted
     * if it exists and is empty; removed with its contents by {@link ImageCache#close()}. It
     * should be on tmpfs. Default: a new directory under {@code /dev/shm}.
     *
     * @throws IllegalArgumentException (from {@link #start()}) if it exists and is not an empty
     *     directory
     */
    public Builder directory(Path dir) {
      this.directory = Objects.requireNonNull(dir, "dir").toAbsolutePath();
      return this;
    }

    /** Most bytes of file data held in memory at once. Default 256 MiB. */
    public Builder memoryLimit(long bytes) {
      if (bytes < 64 * 1024) {
        throw new IllegalArgumentException("memoryLimit below 64 KiB: " + bytes);
      }
      this.memoryLimit = bytes;
      return this;
    }

    /** Accept only a proxy announcing this session id. Default: any. */
    public Builder sessionId(UUID id) {
      this.sessionId = Objects.requireNonNull(id, "id");
      return this;
    }

    /**
     * The CRIU version whose page-server stream arrives (it decides the header size). Default:
     * the version of {@link #criu(Criu)}, or 4.1 without one.
     */
    public Builder criuVersion(CriuVersion version) {
      this.criuVersion = Objects.requireNonNull(version, "version");
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
      if (timeout == null || timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("stallTimeout must be positive: " + timeout);
      }
      this.stallTimeout = timeout;
      return this;
    }

    /**
     * Creates the directory and performs the handshake with the proxy (waiting for it, within
     * the stall timeout), then receives in the background. The cache owns the connection from
     * here on; if this method fails, it has closed the connection and removed what it created.
     *
     * @throws IllegalStateException if neither {@link #criu(Criu)} nor a test page sink is set
     * @throws IllegalArgumentException if the directory exists and is not empty
     * @throws MigrationException if the directory cannot be created or the handshake fails
     */
    public ImageCache start() throws MigrationException {
      Path dir = null;
      Path work = null;
      boolean created = false;
      MuxConnection mux = null;
      try {
        PageSink.Factory sinks = pageSinkFactory;
        if (sinks == null) {
          if (criu == null) {
            throw new IllegalStateException("criu is required: it runs the page server");
          }
          sinks = CriuPageSink.factory(criu);
        }
        pageSinkFactory = sinks;
        int headerSize = (criuVersion != null ? criuVersion
            : criu != null ? criu.version() : CriuVersion.of(4, 1, 0)).pageServerHeaderSize();
        String label = "cache-" + IDS.incrementAndGet();
        if (directory == null) {
          OwnedDirs.reclaim(Paths.get("/dev/shm"), DEFAULT_DIR_PREFIX);
          dir = OwnedDirs.create(Paths.get("/dev/shm"), DEFAULT_DIR_PREFIX);
          created = true;
        } else {
          dir = directory;
          if (Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.isDirectory(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
              throw new IllegalArgumentException("cache directory exists and is not a "
                  + "directory: " + dir);
            }
            try (Stream<Path> s = Files.list(dir)) {
              if (s.findAny().isPresent()) {
                throw new IllegalArgumentException("cache directory is not empty: " + dir);
              }
            }
          } else {
            Files.createDirectory(dir);
          }
          created = true;
        }
        OwnedDirs.reclaim(dir.getParent(), WORK_DIR_PREFIX);
        work = OwnedDirs.create(dir.getParent(), WORK_DIR_PREFIX);
        mux = MuxConnection.open(connection, connection, MuxConfig.receiver()
            .sessionId(sessionId).name(label).stallTimeout(stallTimeout)
            .maxOpenStreams(MAX_OPEN_STREAMS).initialStreamWindow(STREAM_WINDOW)
            .maxFramePayload(maxFramePayload)
            .initialConnectionWindow(MAX_OPEN_STREAMS * STREAM_WINDOW).build());
        ImageCache cache = new ImageCache(this, label, mux, dir, work, headerSize);
        cache.acceptor.start();
        log.debug("{}: started in {}", label, dir);
        return cache;
      } catch (IOException | RuntimeException e) {
        if (mux != null) {
          mux.close();
        }
        connection.close();
        if (work != null) {
          FileTree.delete(work);
        }
        if (created) {
          FileTree.delete(dir);
        }
        if (e instanceof MigrationException m) {
          throw m;
        }
        if (e instanceof IOException io) {
          throw new MigrationException("cannot create the cache directory "
              + (dir != null ? dir : "under /dev/shm") + ": " + io, io);
        }
        throw (RuntimeException) e;
      }
    }
  }
}

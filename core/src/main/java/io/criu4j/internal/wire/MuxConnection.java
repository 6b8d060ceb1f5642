package io.criu4j.internal.wire;

import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.TransportException;
import io.criu4j.internal.posix.SocketFd;
import io.criu4j.internal.posix.SplicePipe;
import io.criu4j.internal.transport.SpliceTarget;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One wire-protocol connection ({@code docs/wire-protocol.md}) between an image proxy (the
 * {@linkplain Role#SENDER sender}) and an image cache (the {@linkplain Role#RECEIVER receiver})
 * over a pair of blocking JDK channels: many files and tunnels at once, shared fairly
 * (round-robin, one frame per stream per turn) and flow-controlled by credit.
 *
 * <p>The sender calls {@link #openFile}, writes each file and closes it, then {@link #endImage()}
 * for each set of files. The receiver calls {@link #accept()} in a loop, reads each file, grants
 * credit as it stores bytes, and {@link #acknowledgeImage acknowledges} each image. Either side
 * may {@link #openTunnel open a tunnel}. Both call {@link #close()} at the end.
 *
 * <p><b>Failures.</b> A violation by the peer (a bad name, a file sent twice, a wrong size or
 * checksum, a bad frame, a peer of another version) fails the whole connection: this side sends an
 * ERROR frame with the reason, every blocked and later call throws a {@link
 * WireProtocolException} naming the offence, and the buffers are freed. An ERROR from the peer
 * fails it the same way, with the peer's reason. If no frame arrives for {@link
 * MuxConfig#stallTimeout()} while a call waits (idle peers exchange PINGs), calls fail with a
 * {@link TransportException} "peer stalled". Nothing waits forever on a dead peer.
 *
 * <p><b>Threads.</b> Three platform threads per connection (daemon, named {@code
 * criu4j-<name>-<role>-<n>-reader|writer|watchdog} unless a thread factory is configured): the
 * reader dispatches frames and never waits for the application, the writer sends frames, the
 * watchdog pings, detects stalls and closes the channels at the end. As a shortcut, a large write
 * from a direct buffer on a stream that is the only one with data is sent by the application
 * thread itself, straight from its buffer ({@link #writeDirect}); the channel is then written by
 * one thread at a time, and an interrupt of that thread closes the channel (it is an {@link
 * java.nio.channels.InterruptibleChannel}), which fails the connection.
 *
 * <p><b>Ownership.</b> The connection owns the two channels from {@link #open} on (also if
 * {@code open} fails) and closes them. {@link #close()} is idempotent.
 *
 * <p>Thread-safe.
 */
public final class MuxConnection implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(MuxConnection.class);
  private static final AtomicLong IDS = new AtomicLong();
  private static final int MAX_WINDOW = Integer.MAX_VALUE;
  private static final int CONTROL_BUFFER_BYTES = 64 * 1024;
  /** DATA frames per gathering write (one write moves at most {@link #MAX_BATCH_DATA_BYTES}). */
  private static final int MAX_BATCH_FRAMES = 32;

  private static final int MAX_BATCH_DATA_BYTES = 1024 * 1024;
  /**
   * The smallest write from a direct buffer that goes straight to the channel (see {@link
   * #writeDirect}); smaller writes are copied and batched by the writer thread.
   */
  private static final int DIRECT_WRITE_MIN = 64 * 1024;
  /** The most bytes of a spliced write's {@code prefix} (see {@link #writeSpliced}). */
  public static final int SPLICE_PREFIX_MAX = 4096;
  /** Free pooled bytes kept for reuse; beyond it, returned buffers are left to the GC. */
  private static final int POOL_RETAINED_BYTES = 32 * 1024 * 1024;
  private static final long JOIN_MILLIS = 5_000;

  private final MuxConfig config;
  private final Role role;
  private final String label;
  private final ReadableByteChannel in;
  private final WritableByteChannel out;
  private final BufferPool pool;
  private final long stallNanos;
  private final long closeNanos;
  /**
   * How long a failed connection lingers to flush its error frame. Shortened when the
   * application abandons the connection: close() must not wait for a stalled link.
   */
  private long lingerNanos;
  private final long streamGrantThreshold;
  private final long connectionGrantThreshold;

  private final ReentrantLock lock = new ReentrantLock();
  /** Application threads wait here: credit, buffer space, data, accept, handshake, acks. */
  private final Condition appCond = lock.newCondition();

  private final Condition writerCond = lock.newCondition();
  private final Condition watchdogCond = lock.newCondition();

  // ---- everything below is guarded by lock, unless it says otherwise

  private Frame.Hello peerHello;
  private boolean handshakeDone;
  private UUID sessionId;
  private int capabilities;

  private final Map<Integer, StreamState> streams = new HashMap<>();
  /** Streams that may still hold buffers (released at termination). */
  private final Set<StreamState> live = new HashSet<>();

  private int nextLocalId;
  private int lastPeerId;
  private int localOpen;
  private int peerOpen;

  /** Streams with items to send, in round-robin order. */
  private final ArrayDeque<StreamState> ready = new ArrayDeque<>();
  /** Connection-level frames to send (HELLO, ACCEPT, PING, PONG, image acks). */
  private final ArrayDeque<Frame> control = new ArrayDeque<>();
  /** Streams whose pending grant crossed the threshold. */
  private final ArrayDeque<StreamState> grantDirty = new ArrayDeque<>();

  private long connSendCredit;
  private long connRecvWindow;
  private long connPendingGrant;

  // sender: the image being sent
  private int image;
  private final Set<String> imageNames = new HashSet<>();
  private int imageFiles;
  private long imageBytes;
  private final List<StreamState> imageStreams = new ArrayList<>();
  private boolean endImageBusy;
  private Frame.EndOfImage pendingEndImage;
  private Frame.EndOfImage sentEndImage;
  private Frame.EndOfImage endImageAck;

  // receiver: the image being received
  private int rxImage;
  private final Set<String> rxNames = new HashSet<>();
  private int rxFiles;
  private long rxBytes;
  private ImageEnd rxUnacked;

  private final ArrayDeque<Inbound> acceptQueue = new ArrayDeque<>();

  private MigrationException failure;
  private long failedAt;
  private boolean lingering;
  private Frame.ErrorFrame errorToSend;
  /** Whether the ERROR was written, or the writer stopped (nothing more will be written). */
  private boolean errorFlushed;
  private boolean goodbyeQueued;
  private boolean goodbyeWritten;
  private boolean peerGoodbye;
  private boolean inputEnded;
  private boolean closeCalled;
  private long closeDeadline;
  /**
   * Linger after close() abandoned open streams or after a stall: enough to send an error frame
   * on a live link, never a wait on a dead one.
   */
  private static final long ABANDON_LINGER_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
  private boolean terminated;

  private int waiters;
  private long lastReceived;
  private long pingSeq;
  private boolean pingOutstanding;
  private long writeStarted;
  /**
   * Whether a thread is writing to the channel: the writer thread (a batch) or an application
   * thread ({@link #writeDirect}). Only one at a time; the owner uses the channel outside the
   * lock.
   */
  private boolean channelBusy;
  /** Whether {@link #channelBusy} is held by an application thread's direct write. */
  private boolean directBusy;
  /** Application threads waiting for the channel to go direct; the writer wakes them. */
  private int directWaiters;
  /** Batches the writer thread has written; spliced writes take turns with them. */
  private long writerBatches;
  /** The output socket for spliced writes; looked up on first use. */
  private SocketFd spliceFd;
  private boolean spliceLookedUp;

  // ---- counters: each written by one thread only
  private volatile long framesSent;
  private volatile long bytesSent;
  private volatile long dataSent;
  private volatile long framesReceived;
  private volatile long bytesReceived;
  private volatile long dataReceived;

  /** Header and control-frame space for direct writes; used by the {@link #directBusy} owner. */
  private final ByteBuffer directHeaders =
      ByteBuffer.allocateDirect(FrameCodec.HEADER_BYTES * MAX_BATCH_FRAMES);
  private final ByteBuffer directCtrl =
      ByteBuffer.allocateDirect(FrameCodec.HEADER_BYTES + FrameCodec.MAX_CONTROL_PAYLOAD);
  private final ByteBuffer[] directGather = new ByteBuffer[1 + 2 * MAX_BATCH_FRAMES];
  /** A DATA header and the prefix of a spliced write; used by the {@link #directBusy} owner. */
  private final ByteBuffer spliceHead =
      ByteBuffer.allocateDirect(FrameCodec.HEADER_BYTES + SPLICE_PREFIX_MAX);

  private final Thread readerThread;
  private final Thread writerThread;
  private final Thread watchdogThread;
  private final CountDownLatch terminatedLatch = new CountDownLatch(1);
  private final AtomicBoolean channelsClosed = new AtomicBoolean();

  private MuxConnection(ReadableByteChannel in, WritableByteChannel out, MuxConfig config) {
    this.in = in;
    this.out = out;
    this.config = config;
    this.role = config.role();
    this.label =
        config.name() + "-" + role.name().toLowerCase(java.util.Locale.ROOT) + "-"
            + IDS.incrementAndGet();
    this.pool = new BufferPool(config.maxFramePayload(), POOL_RETAINED_BYTES);
    this.stallNanos = config.stallTimeout().toNanos();
    this.closeNanos = config.closeTimeout().toNanos();
    this.lingerNanos = closeNanos;
    this.streamGrantThreshold = Math.max(1, config.initialStreamWindow() / 2);
    this.connectionGrantThreshold = Math.max(1, config.initialConnectionWindow() / 2);
    this.nextLocalId = role == Role.SENDER ? 1 : 2;
    this.connRecvWindow = config.initialConnectionWindow();
    this.lastReceived = System.nanoTime();
    this.sessionId = config.sessionId();
    UUID announced = config.sessionId() != null ? config.sessionId() : new UUID(0, 0);
    control.add(
        new Frame.Hello(
            FrameCodec.PROTOCOL_VERSION,
            role,
            config.capabilities(),
            announced,
            config.maxFramePayload(),
            config.initialStreamWindow(),
            config.initialConnectionWindow(),
            config.maxOpenStreams()));
    this.readerThread = newThread("reader", this::readLoop);
    this.writerThread = newThread("writer", this::writeLoop);
    this.watchdogThread = newThread("watchdog", this::watchdogLoop);
  }

  /**
   * Starts a connection on {@code in} and {@code out} and performs the handshake: both sides
   * send HELLO; the receiver answers ACCEPT or ERROR. Returns once the handshake is complete.
   *
   * <p>The connection owns the channels from now on, also if this method throws. They must be
   * blocking; they may be the same object (a socket channel).
   *
   * @throws WireProtocolException if the peer is not a criu4j wire peer, speaks another version,
   *     has the same role, another session id, or rejects this side
   * @throws TransportException if the channels fail or the peer stalls during the handshake
   */
  public static MuxConnection open(
      ReadableByteChannel in, WritableByteChannel out, MuxConfig config)
      throws MigrationException {
    Objects.requireNonNull(in, "in");
    Objects.requireNonNull(out, "out");
    Objects.requireNonNull(config, "config");
    MuxConnection c = new MuxConnection(in, out, config);
    c.readerThread.start();
    c.writerThread.start();
    c.watchdogThread.start();
    try {
      c.awaitHandshake();
    } catch (MigrationException | RuntimeException e) {
      c.close();
      throw e;
    }
    log.debug("{}: open, session {}", c.label, c.sessionId);
    return c;
  }

  private Thread newThread(String what, Runnable body) {
    String name = "criu4j-" + label + "-" + what;
    Thread t;
    if (config.threadFactory() != null) {
      t = config.threadFactory().newThread(body);
      t.setName(name);
    } else {
      t = new Thread(body, name);
      t.setDaemon(true);
    }
    return t;
  }

  private void awaitHandshake() throws MigrationException {
    lock.lock();
    try {
      waiters++;
      try {
        while (!handshakeDone) {
          throwIfFailedLocked();
          awaitApp("the handshake");
        }
        throwIfFailedLocked();
      } finally {
        waiters--;
      }
    } finally {
      lock.unlock();
    }
  }

  // =========================================================================================
  // Public API
  // =========================================================================================

  public Role role() {
    return role;
  }

  /** The session id both sides agreed on in the handshake. */
  public UUID sessionId() {
    lock.lock();
    try {
      return sessionId;
    } finally {
      lock.unlock();
    }
  }

  /** The capability bits both sides offered (the intersection). */
  public int capabilities() {
    lock.lock();
    try {
      return capabilities;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Opens a file of the current image on the sender: {@code size} bytes to write, then close.
   * Waits while the peer's limit of open streams is reached.
   *
   * @param mode permission bits (0..07777), or 0 for none
   * @throws IllegalArgumentException for a bad name, size or mode, or a name already sent in the
   *     current image
   * @throws IllegalStateException on the receiver, or while {@link #endImage()} runs
   */
  public OutboundFile openFile(String name, long size, int mode) throws MigrationException {
    Names.checkLocal(name);
    if (size < 0) {
      throw new IllegalArgumentException("size < 0: " + size);
    }
    if (mode < 0 || mode > FrameCodec.MAX_MODE) {
      throw new IllegalArgumentException("mode outside 0..07777: 0" + Integer.toOctalString(mode));
    }
    lock.lock();
    try {
      if (role != Role.SENDER) {
        throw new IllegalStateException("only the sender opens files; this side is " + role);
      }
      waiters++;
      try {
        while (true) {
          throwIfUnusableLocked();
          if (endImageBusy) {
            throw new IllegalStateException(
                "image " + image + " is ending; open files after endImage() returns");
          }
          if (imageNames.contains(name)) {
            throw new IllegalArgumentException(
                "file already sent in image " + image + ": " + Names.quote(name));
          }
          if (localOpen < peerHello.maxOpenStreams()) {
            break;
          }
          awaitApp("a free stream");
        }
      } finally {
        waiters--;
      }
      StreamState s = newLocalStreamLocked(StreamState.Kind.FILE, name, size, mode, true, false);
      s.out.queue.add(new Frame.OpenFile(s.id, name, size, mode));
      markReadyLocked(s);
      imageNames.add(name);
      imageFiles++;
      imageBytes += size;
      imageStreams.add(s);
      return new OutboundFile(this, s);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Opens a tunnel (either side). Waits while the peer's limit of open streams is reached.
   *
   * @throws IllegalArgumentException for a bad name
   * @throws IllegalStateException if the peer does not support tunnels
   */
  public Tunnel openTunnel(String name) throws MigrationException {
    Names.checkLocal(name);
    lock.lock();
    try {
      waiters++;
      try {
        while (true) {
          throwIfUnusableLocked();
          if ((capabilities & FrameCodec.CAP_TUNNELS) == 0) {
            throw new IllegalStateException("tunnels were not agreed in the handshake");
          }
          if (localOpen < peerHello.maxOpenStreams()) {
            break;
          }
          awaitApp("a free stream");
        }
      } finally {
        waiters--;
      }
      StreamState s = newLocalStreamLocked(StreamState.Kind.TUNNEL, name, 0, 0, true, true);
      s.out.queue.add(new Frame.OpenTunnel(s.id, name));
      markReadyLocked(s);
      return new Tunnel(this, s);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Ends the current image on the sender: sends END_OF_IMAGE (after every file's END_OF_FILE)
   * and waits until the receiver acknowledges it. Later files belong to the next image.
   *
   * @return the acknowledged image
   * @throws IllegalStateException on the receiver, if a file of the image is still open, or if
   *     another endImage() runs
   */
  public ImageEnd endImage() throws MigrationException {
    lock.lock();
    try {
      if (role != Role.SENDER) {
        throw new IllegalStateException("only the sender ends images; this side is " + role);
      }
      throwIfUnusableLocked();
      if (endImageBusy) {
        throw new IllegalStateException("endImage() is already running for image " + image);
      }
      List<String> open = new ArrayList<>();
      for (StreamState s : imageStreams) {
        if (!s.out.finished) {
          open.add(Names.quote(s.name));
        }
      }
      if (!open.isEmpty()) {
        throw new IllegalStateException(
            "cannot end image " + image + ": files still open: " + String.join(", ", open));
      }
      endImageBusy = true;
      pendingEndImage = new Frame.EndOfImage(false, image, imageFiles, imageBytes);
      writerCond.signal();
      waiters++;
      try {
        while (endImageAck == null) {
          throwIfFailedLocked();
          if (peerGoodbye) {
            throw new TransportException(
                label + ": peer ended the connection before acknowledging image " + image);
          }
          awaitApp("the acknowledgement of image " + image);
        }
      } finally {
        waiters--;
      }
      Frame.EndOfImage ack = endImageAck;
      endImageAck = null;
      sentEndImage = null;
      endImageBusy = false;
      image++;
      imageNames.clear();
      imageFiles = 0;
      imageBytes = 0;
      imageStreams.clear();
      return new ImageEnd(ack.image(), ack.fileCount(), ack.totalBytes());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits for the next thing the peer opened or ended: an {@link InboundFile}, a {@link Tunnel},
   * or an {@link ImageEnd}, in the order the peer sent them.
   *
   * @return the next item, or {@code null} once the peer ended the connection (GOODBYE) and
   *     every item was returned
   */
  public Inbound accept() throws MigrationException {
    lock.lock();
    try {
      waiters++;
      try {
        while (true) {
          throwIfFailedLocked();
          Inbound next = acceptQueue.pollFirst();
          if (next != null) {
            return next;
          }
          if (peerGoodbye) {
            return null;
          }
          if (terminated || closeCalled) {
            throw new TransportException(label + ": connection closed");
          }
          awaitApp("the next stream");
        }
      } finally {
        waiters--;
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Acknowledges an image on the receiver (after storing it), which lets the sender's {@link
   * #endImage()} return.
   *
   * @throws IllegalArgumentException if {@code end} is not the image awaiting acknowledgement
   */
  public void acknowledgeImage(ImageEnd end) throws MigrationException {
    Objects.requireNonNull(end, "end");
    lock.lock();
    try {
      if (role != Role.RECEIVER) {
        throw new IllegalStateException("only the receiver acknowledges images; this is " + role);
      }
      throwIfFailedLocked();
      if (closeCalled || terminated) {
        throw new IllegalStateException(label + ": connection closed");
      }
      if (!end.equals(rxUnacked)) {
        throw new IllegalArgumentException(
            "not the image awaiting acknowledgement: " + end + " (awaiting " + rxUnacked + ")");
      }
      rxUnacked = null;
      if (peerGoodbye) {
        return; // the sender no longer listens; nothing to confirm
      }
      control.add(new Frame.EndOfImage(true, end.image(), end.fileCount(), end.totalBytes()));
      writerCond.signal();
    } finally {
      lock.unlock();
    }
  }

  /**
   * Aborts the connection: sends ERROR with {@code code} and {@code reason} to the peer (whose
   * calls then fail with that reason) and fails every call here. Does nothing if the connection
   * already failed or was closed.
   */
  public void sendError(ErrorCode code, String reason) {
    Objects.requireNonNull(code, "code");
    Objects.requireNonNull(reason, "reason");
    lock.lock();
    try {
      if (terminated || closeCalled) {
        return;
      }
      failLocked(
          new WireProtocolException(
              code.code(), false, reason, "aborted locally (" + code + "): " + reason, null),
          true);
    } finally {
      lock.unlock();
    }
  }

  /** The failure that ended the connection, if any. */
  public Optional<MigrationException> failure() {
    lock.lock();
    try {
      return Optional.ofNullable(failure);
    } finally {
      lock.unlock();
    }
  }

  /** Whether the connection is usable: handshake done, not failed, not closing. */
  public boolean isOpen() {
    lock.lock();
    try {
      return handshakeDone && failure == null && !closeCalled && !terminated;
    } finally {
      lock.unlock();
    }
  }

  public MuxStats stats() {
    return new MuxStats(
        framesSent, bytesSent, dataSent, framesReceived, bytesReceived, dataReceived);
  }

  /**
   * Ends the connection and waits (at most {@link MuxConfig#closeTimeout()}, plus a few seconds
   * for the threads) until its threads stopped and its channels are closed.
   *
   * <p>If every stream is finished, the end is graceful: GOODBYE is sent after everything queued,
   * and the channels are closed once the peer's GOODBYE arrived (or the timeout passed). If a
   * stream is still open, the peer gets an ERROR (CANCELLED) naming it. Blocked calls fail.
   * Idempotent; never throws.
   */
  @Override
  public void close() {
    lock.lock();
    try {
      if (!closeCalled) {
        closeCalled = true;
        closeDeadline = System.nanoTime() + closeNanos;
        if (failure == null && !terminated) {
          String open = describeOpenLocked();
          if (open != null) {
            failLocked(
                new WireProtocolException(
                    ErrorCode.CANCELLED, "connection closed with " + open + " still open"),
                true);
            lingerNanos = Math.min(lingerNanos, ABANDON_LINGER_NANOS);
          } else {
            goodbyeQueued = true;
            writerCond.signal();
          }
        }
        appCond.signalAll();
        watchdogCond.signal();
      }
    } finally {
      lock.unlock();
    }
    try {
      if (!terminatedLatch.await(closeNanos + TimeUnit.SECONDS.toNanos(10), TimeUnit.NANOSECONDS)) {
        log.warn("{}: threads did not stop in time", label);
      } else {
        join(watchdogThread); // it counts the latch down just before it ends
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "MuxConnection[" + label + "]";
  }

  // ---- test hooks

  /** Pooled buffers currently held (0 once a connection has terminated). */
  int buffersHeld() {
    return pool.outstanding();
  }

  /** Whether any of the connection's threads is still alive. */
  boolean threadsAlive() {
    return readerThread.isAlive() || writerThread.isAlive() || watchdogThread.isAlive();
  }

  /** Waits until the connection terminated (threads stopped, channels closed). */
  boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    return terminatedLatch.await(timeout, unit);
  }

  // =========================================================================================
  // Stream operations (called by OutboundFile, InboundFile, Tunnel)
  // =========================================================================================

  int write(StreamState s, ByteBuffer src) throws IOException {
    StreamState.Out o = requireOut(s);
    synchronized (o.writeMutex) {
      int total = src.remaining();
      lock.lock();
      try {
        throwIfFailedLocked();
        if (o.finished) {
          throw new ClosedChannelException();
        }
        if (s.kind == StreamState.Kind.FILE && o.written + total > s.size) {
          throw new IllegalArgumentException(
              "write of "
                  + total
                  + " bytes to "
                  + s.describe()
                  + " exceeds its announced size of "
                  + s.size
                  + " bytes ("
                  + o.written
                  + " written)");
        }
      } finally {
        lock.unlock();
      }
      while (src.hasRemaining()) {
        if (src.isDirect() && src.remaining() >= DIRECT_WRITE_MIN && writeDirect(s, src)) {
          continue;
        }
        StreamState.Chunk c = reserveOut(s, src.remaining());
        int n = c.free() < src.remaining() ? c.free() : src.remaining();
        ByteBuffer dst = c.buf.slice(c.writePos, n);
        int limit = src.limit();
        src.limit(src.position() + n);
        dst.put(src);
        src.limit(limit);
        publishOut(s, c, dst, n);
      }
      return total;
    }
  }

  /**
   * Writes the next part of {@code src} (a direct buffer) straight to the channel on the calling
   * thread, without copying it and without handing it to the writer thread. This is only done
   * while the stream is the only one with something to send, so the writer's round-robin is not
   * bypassed: it sends at most one batch's worth ({@link #MAX_BATCH_DATA_BYTES}, in frames of the
   * peer's maximum size), within the stream's and the connection's credit. If another stream has
   * data queued, another direct write runs, or no credit is left beyond what is queued, it
   * returns {@code false} and the caller copies into the send buffer as usual. While only the
   * writer thread stands in the way (it is sending this stream's queued bytes, control frames or
   * grants), it waits for it.
   *
   * @return whether bytes were written (and {@code src} advanced)
   */
  private boolean writeDirect(StreamState s, ByteBuffer src) throws IOException {
    StreamState.Out o = s.out;
    int n;
    int maxFrame;
    boolean ctrlFrames = false;
    lock.lock();
    try {
      while (true) {
        throwIfFailedLocked();
        if (terminated) {
          throw new TransportException(label + ": connection closed");
        }
        if (directBusy || ready.size() > (o.inReady ? 1 : 0)) {
          return false; // other streams: take turns through the writer thread
        }
        long credit = Math.min(o.credit, connSendCredit);
        if (o.queuedBytes >= credit) {
          return false; // no credit beyond the queued bytes: buffer (the peer may grant none)
        }
        if (channelFreeForDirectLocked(o)) {
          maxFrame = peerHello.maxFramePayload();
          n =
              (int)
                  Math.min(
                      Math.min(src.remaining(), credit),
                      Math.min(MAX_BATCH_DATA_BYTES, (long) maxFrame * MAX_BATCH_FRAMES));
          break;
        }
        // The writer thread is busy or has this stream's bytes or frames to send first.
        awaitChannelLocked("the channel, to write on " + s.describe());
      }
      ctrlFrames = claimChannelLocked(s, n);
    } finally {
      lock.unlock();
    }
    IOException failed = null;
    int parts = 0;
    long bytes = 0;
    int frames = 0;
    try {
      ByteBuffer data = src.slice(src.position(), n);
      if (s.kind == StreamState.Kind.FILE) {
        o.crc.update(data); // under writeMutex
        data.rewind();
      }
      if (ctrlFrames) {
        directGather[parts++] = directCtrl.flip();
        bytes += directCtrl.remaining();
      }
      for (int off = 0; off < n; off += maxFrame, frames++) {
        int len = Math.min(maxFrame, n - off);
        ByteBuffer header =
            directHeaders.clear().slice(frames * FrameCodec.HEADER_BYTES, FrameCodec.HEADER_BYTES);
        FrameCodec.putHeader(header, FrameType.DATA.code(), 0, 0, s.id, len);
        directGather[parts++] = header.flip();
        directGather[parts++] = data.slice(off, len);
      }
      bytes += n + (long) FrameCodec.HEADER_BYTES * frames;
      writeFully(out instanceof GatheringByteChannel g ? g : null, directGather, parts);
      src.position(src.position() + n);
    } catch (IOException e) {
      failed = e;
    } finally {
      Arrays.fill(directGather, 0, parts, null);
      // One gathering write: nothing of it counts unless all of it went out.
      releaseChannel(failed, failed == null ? frames : 0, failed == null ? bytes : 0, n);
    }
    return true;
  }

  /**
   * Whether the channel is free for a direct or spliced write of stream {@code o}: none of its
   * bytes queued, the writer thread idle and nothing for it to send first (control frames, an
   * END_OF_IMAGE, grants due, unless the peer said goodbye and needs none).
   */
  private boolean channelFreeForDirectLocked(StreamState.Out o) {
    return o.queuedBytes == 0
        && !channelBusy
        && control.isEmpty()
        && pendingEndImage == null
        && (peerGoodbye
            || (grantDirty.isEmpty() && connPendingGrant < connectionGrantThreshold));
  }

  /** Waits, as a direct writer, for the channel or credit to change. */
  private void awaitChannelLocked(String what) throws TransportException {
    waiters++;
    directWaiters++;
    try {
      awaitApp(what);
    } finally {
      waiters--;
      directWaiters--;
    }
  }

  /**
   * Claims the channel for a direct or spliced write of {@code total} data bytes on {@code s},
   * once {@link #channelFreeForDirectLocked} holds: takes the stream's queued frames into
   * {@link #directCtrl} (flipped by the caller), releases its chunks (all already sent), leaves
   * the writer's ready list, and takes the credit. Returns whether there are frames to send
   * first.
   */
  private boolean claimChannelLocked(StreamState s, int total) {
    StreamState.Out o = s.out;
    // This stream's queue holds no unsent bytes: only its OPEN frame, and chunks already sent
    // (the writer thread is not writing, so none is in flight).
    boolean ctrlFrames = false;
    directCtrl.clear();
    for (Object item; (item = o.queue.pollFirst()) != null; ) {
      if (item instanceof Frame f) {
        FrameCodec.encode(f, directCtrl);
        framesSent++;
        ctrlFrames = true;
      } else {
        pool.release(((StreamState.Chunk) item).buf);
      }
    }
    if (o.inReady) {
      o.inReady = false;
      ready.remove(s);
    }
    o.credit -= total;
    connSendCredit -= total;
    o.written += total;
    channelBusy = true;
    directBusy = true;
    writeStarted = System.nanoTime();
    return ctrlFrames;
  }

  /**
   * Gives the channel back after a direct or spliced write, counting {@code frames} and
   * {@code bytes} as sent, and {@code data} bytes of data if the write succeeded. A failed write
   * fails the connection and is rethrown as a {@link TransportException}.
   */
  private void releaseChannel(IOException failed, int frames, long bytes, int data)
      throws MigrationException {
    lock.lock();
    try {
      framesSent += frames;
      bytesSent += bytes;
      if (failed == null) {
        dataSent += data;
      }
      channelBusy = false;
      directBusy = false;
      writeStarted = 0;
      if (failed != null && !terminated && failure == null) {
        failLocked(new TransportException(label + ": write failed: " + failed, failed), false);
      }
      writerCond.signal();
      if (directWaiters > 0) {
        appCond.signalAll();
      }
      if (failed != null) {
        throwIfFailedLocked();
        throw new TransportException(label + ": connection closed", failed);
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * The socket under this connection's output for {@link #writeSpliced}, or {@code null} if the
   * output is not a plain socket (TLS, in-memory) or its descriptor is not accessible.
   */
  SocketFd spliceFd() {
    lock.lock();
    try {
      if (!spliceLookedUp) {
        spliceLookedUp = true;
        spliceFd = out instanceof SpliceTarget t ? t.spliceFd() : null;
        log.debug("{}: spliced writes {}", label, spliceFd != null ? "on" : "off");
      }
      return spliceFd;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Sends {@code prefix} (all of it, at most {@link #SPLICE_PREFIX_MAX} bytes) followed by the
   * first bytes that {@code pipe} holds, up to {@code n}, as DATA on tunnel {@code s}: the pipe's
   * bytes go from the pipe into the socket with {@code splice(2)}, without a copy in user space.
   * Only on a connection with a {@link #spliceFd()}.
   *
   * <p>Like {@link #writeDirect}, the calling thread writes to the socket itself, within the
   * stream's and the connection's credit (it waits for credit), in frames of the peer's maximum
   * size, at most {@link #MAX_BATCH_DATA_BYTES} per call, after this stream's queued bytes. When
   * other streams have something to send, the writer thread sends one batch of theirs between two
   * spliced writes, so the round-robin stays fair.
   *
   * @return how many of the pipe's bytes were sent (at least 1)
   */
  int writeSpliced(StreamState s, ByteBuffer prefix, SplicePipe pipe, int n) throws IOException {
    StreamState.Out o = requireOut(s);
    if (s.kind != StreamState.Kind.TUNNEL) {
      throw new IllegalStateException("spliced writes are for tunnels, not " + s.describe());
    }
    int prefixLen = prefix.remaining();
    if (prefixLen > SPLICE_PREFIX_MAX) {
      throw new IllegalArgumentException("prefix of " + prefixLen + " bytes exceeds "
          + SPLICE_PREFIX_MAX);
    }
    if (n <= 0 || n > pipe.buffered()) {
      throw new IllegalArgumentException("n outside 1.." + pipe.buffered() + ": " + n);
    }
    SocketFd fd = spliceFd();
    if (fd == null) {
      throw new IllegalStateException(label + ": spliced writes need a socket connection");
    }
    synchronized (o.writeMutex) {
      int maxFrame;
      int take;
      boolean ctrlFrames = false;
      lock.lock();
      try {
        while (true) {
          throwIfFailedLocked();
          if (terminated) {
            throw new TransportException(label + ": connection closed");
          }
          if (o.finished) {
            throw new ClosedChannelException();
          }
          boolean othersFirst = o.spliceBatchMark == writerBatches && othersSendableLocked(s);
          long credit = Math.min(o.credit, connSendCredit);
          if (!othersFirst && credit > prefixLen && channelFreeForDirectLocked(o)) {
            maxFrame = peerHello.maxFramePayload();
            take = (int) Math.min(Math.min(n, credit - prefixLen),
                MAX_BATCH_DATA_BYTES - prefixLen);
            break;
          }
          if (othersFirst || !control.isEmpty() || pendingEndImage != null
              || !grantDirty.isEmpty()) {
            writerCond.signal();
          }
          awaitChannelLocked("the channel or credit, to write on " + s.describe());
        }
        ctrlFrames = claimChannelLocked(s, prefixLen + take);
        o.spliceBatchMark = writerBatches;
      } finally {
        lock.unlock();
      }
      IOException failed = null;
      long bytes = 0;
      int frames = 0;
      int total = prefixLen + take;
      try {
        if (ctrlFrames) {
          bytes += directCtrl.flip().remaining();
          fd.send(directCtrl, true);
        }
        for (int sent = 0; sent < total; frames++) {
          int len = Math.min(maxFrame, total - sent);
          int fromPrefix = Math.min(prefix.remaining(), len);
          int fromPipe = len - fromPrefix;
          ByteBuffer head = spliceHead.clear();
          FrameCodec.putHeader(head, FrameType.DATA.code(), 0, 0, s.id, len);
          head.put(prefix.slice(prefix.position(), fromPrefix)).flip();
          prefix.position(prefix.position() + fromPrefix);
          fd.send(head, true);
          sent += len;
          if (fromPipe > 0) {
            fd.splice(pipe, fromPipe, sent < total);
          }
          bytes += FrameCodec.HEADER_BYTES + len;
        }
      } catch (IOException e) {
        failed = e;
      } finally {
        // Frame by frame: what went out before a failure counts.
        releaseChannel(failed, frames, bytes, total);
      }
      return take;
    }
  }

  /** Whether a stream other than {@code s} has a frame, or bytes and credit, to send. */
  private boolean othersSendableLocked(StreamState s) {
    for (StreamState r : ready) {
      if (r == s) {
        continue;
      }
      for (Object item : r.out.queue) {
        if (item instanceof Frame) {
          return true;
        }
        StreamState.Chunk c = (StreamState.Chunk) item;
        if (c.available() > 0) {
          if (Math.min(r.out.credit, connSendCredit) > 0) {
            return true;
          }
          break;
        }
        if (c.filling) {
          break; // the application is still filling it
        }
      }
    }
    return !control.isEmpty() || pendingEndImage != null;
  }

  long transferFrom(StreamState s, ReadableByteChannel src) throws IOException {
    StreamState.Out o = requireOut(s);
    synchronized (o.writeMutex) {
      long total = 0;
      while (true) {
        long room;
        lock.lock();
        try {
          throwIfFailedLocked();
          if (o.finished) {
            throw new ClosedChannelException();
          }
          room = s.kind == StreamState.Kind.FILE ? s.size - o.written : Long.MAX_VALUE;
        } finally {
          lock.unlock();
        }
        if (room == 0) {
          return total;
        }
        StreamState.Chunk c = reserveOut(s, room);
        int n = (int) Math.min(c.free(), room);
        ByteBuffer dst = c.buf.slice(c.writePos, n);
        int r;
        try {
          r = src.read(dst);
        } catch (IOException | RuntimeException e) {
          publishOut(s, c, dst, 0);
          throw e;
        }
        publishOut(s, c, dst, Math.max(r, 0));
        if (r < 0) {
          return total;
        }
        total += r;
      }
    }
  }

  /**
   * Waits for room in the stream's send buffer, then reserves the free tail of the last chunk
   * (or a new chunk) for filling outside the lock.
   */
  private StreamState.Chunk reserveOut(StreamState s, long wanted) throws IOException {
    StreamState.Out o = s.out;
    lock.lock();
    try {
      waiters++;
      try {
        while (true) {
          throwIfFailedLocked();
          if (o.queuedBytes < config.sendBufferPerStream()) {
            break;
          }
          awaitApp("send buffer space on " + s.describe());
        }
      } finally {
        waiters--;
      }
      StreamState.Chunk c = null;
      if (o.queue.peekLast() instanceof StreamState.Chunk last
          && !last.filling
          && last.free() > 0
          && (last.free() >= wanted || last.free() >= pool.bufferSize() / 4)) {
        c = last;
      }
      if (c == null) {
        c = new StreamState.Chunk(pool.take((int) Math.min(wanted, Integer.MAX_VALUE)));
        o.queue.addLast(c);
      }
      c.filling = true;
      return c;
    } finally {
      lock.unlock();
    }
  }

  /** Publishes {@code n} bytes filled into {@code c} at its write position. */
  private void publishOut(StreamState s, StreamState.Chunk c, ByteBuffer filled, int n)
      throws IOException {
    StreamState.Out o = s.out;
    if (n > 0 && s.kind == StreamState.Kind.FILE) {
      o.crc.update(filled.flip()); // under writeMutex
    }
    lock.lock();
    try {
      c.filling = false;
      if (terminated) {
        throwIfFailedLocked();
        throw new TransportException(label + ": connection closed");
      }
      if (n > 0) {
        c.writePos += n;
        o.queuedBytes += n;
        o.written += n;
        markReadyLocked(s);
        writerCond.signal();
      } else if (c.writePos == 0 && o.queue.peekLast() == c) {
        o.queue.pollLast(); // reserved, never filled
        pool.release(c.buf);
      }
    } finally {
      lock.unlock();
    }
  }

  /** Sends END_OF_FILE (files) or END_OF_STREAM (tunnels). Idempotent. */
  void finishOutbound(StreamState s) {
    StreamState.Out o = requireOut(s);
    synchronized (o.writeMutex) {
      lock.lock();
      try {
        if (o.finished) {
          return;
        }
        o.finished = true;
        if (failure != null || terminated) {
          return;
        }
        if (s.kind == StreamState.Kind.FILE) {
          if (o.written != s.size) {
            String msg =
                s.describe() + " closed after " + o.written + " of its " + s.size + " bytes";
            failLocked(new WireProtocolException(ErrorCode.CANCELLED, msg), true);
            throw new IllegalStateException(msg);
          }
          o.queue.addLast(new Frame.EndOfFile(s.id, (int) o.crc.getValue()));
        } else {
          o.queue.addLast(new Frame.EndOfStream(s.id));
        }
        markReadyLocked(s);
        writerCond.signal();
      } finally {
        lock.unlock();
      }
    }
  }

  long written(StreamState s) {
    lock.lock();
    try {
      return requireOut(s).written;
    } finally {
      lock.unlock();
    }
  }

  boolean isOutboundOpen(StreamState s) {
    lock.lock();
    try {
      return s.out != null && !s.out.finished && failure == null && !terminated;
    } finally {
      lock.unlock();
    }
  }

  boolean isInboundOpen(StreamState s) {
    lock.lock();
    try {
      return s.in != null && !s.in.closedByApp && failure == null && !terminated;
    } finally {
      lock.unlock();
    }
  }

  int read(StreamState s, ByteBuffer dst) throws IOException {
    StreamState.In i = requireIn(s);
    synchronized (i.readMutex) {
      if (!dst.hasRemaining()) {
        lock.lock();
        try {
          throwIfFailedLocked();
          return 0;
        } finally {
          lock.unlock();
        }
      }
      StreamState.Chunk c = awaitInbound(s);
      if (c == null) {
        return -1;
      }
      int n;
      int pos;
      lock.lock();
      try {
        pos = c.readPos;
        n = Math.min(dst.remaining(), c.available());
      } finally {
        lock.unlock();
      }
      dst.put(c.buf.slice(pos, n));
      consumeInbound(s, c, n, false);
      return n;
    }
  }

  long transferTo(StreamState s, WritableByteChannel target) throws IOException {
    StreamState.In i = requireIn(s);
    synchronized (i.readMutex) {
      long total = 0;
      while (true) {
        StreamState.Chunk c = awaitInbound(s);
        if (c == null) {
          return total;
        }
        ByteBuffer src;
        lock.lock();
        try {
          src = c.buf.slice(c.readPos, c.available());
        } finally {
          lock.unlock();
        }
        int n = src.remaining();
        while (src.hasRemaining()) {
          target.write(src);
        }
        consumeInbound(s, c, n, true);
        total += n;
      }
    }
  }

  /**
   * Waits until the stream's first chunk has bytes; returns it, or {@code null} at the verified
   * end of the stream.
   */
  private StreamState.Chunk awaitInbound(StreamState s) throws IOException {
    StreamState.In i = s.in;
    lock.lock();
    try {
      waiters++;
      try {
        while (true) {
          throwIfFailedLocked();
          if (i.closedByApp) {
            throw new ClosedChannelException();
          }
          if (terminated) {
            throw new TransportException(label + ": connection closed");
          }
          StreamState.Chunk c = i.chunks.peekFirst();
          if (c != null && c.available() > 0) {
            return c;
          }
          if (i.ended && i.buffered == 0) {
            return null;
          }
          awaitApp("data on " + s.describe());
        }
      } finally {
        waiters--;
      }
    } finally {
      lock.unlock();
    }
  }

  private void consumeInbound(StreamState s, StreamState.Chunk c, int n, boolean grant)
      throws IOException {
    StreamState.In i = s.in;
    lock.lock();
    try {
      if (terminated) {
        return; // the buffers were released with everything else
      }
      c.readPos += n;
      i.buffered -= n;
      if (c.available() == 0 && !c.filling && i.chunks.peekFirst() == c) {
        i.chunks.pollFirst();
        pool.release(c.buf);
      }
      if (grant && failure == null) {
        grantLocked(s, n);
      }
      pruneLocked(s);
    } finally {
      lock.unlock();
    }
  }

  void grant(StreamState s, long bytes) throws IOException {
    StreamState.In i = requireIn(s);
    if (bytes <= 0) {
      throw new IllegalArgumentException("grant must be positive: " + bytes);
    }
    lock.lock();
    try {
      throwIfFailedLocked();
      long grantable = i.received - i.granted;
      if (bytes > grantable) {
        throw new IllegalArgumentException(
            "grant of "
                + bytes
                + " bytes on "
                + s.describe()
                + " exceeds the "
                + grantable
                + " bytes received and not yet granted");
      }
      grantLocked(s, bytes);
    } finally {
      lock.unlock();
    }
  }

  private void grantLocked(StreamState s, long bytes) {
    StreamState.In i = s.in;
    i.granted += bytes;
    connRecvWindow += bytes;
    connPendingGrant += bytes;
    if (!i.ended) {
      i.window += bytes;
      i.pendingGrant += bytes;
      if (!i.grantDirty && i.pendingGrant >= streamGrantThreshold) {
        i.grantDirty = true;
        grantDirty.addLast(s);
        writerCond.signal();
      }
    }
    if (connPendingGrant >= connectionGrantThreshold) {
      writerCond.signal();
    }
  }

  void closeInbound(StreamState s) {
    StreamState.In i = requireIn(s);
    lock.lock();
    try {
      if (i.closedByApp) {
        return;
      }
      i.closedByApp = true;
      long dropped = dropInboundLocked(s);
      if (failure == null && !terminated && dropped > 0) {
        grantLocked(s, Math.min(dropped, i.received - i.granted));
      }
      pruneLocked(s);
      appCond.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Drops the buffered bytes of a stream the application closed; returns how many. */
  private long dropInboundLocked(StreamState s) {
    StreamState.In i = s.in;
    long dropped = i.buffered;
    for (var it = i.chunks.iterator(); it.hasNext(); ) {
      StreamState.Chunk c = it.next();
      c.readPos = c.writePos;
      if (!c.filling) {
        it.remove();
        pool.release(c.buf);
      }
    }
    i.buffered = 0;
    return dropped;
  }

  private static StreamState.Out requireOut(StreamState s) {
    if (s.out == null) {
      throw new IllegalStateException("this side does not send on " + s.describe());
    }
    return s.out;
  }

  private static StreamState.In requireIn(StreamState s) {
    if (s.in == null) {
      throw new IllegalStateException("this side does not receive on " + s.describe());
    }
    return s.in;
  }

  // =========================================================================================
  // Streams and state (lock held)
  // =========================================================================================

  private StreamState newLocalStreamLocked(
      StreamState.Kind kind, String name, long size, int mode, boolean sends, boolean receives)
      throws MigrationException {
    if (nextLocalId <= 0) {
      throw new MigrationException(label + ": stream ids exhausted");
    }
    int id = nextLocalId;
    nextLocalId += 2;
    StreamState s = new StreamState(id, kind, name, true, size, mode, image, sends, receives);
    if (sends) {
      s.out.credit = peerHello.initialStreamWindow();
    }
    if (receives) {
      s.in.window = config.initialStreamWindow();
    }
    streams.put(id, s);
    live.add(s);
    localOpen++;
    return s;
  }

  private void markReadyLocked(StreamState s) {
    if (!s.out.inReady) {
      s.out.inReady = true;
      ready.addLast(s);
    }
    writerCond.signal();
  }

  /** Removes a stream whose directions have both ended from the routing table. */
  private void maybeRetireLocked(StreamState s) {
    if (s.retired) {
      return;
    }
    if ((s.out == null || s.out.drained) && (s.in == null || s.in.ended)) {
      s.retired = true;
      streams.remove(s.id);
      if (s.localOpened) {
        localOpen--;
        appCond.signalAll();
      } else {
        peerOpen--;
      }
      pruneLocked(s);
    }
  }

  private void pruneLocked(StreamState s) {
    if (s.retired
        && (s.in == null || s.in.chunks.isEmpty())
        && (s.out == null || s.out.queue.isEmpty())) {
      live.remove(s);
    }
  }

  private String describeOpenLocked() {
    List<String> open = new ArrayList<>();
    for (StreamState s : streams.values()) {
      // Finished by the application but not yet sent is not open: GOODBYE waits for it.
      boolean sending = s.out != null && !s.out.finished;
      boolean receiving = s.in != null && !s.in.ended;
      if (!sending && !receiving) {
        continue;
      }
      open.add(s.describe());
      if (open.size() == 5) {
        open.add("...");
        break;
      }
    }
    if (endImageBusy) {
      open.add("the end of image " + image);
    }
    return open.isEmpty() ? null : String.join(", ", open);
  }

  private boolean isPeerStreamId(int id) {
    // The sender opens odd ids, the receiver even ones.
    boolean odd = (id & 1) == 1;
    return role == Role.RECEIVER ? odd : !odd;
  }

  private void throwIfFailedLocked() throws MigrationException {
    if (failure != null) {
      throw copy(failure);
    }
  }

  private void throwIfUnusableLocked() throws MigrationException {
    throwIfFailedLocked();
    if (closeCalled || terminated) {
      throw new IllegalStateException(label + ": connection closed");
    }
    if (peerGoodbye) {
      throw new TransportException(label + ": peer ended the connection (GOODBYE)");
    }
  }

  private static MigrationException copy(MigrationException e) {
    if (e instanceof WireProtocolException w) {
      return w.copy();
    }
    if (e instanceof TransportException) {
      return new TransportException(e.getMessage(), e.errno(), e);
    }
    if (e instanceof ProtocolException) {
      return new ProtocolException(e.getMessage(), e);
    }
    return new MigrationException(e.getMessage(), e.errno(), e);
  }

  private void awaitApp(String what) throws TransportException {
    try {
      appCond.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new TransportException(label + ": interrupted while waiting for " + what, e);
    }
  }

  /**
   * Records the first failure and wakes everyone. With {@code tellPeer}, an ERROR frame is sent
   * and the connection lingers (draining input) until the peer closes or the close timeout
   * passes, so the peer reads the ERROR rather than a reset; otherwise it terminates now.
   */
  private void failLocked(MigrationException e, boolean tellPeer) {
    if (failure != null || terminated) {
      return;
    }
    failure = e;
    failedAt = System.nanoTime();
    if (tellPeer) {
      int code;
      String reason;
      if (e instanceof WireProtocolException w) {
        code = w.codeValue();
        reason = w.reason();
      } else {
        code = ErrorCode.STALLED.code();
        reason = e.getMessage();
      }
      errorToSend = new Frame.ErrorFrame(0, code, reason);
      lingering = true;
    }
    log.debug("{}: failed: {}", label, e.getMessage());
    appCond.signalAll();
    writerCond.signalAll();
    watchdogCond.signalAll();
  }

  private void terminateLocked() {
    if (terminated) {
      return;
    }
    terminated = true;
    appCond.signalAll();
    writerCond.signalAll();
    watchdogCond.signalAll();
  }

  // =========================================================================================
  // Reader thread
  // =========================================================================================

  private void readLoop() {
    FrameReader reader = new FrameReader(in, true);
    ByteBuffer scratch = ByteBuffer.allocateDirect(config.maxFramePayload());
    try {
      try {
        readFrames(reader, scratch);
      } catch (WireProtocolException e) {
        lock.lock();
        try {
          failLocked(e, true);
        } finally {
          lock.unlock();
        }
        // The rest of the input cannot be parsed; discard it until the peer closes, so that
        // closing here does not reset the connection before the peer read the ERROR.
        while (in.read(scratch.clear()) >= 0) {
          // discard
        }
        markInputEnded();
      }
    } catch (IOException e) {
      lock.lock();
      try {
        if (!terminated && failure == null) {
          failLocked(new TransportException(label + ": read failed: " + e, e), false);
        }
      } finally {
        lock.unlock();
      }
      markInputEnded();
    } catch (RuntimeException | Error e) {
      log.error("{}: reader crashed", label, e);
      lock.lock();
      try {
        failLocked(
            new WireProtocolException(ErrorCode.INTERNAL, "internal error in the reader: " + e),
            true);
      } finally {
        lock.unlock();
      }
      markInputEnded();
      throw e;
    }
  }

  private void readFrames(FrameReader reader, ByteBuffer scratch) throws IOException {
    boolean first = true;
    while (true) {
      FrameCodec.Header h = reader.readHeader(config.maxFramePayload(), first);
      first = false;
      if (h == null) {
        onInputEnd();
        return;
      }
      int wire = FrameCodec.HEADER_BYTES + h.length();
      if (!acceptingFrames()) {
        // Draining after a failure until the peer closes; its ERROR (it failed too) or its
        // GOODBYE means nothing more will come.
        reader.skipPayload(h);
        if (h.type() == FrameType.ERROR || h.type() == FrameType.GOODBYE) {
          markInputEnded();
          return;
        }
      } else if (h.type() == FrameType.DATA) {
        onData(reader, h, scratch);
        dataReceived += h.length();
      } else {
        Frame f = reader.readFrame(h); // a decode error propagates: framing is lost
        try {
          onControl(f);
        } catch (WireProtocolException e) {
          failFromReader(e); // framing is intact: keep draining frame by frame
        }
      }
      framesReceived++;
      bytesReceived += wire;
    }
  }

  private void failFromReader(WireProtocolException e) {
    lock.lock();
    try {
      failLocked(e, true);
    } finally {
      lock.unlock();
    }
  }

  private void markInputEnded() {
    lock.lock();
    try {
      inputEnded = true;
      watchdogCond.signal();
    } finally {
      lock.unlock();
    }
  }

  /** Notes the arrival of a frame; false if frames are only drained now. */
  private boolean acceptingFrames() {
    lock.lock();
    try {
      lastReceived = System.nanoTime();
      return failure == null && !terminated;
    } finally {
      lock.unlock();
    }
  }

  private void onInputEnd() {
    lock.lock();
    try {
      inputEnded = true;
      if (failure == null && !terminated && !peerGoodbye) {
        failLocked(
            new TransportException(label + ": peer closed the connection without GOODBYE"),
            false);
      }
      watchdogCond.signal();
    } finally {
      lock.unlock();
    }
  }

  private void onData(FrameReader reader, FrameCodec.Header h, ByteBuffer scratch)
      throws IOException {
    int len = h.length();
    StreamState s;
    StreamState.Chunk c = null;
    ByteBuffer target;
    lock.lock();
    try {
      s = checkDataLocked(h);
      if (s == null) {
        target = null;
      } else {
        StreamState.In i = s.in;
        i.window -= len;
        connRecvWindow -= len;
        i.received += len;
        if (i.closedByApp) {
          target = scratch.clear().limit(len);
        } else {
          StreamState.Chunk last = i.chunks.peekLast();
          if (last != null && last.free() >= len) {
            c = last;
          } else {
            c = new StreamState.Chunk(pool.take(len));
            i.chunks.addLast(c);
          }
          c.filling = true;
          target = c.buf.slice(c.writePos, len);
        }
      }
    } finally {
      lock.unlock();
    }
    if (s == null) {
      reader.skipPayload(h); // rejected; the framing is intact
      return;
    }
    reader.readPayload(h, target);
    if (s.kind == StreamState.Kind.FILE) {
      s.in.crc.update(target.flip()); // reader thread only
    }
    lock.lock();
    try {
      if (terminated) {
        return;
      }
      StreamState.In i = s.in;
      if (c == null) {
        if (failure == null) {
          grantLocked(s, len);
        }
        return;
      }
      c.filling = false;
      c.writePos += len;
      if (i.closedByApp) {
        long dropped = dropInboundLocked(s) + len;
        if (failure == null) {
          grantLocked(s, Math.min(dropped, i.received - i.granted));
        }
      } else {
        i.buffered += len;
        appCond.signalAll();
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Checks a DATA header against the stream's state and credit. Returns the stream, or null
   * after failing the connection (the payload is then skipped: framing is intact).
   */
  private StreamState checkDataLocked(FrameCodec.Header h) {
    int len = h.length();
    try {
      checkStreamFrameLocked(FrameType.DATA);
      StreamState s = peerStreamLocked(h.streamId(), FrameType.DATA);
      StreamState.In i = s.in;
      if (i == null) {
        throw streamState("DATA on " + s.describe() + ", on which only this side sends");
      }
      if (i.ended) {
        throw streamState("DATA after the end of " + s.describe());
      }
      if (len > i.window) {
        throw new WireProtocolException(
            ErrorCode.FLOW_CONTROL,
            "DATA of " + len + " bytes on " + s.describe() + " exceeds its credit of "
                + i.window + " bytes");
      }
      if (len > connRecvWindow) {
        throw new WireProtocolException(
            ErrorCode.FLOW_CONTROL,
            "DATA of " + len + " bytes on " + s.describe()
                + " exceeds the connection credit of " + connRecvWindow + " bytes");
      }
      if (s.kind == StreamState.Kind.FILE && i.received + len > s.size) {
        throw new WireProtocolException(
            ErrorCode.SIZE_MISMATCH,
            s.describe() + ": more bytes than announced: DATA brings it to "
                + (i.received + len) + " bytes, announced size " + s.size);
      }
      return s;
    } catch (WireProtocolException e) {
      failLocked(e, true);
      return null;
    }
  }

  private void onControl(Frame f) throws WireProtocolException {
    lock.lock();
    try {
      if (f instanceof Frame.ErrorFrame e) {
        failLocked(WireProtocolException.fromPeer(e.code(), e.reason()), false);
        return;
      }
      if (f instanceof Frame.Hello h) {
        onHelloLocked(h);
        return;
      }
      if (f instanceof Frame.Accept a) {
        onAcceptLocked(a);
        return;
      }
      if (!handshakeDone) {
        throw protocol(f.type() + " before the handshake completed");
      }
      if (peerGoodbye) {
        throw protocol(f.type() + " after GOODBYE");
      }
      if (f instanceof Frame.OpenFile o) {
        onOpenFileLocked(o);
      } else if (f instanceof Frame.EndOfFile e) {
        onEndOfFileLocked(e);
      } else if (f instanceof Frame.OpenTunnel t) {
        onOpenTunnelLocked(t);
      } else if (f instanceof Frame.EndOfStream e) {
        StreamState s = peerStreamLocked(e.streamId(), FrameType.END_OF_STREAM);
        if (s.kind != StreamState.Kind.TUNNEL || s.in == null) {
          throw streamState("END_OF_STREAM on " + s.describe() + ", which is not a tunnel");
        }
        if (s.in.ended) {
          throw streamState("second END_OF_STREAM on " + s.describe());
        }
        s.in.ended = true;
        appCond.signalAll();
        maybeRetireLocked(s);
      } else if (f instanceof Frame.WindowUpdate w) {
        onWindowUpdateLocked(w);
      } else if (f instanceof Frame.EndOfImage e) {
        onEndOfImageLocked(e);
      } else if (f instanceof Frame.Ping p) {
        if (!goodbyeQueued) {
          control.add(new Frame.Pong(p.opaque()));
          writerCond.signal();
        }
      } else if (f instanceof Frame.Pong) {
        pingOutstanding = false;
      } else if (f instanceof Frame.Goodbye) {
        if (!streams.isEmpty()) {
          throw protocol("GOODBYE while " + describeOpenLocked() + " still open");
        }
        peerGoodbye = true;
        appCond.signalAll();
        watchdogCond.signal();
      } else {
        throw protocol("unexpected " + f.type() + " frame");
      }
    } finally {
      lock.unlock();
    }
  }

  private void onHelloLocked(Frame.Hello h) throws WireProtocolException {
    if (peerHello != null) {
      throw protocol("second HELLO");
    }
    if (h.role() == role) {
      throw new WireProtocolException(
          ErrorCode.ROLE_CONFLICT, "both sides are " + role + "s; one must be the "
              + role.opposite());
    }
    UUID zero = new UUID(0, 0);
    if (role == Role.RECEIVER) {
      if (h.sessionId().equals(zero)) {
        throw new WireProtocolException(
            ErrorCode.SESSION_MISMATCH, "the sender's HELLO has no session id");
      }
      if (config.sessionId() != null && !config.sessionId().equals(h.sessionId())) {
        throw new WireProtocolException(
            ErrorCode.SESSION_MISMATCH,
            "session id mismatch: sender offers " + h.sessionId() + ", receiver expects "
                + config.sessionId());
      }
    } else if (!h.sessionId().equals(zero) && !h.sessionId().equals(config.sessionId())) {
      throw new WireProtocolException(
          ErrorCode.SESSION_MISMATCH,
          "session id mismatch: receiver expects " + h.sessionId() + ", sender offers "
              + config.sessionId());
    }
    peerHello = h;
    connSendCredit = h.initialConnectionWindow();
    capabilities = config.capabilities() & h.capabilities();
    if (role == Role.RECEIVER) {
      sessionId = h.sessionId();
      control.add(new Frame.Accept(FrameCodec.PROTOCOL_VERSION, capabilities, sessionId));
      writerCond.signal();
      handshakeDone = true;
      appCond.signalAll();
    }
  }

  private void onAcceptLocked(Frame.Accept a) throws WireProtocolException {
    if (role == Role.RECEIVER) {
      throw protocol("ACCEPT from the sender");
    }
    if (peerHello == null) {
      throw protocol("ACCEPT before HELLO");
    }
    if (handshakeDone) {
      throw protocol("second ACCEPT");
    }
    if (!a.sessionId().equals(sessionId)) {
      throw new WireProtocolException(
          ErrorCode.SESSION_MISMATCH,
          "ACCEPT for session " + a.sessionId() + ", not " + sessionId);
    }
    if ((a.capabilities() & ~capabilities) != 0) {
      throw protocol(
          String.format(
              "ACCEPT with capabilities 0x%x beyond those both offered (0x%x)",
              a.capabilities(), capabilities));
    }
    capabilities = a.capabilities();
    handshakeDone = true;
    appCond.signalAll();
  }

  private void checkStreamFrameLocked(FrameType type) throws WireProtocolException {
    if (!handshakeDone) {
      throw protocol(type + " before the handshake completed");
    }
    if (peerGoodbye) {
      throw protocol(type + " after GOODBYE");
    }
  }

  /** The open stream a peer's frame refers to. */
  private StreamState peerStreamLocked(int id, FrameType type) throws WireProtocolException {
    StreamState s = streams.get(id);
    if (s != null) {
      return s;
    }
    boolean used = isPeerStreamId(id) ? id <= lastPeerId : id < nextLocalId;
    throw streamState(type + " on " + (used ? "closed" : "unknown") + " stream " + id);
  }

  private void checkNewPeerStreamLocked(int id, FrameType type) throws WireProtocolException {
    if (!isPeerStreamId(id)) {
      throw streamState(
          type + " with stream id " + id + ", which belongs to this side (" + role
              + "s use " + (role == Role.SENDER ? "odd" : "even") + " ids)");
    }
    if (id <= lastPeerId) {
      throw streamState(type + " reuses stream id " + id + " (last opened " + lastPeerId + ")");
    }
    if (peerOpen >= config.maxOpenStreams()) {
      throw new WireProtocolException(
          ErrorCode.RESOURCE_LIMIT,
          type + " on stream " + id + " exceeds the limit of " + config.maxOpenStreams()
              + " open streams");
    }
  }

  private void onOpenFileLocked(Frame.OpenFile o) throws WireProtocolException {
    if (role != Role.RECEIVER) {
      throw protocol("OPEN_FILE from the receiver (only the sender sends files)");
    }
    checkNewPeerStreamLocked(o.streamId(), FrameType.OPEN_FILE);
    if (rxNames.contains(o.name())) {
      throw new WireProtocolException(
          ErrorCode.DUPLICATE_FILE,
          "file sent twice: " + Names.quote(o.name()) + " (image " + rxImage + ")");
    }
    lastPeerId = o.streamId();
    peerOpen++;
    rxNames.add(o.name());
    rxFiles++;
    StreamState s =
        new StreamState(
            o.streamId(), StreamState.Kind.FILE, o.name(), false, o.size(), o.mode(), rxImage,
            false, true);
    s.in.window = config.initialStreamWindow();
    streams.put(s.id, s);
    live.add(s);
    acceptQueue.addLast(new InboundFile(this, s));
    appCond.signalAll();
  }

  private void onEndOfFileLocked(Frame.EndOfFile e) throws WireProtocolException {
    StreamState s = peerStreamLocked(e.streamId(), FrameType.END_OF_FILE);
    if (s.kind != StreamState.Kind.FILE || s.in == null) {
      throw streamState("END_OF_FILE on " + s.describe() + ", which is not a file");
    }
    StreamState.In i = s.in;
    if (i.received != s.size) {
      throw new WireProtocolException(
          ErrorCode.SIZE_MISMATCH,
          s.describe() + ": fewer bytes than announced: END_OF_FILE after " + i.received
              + " bytes, announced size " + s.size);
    }
    int actual = (int) i.crc.getValue();
    if (actual != e.crc32c()) {
      throw new WireProtocolException(
          ErrorCode.CHECKSUM_MISMATCH,
          String.format(
              "checksum mismatch for file %s: sender's CRC32C 0x%08x, received data 0x%08x",
              Names.quote(s.name), e.crc32c(), actual));
    }
    i.ended = true;
    rxBytes += s.size;
    appCond.signalAll();
    maybeRetireLocked(s);
  }

  private void onOpenTunnelLocked(Frame.OpenTunnel t) throws WireProtocolException {
    if ((capabilities & FrameCodec.CAP_TUNNELS) == 0) {
      throw protocol("OPEN_TUNNEL, but tunnels were not agreed in the handshake");
    }
    checkNewPeerStreamLocked(t.streamId(), FrameType.OPEN_TUNNEL);
    lastPeerId = t.streamId();
    peerOpen++;
    StreamState s =
        new StreamState(
            t.streamId(), StreamState.Kind.TUNNEL, t.name(), false, 0, 0, 0, true, true);
    s.in.window = config.initialStreamWindow();
    s.out.credit = peerHello.initialStreamWindow();
    streams.put(s.id, s);
    live.add(s);
    acceptQueue.addLast(new Tunnel(this, s));
    appCond.signalAll();
  }

  private void onWindowUpdateLocked(Frame.WindowUpdate w) throws WireProtocolException {
    if (w.streamId() == 0) {
      connSendCredit += w.increment();
      if (connSendCredit > MAX_WINDOW) {
        throw new WireProtocolException(
            ErrorCode.FLOW_CONTROL,
            "connection window overflow: " + connSendCredit + " > " + MAX_WINDOW);
      }
      if (!ready.isEmpty()) {
        writerCond.signal(); // queued bytes may wait for this credit
      }
      if (directWaiters > 0) {
        appCond.signalAll(); // a spliced write may wait for this credit
      }
      return;
    }
    StreamState s = streams.get(w.streamId());
    if (s == null) {
      boolean used =
          isPeerStreamId(w.streamId()) ? w.streamId() <= lastPeerId : w.streamId() < nextLocalId;
      if (used) {
        return; // credit for a stream that ended meanwhile
      }
      throw streamState("WINDOW_UPDATE on unknown stream " + w.streamId());
    }
    if (s.out == null) {
      throw streamState("WINDOW_UPDATE on " + s.describe() + ", on which this side does not send");
    }
    s.out.credit += w.increment();
    if (s.out.credit > MAX_WINDOW) {
      throw new WireProtocolException(
          ErrorCode.FLOW_CONTROL,
          "window overflow on " + s.describe() + ": " + s.out.credit + " > " + MAX_WINDOW);
    }
    if (s.out.inReady) {
      writerCond.signal(); // its queued bytes may wait for this credit
    }
    if (directWaiters > 0) {
      appCond.signalAll(); // a spliced write may wait for this credit
    }
  }

  private void onEndOfImageLocked(Frame.EndOfImage e) throws WireProtocolException {
    if (e.ack()) {
      if (role != Role.SENDER || sentEndImage == null) {
        throw protocol("unexpected END_OF_IMAGE acknowledgement for image " + e.image());
      }
      Frame.EndOfImage sent = sentEndImage;
      if (e.image() != sent.image()
          || e.fileCount() != sent.fileCount()
          || e.totalBytes() != sent.totalBytes()) {
        throw new WireProtocolException(
            ErrorCode.IMAGE_MISMATCH,
            "receiver acknowledged image " + e.image() + " with " + e.fileCount() + " files / "
                + e.totalBytes() + " bytes; sent image " + sent.image() + " with "
                + sent.fileCount() + " files / " + sent.totalBytes() + " bytes");
      }
      endImageAck = e;
      appCond.signalAll();
      return;
    }
    if (role != Role.RECEIVER) {
      throw protocol("END_OF_IMAGE from the receiver (only the sender ends images)");
    }
    if (rxUnacked != null) {
      throw protocol("END_OF_IMAGE before image " + rxUnacked.image() + " was acknowledged");
    }
    if (e.image() != rxImage) {
      throw new WireProtocolException(
          ErrorCode.IMAGE_MISMATCH,
          "END_OF_IMAGE for image " + e.image() + ", expected image " + rxImage);
    }
    for (StreamState s : streams.values()) {
      if (s.kind == StreamState.Kind.FILE) {
        throw new WireProtocolException(
            ErrorCode.IMAGE_MISMATCH,
            "END_OF_IMAGE " + e.image() + " while " + s.describe() + " is still open");
      }
    }
    if (e.fileCount() != rxFiles || e.totalBytes() != rxBytes) {
      throw new WireProtocolException(
          ErrorCode.IMAGE_MISMATCH,
          "END_OF_IMAGE " + e.image() + " announces " + e.fileCount() + " files / "
              + e.totalBytes() + " bytes, received " + rxFiles + " files / " + rxBytes
              + " bytes");
    }
    ImageEnd end = new ImageEnd(e.image(), e.fileCount(), e.totalBytes());
    rxUnacked = end;
    acceptQueue.addLast(end);
    rxImage++;
    rxNames.clear();
    rxFiles = 0;
    rxBytes = 0;
    appCond.signalAll();
  }

  private static WireProtocolException protocol(String message) {
    return new WireProtocolException(ErrorCode.PROTOCOL_ERROR, message);
  }

  private static WireProtocolException streamState(String message) {
    return new WireProtocolException(ErrorCode.STREAM_STATE, message);
  }

  // =========================================================================================
  // Writer thread
  // =========================================================================================

  private void writeLoop() {
    ByteBuffer ctrl = ByteBuffer.allocateDirect(CONTROL_BUFFER_BYTES);
    ByteBuffer headerBytes =
        ByteBuffer.allocateDirect(FrameCodec.HEADER_BYTES * MAX_BATCH_FRAMES);
    ByteBuffer[] headers = new ByteBuffer[MAX_BATCH_FRAMES];
    for (int i = 0; i < MAX_BATCH_FRAMES; i++) {
      headers[i] = headerBytes.slice(i * FrameCodec.HEADER_BYTES, FrameCodec.HEADER_BYTES);
    }
    ByteBuffer[] gather = new ByteBuffer[1 + 2 * MAX_BATCH_FRAMES];
    GatheringByteChannel gathering = out instanceof GatheringByteChannel g ? g : null;
    Batch batch = new Batch();
    try {
      while (true) {
        batch.reset();
        ctrl.clear();
        lock.lock();
        try {
          if (!collectLocked(ctrl, batch)) {
            return;
          }
          channelBusy = true;
          writeStarted = System.nanoTime();
        } finally {
          lock.unlock();
        }
        ctrl.flip();
        long bytes = ctrl.remaining();
        long data = 0;
        int parts = 0;
        if (ctrl.hasRemaining()) {
          gather[parts++] = ctrl;
        }
        for (int i = 0; i < batch.count; i++) {
          ByteBuffer payload = batch.payloads[i];
          ByteBuffer header = headers[i].clear();
          FrameCodec.putHeader(
              header, FrameType.DATA.code(), 0, 0, batch.streams[i], payload.remaining());
          gather[parts++] = header.flip();
          gather[parts++] = payload;
          data += payload.remaining();
        }
        bytes += data + (long) FrameCodec.HEADER_BYTES * batch.count;
        writeFully(gathering, gather, parts);
        framesSent += batch.frames + batch.count;
        bytesSent += bytes;
        dataSent += data;
        lock.lock();
        try {
          writeStarted = 0;
          channelBusy = false;
          writerBatches++;
          batch.releaseDone(pool);
          if (batch.error) {
            errorFlushed = true; // the ERROR is out; linger until the peer closes
            watchdogCond.signal();
          }
          if (batch.goodbye) {
            goodbyeWritten = true;
            watchdogCond.signal();
          }
          if (batch.count > 0 || directWaiters > 0) {
            appCond.signalAll(); // send buffer space, or the channel for a direct write
          }
        } finally {
          lock.unlock();
        }
        Arrays.fill(gather, 0, parts, null);
      }
    } catch (IOException e) {
      lock.lock();
      try {
        if (!terminated && failure == null) {
          failLocked(new TransportException(label + ": write failed: " + e, e), false);
        }
        watchdogCond.signal();
      } finally {
        lock.unlock();
      }
    } catch (RuntimeException | Error e) {
      log.error("{}: writer crashed", label, e);
      lock.lock();
      try {
        failLocked(new TransportException(label + ": internal error in the writer: " + e), false);
      } finally {
        lock.unlock();
      }
      throw e;
    } finally {
      lock.lock();
      try {
        if (!directBusy) {
          writeStarted = 0;
          channelBusy = false;
        }
        errorFlushed = true; // nothing more will be written
        batch.releaseDone(pool);
        watchdogCond.signal();
      } finally {
        lock.unlock();
      }
    }
  }

  private void writeFully(GatheringByteChannel gathering, ByteBuffer[] parts, int count)
      throws IOException {
    if (gathering != null) {
      ByteBuffer last = parts[count - 1];
      while (last.hasRemaining()) {
        gathering.write(parts, 0, count);
      }
    } else {
      for (int i = 0; i < count; i++) {
        while (parts[i].hasRemaining()) {
          out.write(parts[i]);
        }
      }
    }
  }

  /**
   * What the writer sends next: control frames in its buffer, then up to {@link
   * #MAX_BATCH_FRAMES} DATA frames, all in one gathering write.
   */
  private static final class Batch {
    int frames;
    final ByteBuffer[] payloads = new ByteBuffer[MAX_BATCH_FRAMES];
    final int[] streams = new int[MAX_BATCH_FRAMES];
    int count;
    long dataBytes;
    /** Chunks fully sent by this batch: returned to the pool after the write. */
    final List<StreamState.Chunk> done = new ArrayList<>();

    boolean error;
    boolean goodbye;
    /** Increments per batch; marks the streams that have DATA in the current one. */
    long sequence;

    void reset() {
      frames = 0;
      Arrays.fill(payloads, 0, count, null);
      count = 0;
      dataBytes = 0;
      done.clear();
      error = false;
      goodbye = false;
      sequence++;
    }

    void releaseDone(BufferPool pool) {
      for (StreamState.Chunk c : done) {
        pool.release(c.buf);
      }
      done.clear();
    }
  }

  private static boolean fits(ByteBuffer ctrl, Frame f) {
    return ctrl.remaining() >= FrameCodec.HEADER_BYTES + FrameCodec.payloadLength(f);
  }

  private void encodeLocked(ByteBuffer ctrl, Batch batch, Frame f) {
    FrameCodec.encode(f, ctrl);
    batch.frames++;
  }

  /**
   * Fills the next batch, waiting until there is something to send. Returns false when the
   * writer should stop.
   */
  private boolean collectLocked(ByteBuffer ctrl, Batch batch) {
    while (true) {
      if (terminated) {
        return false;
      }
      if (channelBusy) {
        writerCond.awaitUninterruptibly(); // an application thread writes directly
        continue;
      }
      if (failure != null) {
        if (errorToSend != null) {
          encodeLocked(ctrl, batch, errorToSend);
          errorToSend = null;
          batch.error = true;
          return true;
        }
        writerCond.awaitUninterruptibly();
        continue;
      }
      if (goodbyeWritten) {
        writerCond.awaitUninterruptibly();
        continue;
      }
      // 1. connection-level frames
      while (!control.isEmpty() && fits(ctrl, control.peekFirst())) {
        encodeLocked(ctrl, batch, control.pollFirst());
      }
      if (handshakeDone) {
        // 2. credit
        if (!peerGoodbye) {
          collectGrantsLocked(ctrl, batch);
        }
        // 3. the end of an image, once every file before it is out
        if (pendingEndImage != null && fits(ctrl, pendingEndImage) && !filesPendingLocked()) {
          encodeLocked(ctrl, batch, pendingEndImage);
          sentEndImage = pendingEndImage;
          pendingEndImage = null;
        }
        // 4. one turn of the round-robin over streams
        collectStreamsLocked(ctrl, batch);
      }
      if (batch.frames > 0 || batch.count > 0) {
        return true;
      }
      if (goodbyeQueued && ready.isEmpty() && control.isEmpty() && pendingEndImage == null) {
        encodeLocked(ctrl, batch, new Frame.Goodbye());
        batch.goodbye = true;
        return true;
      }
      writerCond.awaitUninterruptibly();
    }
  }

  private void collectGrantsLocked(ByteBuffer ctrl, Batch batch) {
    if (connPendingGrant >= connectionGrantThreshold && ctrl.remaining() >= 64) {
      int inc = (int) Math.min(connPendingGrant, MAX_WINDOW);
      encodeLocked(ctrl, batch, new Frame.WindowUpdate(0, inc));
      connPendingGrant -= inc;
    }
    while (!grantDirty.isEmpty() && ctrl.remaining() >= 64) {
      StreamState s = grantDirty.pollFirst();
      StreamState.In i = s.in;
      i.grantDirty = false;
      if (!i.ended && i.pendingGrant > 0) {
        int inc = (int) Math.min(i.pendingGrant, MAX_WINDOW);
        encodeLocked(ctrl, batch, new Frame.WindowUpdate(s.id, inc));
        i.pendingGrant -= inc;
      } else {
        i.pendingGrant = 0;
      }
    }
  }

  private boolean filesPendingLocked() {
    for (StreamState s : ready) {
      if (s.kind == StreamState.Kind.FILE) {
        return true;
      }
    }
    return false;
  }

  /**
   * Takes turns over the streams with something to send: each turn takes a stream's control
   * frames and at most one DATA frame (limited by its credit, the connection's credit and the
   * peer's maximum frame size), then moves the stream to the back. Turns continue until the
   * batch is full or no stream can send. Control frames are written before the batch's DATA,
   * so once a stream has DATA in the batch, its later control frames wait for the next batch.
   */
  private void collectStreamsLocked(ByteBuffer ctrl, Batch batch) {
    int maxFrame = peerHello.maxFramePayload();
    boolean progress = true;
    while (progress && !ready.isEmpty()) {
      progress = false;
      int turns = ready.size();
      for (int t = 0; t < turns; t++) {
        if (batch.count == MAX_BATCH_FRAMES || batch.dataBytes >= MAX_BATCH_DATA_BYTES) {
          return;
        }
        StreamState s = ready.pollFirst();
        StreamState.Out o = s.out;
        boolean hasData = o.batchSequence == batch.sequence;
        boolean full = false;
        while (true) {
          Object head = o.queue.peekFirst();
          if (head instanceof StreamState.Chunk c && c.available() == 0 && !c.filling) {
            o.queue.pollFirst(); // fully sent by an earlier batch, whose write has completed
            pool.release(c.buf);
          } else if (head instanceof Frame f && !hasData) {
            if (!fits(ctrl, f)) {
              full = true;
              break;
            }
            o.queue.pollFirst();
            encodeLocked(ctrl, batch, f);
            progress = true;
            if (f instanceof Frame.EndOfFile || f instanceof Frame.EndOfStream) {
              o.drained = true;
              maybeRetireLocked(s);
            }
          } else {
            break;
          }
        }
        if (!full && o.queue.peekFirst() instanceof StreamState.Chunk c) {
          long credit = Math.min(o.credit, connSendCredit);
          int len = (int) Math.min(Math.min(c.available(), credit), maxFrame);
          if (len > 0) {
            batch.payloads[batch.count] = c.buf.slice(c.readPos, len);
            batch.streams[batch.count] = s.id;
            batch.count++;
            batch.dataBytes += len;
            o.batchSequence = batch.sequence;
            c.readPos += len;
            o.credit -= len;
            connSendCredit -= len;
            o.queuedBytes -= len;
            if (c.available() == 0 && !c.filling) {
              o.queue.pollFirst();
              batch.done.add(c);
            }
            progress = true;
          }
        }
        if (o.queue.isEmpty()) {
          o.inReady = false;
          pruneLocked(s);
        } else {
          ready.addLast(s);
        }
        if (full) {
          return;
        }
      }
    }
  }

  // =========================================================================================
  // Watchdog thread
  // =========================================================================================

  private void watchdogLoop() {
    long tick = Math.max(TimeUnit.MILLISECONDS.toNanos(10), Math.min(stallNanos / 4,
        TimeUnit.SECONDS.toNanos(1)));
    long pingInterval = Math.max(1, stallNanos / 3);
    lock.lock();
    try {
      while (!terminated) {
        long now = System.nanoTime();
        if (failure != null) {
          if (!lingering || (inputEnded && errorFlushed) || now - failedAt >= lingerNanos) {
            terminateLocked();
            break;
          }
        } else if ((closeCalled && now - closeDeadline >= 0)
            || (goodbyeWritten && (peerGoodbye || inputEnded))) {
          terminateLocked();
          break;
        } else {
          long idle = now - lastReceived;
          if (handshakeDone && !goodbyeQueued && !peerGoodbye && !pingOutstanding
              && idle >= pingInterval) {
            control.add(new Frame.Ping(++pingSeq));
            pingOutstanding = true;
            writerCond.signal();
          }
          long blocked = writeStarted == 0 ? 0 : now - writeStarted;
          if (blocked >= stallNanos) {
            failLocked(
                new TransportException(
                    label + ": peer stalled: a write has been blocked for "
                        + TimeUnit.NANOSECONDS.toMillis(blocked)
                        + " ms; the peer does not read"),
                true);
            lingerNanos = Math.min(lingerNanos, ABANDON_LINGER_NANOS);
            continue;
          }
          if ((waiters > 0 || !handshakeDone) && idle >= stallNanos) {
            failLocked(
                new TransportException(
                    label + ": peer stalled: no frame received for "
                        + TimeUnit.NANOSECONDS.toMillis(idle) + " ms (stall timeout "
                        + config.stallTimeout().toMillis() + " ms)"),
                true);
            lingerNanos = Math.min(lingerNanos, ABANDON_LINGER_NANOS);
            continue;
          }
        }
        long wait = tick;
        if (failure != null && lingering) {
          wait = Math.min(wait, failedAt + lingerNanos - now);
        }
        if (closeCalled) {
          wait = Math.min(wait, closeDeadline - now);
        }
        watchdogCond.awaitNanos(Math.max(wait, 1));
      }
    } catch (InterruptedException e) {
      terminateLocked();
    } finally {
      lock.unlock();
    }
    closeChannels();
    join(readerThread);
    join(writerThread);
    lock.lock();
    try {
      for (StreamState s : live) {
        if (s.in != null) {
          for (StreamState.Chunk c : s.in.chunks) {
            pool.release(c.buf);
          }
          s.in.chunks.clear();
          s.in.buffered = 0;
        }
        if (s.out != null) {
          for (Object item : s.out.queue) {
            if (item instanceof StreamState.Chunk c) {
              pool.release(c.buf);
            }
          }
          s.out.queue.clear();
        }
      }
      live.clear();
      streams.clear();
      ready.clear();
      acceptQueue.clear();
      pool.close();
    } finally {
      lock.unlock();
    }
    log.debug("{}: terminated{}", label, failure == null ? "" : " (" + failure.getMessage() + ")");
    terminatedLatch.countDown();
  }

  private void closeChannels() {
    if (!channelsClosed.compareAndSet(false, true)) {
      return;
    }
    try {
      in.close();
    } catch (IOException | RuntimeException e) {
      log.debug("{}: closing input: {}", label, e.toString());
    }
    try {
      out.close();
    } catch (IOException | RuntimeException e) {
      log.debug("{}: closing output: {}", label, e.toString());
    }
  }

  private void join(Thread t) {
    if (t == Thread.currentThread()) {
      return;
    }
    try {
      t.join(JOIN_MILLIS);
      if (t.isAlive()) {
        log.warn("{}: {} did not stop after the channels were closed", label, t.getName());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

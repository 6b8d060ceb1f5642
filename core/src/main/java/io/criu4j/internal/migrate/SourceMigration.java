package io.criu4j.internal.migrate;

import io.criu4j.CriuFeatures;
import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.DumpResult;
import io.criu4j.DumpStats;
import io.criu4j.ImageProxy;
import io.criu4j.MigrationCancelledException;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import io.criu4j.Notifier;
import io.criu4j.ProtocolException;
import io.criu4j.RoundStats;
import io.criu4j.TransferReport;
import io.criu4j.TransportException;
import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.rpc.ControlProto.Abort;
import io.criu4j.internal.rpc.ControlProto.BeginImages;
import io.criu4j.internal.rpc.ControlProto.Commit;
import io.criu4j.internal.rpc.ControlProto.Envelope.BodyCase;
import io.criu4j.internal.rpc.ControlProto.Envelope;
import io.criu4j.internal.rpc.ControlProto.Hello;
import io.criu4j.internal.rpc.ControlProto.ImagesShipped;
import io.criu4j.internal.rpc.ControlProto.Preflight;
import io.criu4j.internal.rpc.ControlProto.PreflightResult;
import io.criu4j.internal.rpc.ControlProto.RestoreFlags;
import io.criu4j.internal.transport.NioSockets;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source side of one migration: the phases, the post-dump hold and the commit, rollback on
 * any failure before the commit point. Run once by the thread calling {@link #run()};
 * {@link #cancel()} and {@link #close()} from any thread.
 */
public final class SourceMigration implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(SourceMigration.class);
  private static final int PAGE_SIZE = 4096;
  private static final Duration PROGRESS_EVERY = Duration.ofMillis(250);
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(30);

  private final SourceSettings s;
  private final String label;
  private final Object lock = new Object();
  private final CountDownLatch done = new CountDownLatch(1);
  // guarded by lock
  private boolean started;
  private boolean closed;
  private ControlChannel control;
  /** How long a failure waits for the agent's Abort, which says why the agent gave up. */
  private static final Duration AGENT_REASON_WAIT = Duration.ofMillis(500);
  private ImageProxy proxy;
  private volatile MigrationException stop;
  private volatile boolean committed;

  // used by the running thread only (and the timer, for progress)
  private ScheduledExecutorService timer;
  private ScheduledFuture<?> phaseTimer;
  private ScheduledFuture<?> progressTimer;
  private final Map<MigrationPhase, Duration> phases = new EnumMap<>(MigrationPhase.class);
  private MigrationPhase phase;
  private long phaseStart;
  private long phaseDeadline;
  private final List<RoundStats> rounds = new ArrayList<>();
  private long pageBytes;
  private long fileBytes;
  private long pages;
  private int files;
  private CriuVersion sourceCriu;
  private CriuVersion destinationCriu;
  private boolean sourceMemTrack;
  private boolean destinationMemTrack;
  private String preCopyNote;
  private volatile long frozenNanos;
  private volatile boolean frozen;
  private int destinationPid;
  /** Post-copy: CRIU's lazy-pages conversation between the source's CRIU and the agent. */
  private volatile LazyPageRelay lazyRelay;
  private volatile long commitSentNanos;
  private volatile Thread lazyCommitter;
  private volatile ScheduledFuture<?> postCopyTimer;
  /** Set once the post-copy relay started failing. */
  private volatile boolean relayFailing;
  private volatile MigrationException lazyCommitFailure;

  public SourceMigration(SourceSettings settings) {
    this.s = settings;
    this.label = "session-" + settings.sessionId().toString().substring(0, 8);
  }

  public SourceSettings settings() {
    return s;
  }

  public MigrationReport run() throws MigrationException {
    synchronized (lock) {
      if (closed) {
        throw new IllegalStateException(label + " is closed");
      }
      if (started) {
        throw new IllegalStateException("migrate() was already called on " + label);
      }
      started = true;
    }
    long t0 = System.nanoTime();
    try {
      MigrationException early = stop;
      if (early != null) {
        throw early;
      }
      timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "criu4j-" + label + "-timer");
        t.setDaemon(true);
        return t;
      });
      preflight();
      preCopy();
      finalDump();
      cleanup();
      MigrationReport report = new MigrationReport(s.sessionId(), s.pid(), destinationPid,
          sourceCriu, destinationCriu, phases, Duration.ofNanos(lastResumedNanos - frozenNanos),
          Duration.ofNanos(System.nanoTime() - t0), pageBytes, fileBytes, files, pages, rounds,
          preCopyNote);
      log.info("{}: migrated pid {} -> {} (downtime {} ms, total {} ms)", label, s.pid(),
          destinationPid, report.downtime().toMillis(), report.total().toMillis());
      return report;
    } catch (MigrationException e) {
      MigrationException out = outcome(e);
      cleanup();
      throw out;
    } catch (RuntimeException | Error e) {
      abortPeer(e.toString(), false);
      cleanup();
      throw e;
    } finally {
      done.countDown();
    }
  }

  private volatile long lastResumedNanos;

  /** The exception migrate() throws: the cancellation or timeout that caused {@code e}, if any. */
  private MigrationException outcome(MigrationException e) {
    MigrationException st = stop;
    MigrationException out = e;
    if (st != null && st != e && !committed) {
      st.addSuppressed(e);
      out = st;
    } else if (st == null && !committed) {
      out = agentsReason(e);
    }
    abortPeer(out.getMessage(), out instanceof MigrationCancelledException);
    log.info("{}: migration of pid {} failed: {}", label, s.pid(), out.getMessage());
    return out;
  }

  public void cancel() {
    fail(new MigrationCancelledException("migration " + s.sessionId() + " of pid " + s.pid()
        + " was cancelled" + (frozen ? "; the source tree was resumed" : "")));
  }

  /**
   * Stops the migration with {@code why} unless it passed its commit point: wakes a wait on the
   * agent and closes the image proxy, which fails a CRIU dump writing to it (so CRIU resumes the
   * tree) or a transfer being finished at post-dump (so post-dump is vetoed).
   */
  private void fail(MigrationException why) {
    ControlChannel c;
    ImageProxy p;
    synchronized (lock) {
      if (stop == null && lazyRelay != null && !lazyRelay.done().isDone()) {
        // Post-copy: the original is still frozen at the source; rolling back stops the copy.
        stop = why;
        LazyPageRelay r = lazyRelay;
        Thread t = new Thread(() -> r.fail(why.getMessage(), LazyPageRelay.Cause.ABORT),
            "criu4j-" + label + "-stop-post-copy");
        t.setDaemon(true);
        t.start();
        if (control != null) {
          control.wake();
        }
        return;
      }
      if (committed || stop != null) {
        return;
      }
      stop = why;
      c = control;
      p = proxy;
    }
    log.debug("{}: stopping: {}", label, why.getMessage());
    if (c != null) {
      c.wake();
    }
    if (p != null) {
      p.close();
    }
  }

  @Override
  public void close() {
    boolean wait;
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
      wait = started;
    }
    cancel();
    if (wait) {
      try {
        if (!done.await(2, TimeUnit.MINUTES)) {
          log.warn("{}: migration did not end within 2 minutes of close()", label);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  // ------------------------------------------------------------------------------- phases

  private void preflight() throws MigrationException {
    begin(MigrationPhase.PREFLIGHT);
    ProcTree proc = ProcTree.system();
    proc.checkMigratable(s.pid(), ProcTree.self());
    sourceCriu = s.criu().version();
    CriuFeatures features = s.criu().checkFeatures();
    sourceMemTrack = features.memTrack();
    if (postCopy()) {
      String refusal = PostCopyCheck.sourceRefusal(features.lazyPages(), s.hooks());
      if (refusal != null) {
        throw new MigrationException("post-copy of pid " + s.pid() + " refused: " + refusal);
      }
    }
    byte[] cpuinfo = cpuInfo();
    long estimate = s.hooks().estimatedBytes(proc.residentBytes(s.pid(), PAGE_SIZE));
    checkStop();

    Connection c = connect();
    try {
      ControlChannel.writePreamble(c, Wire.CONTROL_MAGIC, Wire.PROTOCOL);
    } catch (MigrationException e) {
      c.close();
      throw new TransportException("cannot talk to the agent at " + s.destination() + ": "
          + e.getMessage(), e.errno(), e);
    }
    synchronized (lock) {
      control = new ControlChannel(c, label);
      if (stop != null) {
        throw stop;
      }
    }
    control.send(Envelope.newBuilder().setHello(Hello.newBuilder()
        .setSessionId(s.sessionId().toString()).setProtocol(Wire.PROTOCOL)).build());
    Preflight.Builder pf = Preflight.newBuilder().setCriu(Wire.version(sourceCriu))
        .setPageServerHeaderSize(sourceCriu.pageServerHeaderSize())
        .setMemTrack(sourceMemTrack).setEstimatedBytes(estimate).setPageSize(PAGE_SIZE)
        .setPreCopy(s.preCopy().enabled() && sourceMemTrack).setRestore(restoreFlags())
        .setPostCopy(postCopy());
    if (cpuinfo != null) {
      pf.setCpuinfo(com.google.protobuf.ByteString.copyFrom(cpuinfo));
    }
    control.send(Envelope.newBuilder().setPreflight(pf).build());
    PreflightResult r = await(BodyCase.PREFLIGHT_RESULT, "the pre-flight answer")
        .getPreflightResult();
    if (!r.getOk()) {
      throw new MigrationException("the destination " + s.destination() + " refused the "
          + "migration of pid " + s.pid() + ": " + r.getReason());
    }
    destinationCriu = r.hasCriu() ? Wire.version(r.getCriu()) : null;
    destinationMemTrack = r.getMemTrack();
    if (postCopy() && !r.getLazyPages()) {
      throw new MigrationException("post-copy of pid " + s.pid() + " refused: the CRIU at "
          + s.destination() + " cannot restore with lazy pages (userfaultfd)");
    }
    if (r.getPageServerHeaderSize() != sourceCriu.pageServerHeaderSize()) {
      throw new MigrationException("CRIU " + sourceCriu + " here and CRIU " + destinationCriu
          + " at " + s.destination() + " cannot exchange pages (page-server header of "
          + sourceCriu.pageServerHeaderSize() + " vs " + r.getPageServerHeaderSize() + " bytes)");
    }
    end(MigrationPhase.PREFLIGHT);
  }

  private boolean postCopy() {
    return s.options().lazyPages();
  }

  private Connection connect() throws MigrationException {
    Duration left = Duration.ofNanos(Math.max(1, phaseDeadline - System.nanoTime()));
    try {
      return s.transport().connect(s.destination(),
          left.compareTo(CONNECT_TIMEOUT) < 0 ? left : CONNECT_TIMEOUT);
    } catch (TransportException e) {
      throw new TransportException("cannot reach the agent at " + s.destination() + ": "
          + e.getMessage(), e.errno(), e);
    }
  }

  private RestoreFlags restoreFlags() {
    CriuOptions o = s.options();
    RestoreFlags.Builder b = RestoreFlags.newBuilder().setTcpEstablished(o.tcpEstablished())
        .setShellJob(o.shellJob()).setExtUnixSk(o.externalUnixSockets())
        .setFileLocks(o.fileLocks()).addAllExternal(o.externals());
    if (o.manageCgroups() != null) {
      b.setManageCgroups(o.manageCgroups().name());
    }
    if (o.networkLock() != null) {
      b.setNetworkLock(o.networkLock().name());
    }
    return b.build();
  }

  /** This host's cpuinfo.img, or null if CRIU wrote none. */
  private byte[] cpuInfo() throws MigrationException {
    Path dir;
    try {
      dir = Files.createTempDirectory(s.stagingParent(), "criu4j-cpuinfo-");
    } catch (IOException e) {
      throw new MigrationException("cannot create a directory in " + s.stagingParent() + ": "
          + e, e);
    }
    try {
      s.criu().dumpCpuInfo(dir);
      s.hooks().cpuInfoDumped(dir);
      Path img = dir.resolve("cpuinfo.img");
      if (!Files.exists(img)) {
        log.warn("{}: CRIU wrote no cpuinfo.img; the destination cannot check the CPU", label);
        return null;
      }
      return Files.readAllBytes(img);
    } catch (MigrationException e) {
      throw e;
    } catch (Exception e) {
      throw new MigrationException("cannot read the CPU description: " + e, e);
    } finally {
      FileTree.delete(dir);
    }
  }

  private void preCopy() throws MigrationException {
    if (!s.preCopy().enabled()) {
      preCopyNote = "pre-copy disabled";
      return;
    }
    if (postCopy()) {
      preCopyNote = "pre-copy skipped: post-copy moves the memory after the restore";
      return;
    }
    if (!sourceMemTrack || !destinationMemTrack) {
      String where = !sourceMemTrack && !destinationMemTrack ? "on both hosts"
          : !sourceMemTrack ? "on the source" : "on the destination";
      preCopyNote = "pre-copy skipped: dirty-page tracking (mem_track) is unavailable " + where
          + "; going straight to the final dump";
      emit(new MigrationEvent.Note(Instant.now(), preCopyNote));
      return;
    }
    begin(MigrationPhase.PRE_COPY);
    long start = System.nanoTime();
    for (int round = 1; ; round++) {
      RoundStats st = preDumpRound(round);
      rounds.add(st);
      emit(new MigrationEvent.RoundFinished(Instant.now(), st));
      String why = StopRule.stopReason(s.preCopy(), rounds,
          Duration.ofNanos(System.nanoTime() - start));
      if (why != null) {
        preCopyNote = "pre-copy: " + rounds.size() + " round(s), stopped: " + why;
        emit(new MigrationEvent.Note(Instant.now(), preCopyNote));
        break;
      }
    }
    end(MigrationPhase.PRE_COPY);
  }

  private RoundStats preDumpRound(int round) throws MigrationException {
    long t = System.nanoTime();
    ImageProxy p = beginImages(round, false);
    try {
      CriuOptions o = p.configure(s.options()).toBuilder().trackMemory(true).lazyPages(false)
          .build();
      DumpResult r = s.criu().preDump(p.stagingDir(), o);
      checkStop();
      imagesWritten(round, p);
      TransferReport tr = finishImages(round, p);
      await(BodyCase.ROUND_STORED, "round " + round + " stored");
      return roundStats(round, r.stats(), tr, t);
    } finally {
      release(p);
    }
  }

  /**
   * Final dumps of this JVM run one at a time from their start to CRIU's post-dump point (the
   * post-dump holds and the restores still overlap). CRIU's parasite, dumping a task whose
   * /proc is not its PID namespace's, mounts a private proc at a fixed path in the task's root;
   * concurrent dumps of such tasks sharing a root then fail with "Can't create a directory
   * (-17)". Dumps from other processes on the same host are not covered.
   */
  private static final ReentrantLock DUMP_SLOT = new ReentrantLock(true);

  private void acquireDumpSlot(boolean[] held) throws MigrationException {
    try {
      while (!DUMP_SLOT.tryLock(100, TimeUnit.MILLISECONDS)) {
        checkStop();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new MigrationException("interrupted while waiting for another dump", e);
    }
    held[0] = true;
  }

  private static void releaseDumpSlot(boolean[] held) {
    if (held[0]) {
      held[0] = false;
      DUMP_SLOT.unlock();
    }
  }

  private void finalDump() throws MigrationException {
    begin(MigrationPhase.FINAL_DUMP);
    int round = rounds.size() + 1;
    long t = System.nanoTime();
    ImageProxy p = beginImages(round, true);
    MigrationException[] veto = new MigrationException[1];
    TransferReport[] shipped = new TransferReport[1];
    boolean[] slot = new boolean[1];
    boolean lazy = postCopy();
    int lazyPort = lazy ? PostCopyCheck.freeTcpPort() : 0;
    Notifier hold = new Notifier() {
      @Override
      public void preDump() throws Exception {
        checkStop();
        frozenNanos = System.nanoTime();
        frozen = true;
        emit(new MigrationEvent.Frozen(Instant.now()));
      }

      @Override
      public void postDump() throws Exception {
        releaseDumpSlot(slot);
        try {
          shipped[0] = lazy ? lazyHandOver(round, p) : commitPoint(round, p);
        } catch (MigrationException e) {
          veto[0] = e;
          throw e;
        }
      }

      @Override
      public void statusReady() throws Exception {
        if (lazy) {
          try {
            startPostCopy(lazyPort);
          } catch (MigrationException e) {
            veto[0] = e;
            throw e;
          }
        }
      }
    };
    DumpResult r;
    try {
      CriuOptions o = p.configure(s.options()).toBuilder().trackMemory(round > 1).build();
      if (lazy) {
        // A lazy dump keeps the memory in CRIU's pipes and serves it from a page server of its
        // own on this port; only the pages that cannot be lazy go into the staged files.
        o = PostCopyCheck.lazyDumpOptions(o, lazyPort, label);
      }
      acquireDumpSlot(slot);
      r = s.criu().dump(p.stagingDir(), o, hold);
    } catch (MigrationException e) {
      if (lazy && lazyRelay != null) {
        // The relay failed, so CRIU's lazy page server did: CRIU resumed the original.
        joinCommitter();
        throw postCopyFailed(veto[0] != null ? veto[0] : e);
      }
      if (committed) {
        throw new MigrationException("CRIU failed after the commit point; the tree may run on "
            + "the destination as pid " + destinationPid + ": " + e.getMessage(), e);
      }
      if (frozen) {
        lastResumedNanos = System.nanoTime();
        emit(new MigrationEvent.Resumed(Instant.now(), false, s.pid()));
      }
      if (veto[0] != null) {
        veto[0].addSuppressed(e);
        throw veto[0];
      }
      throw e;
    } finally {
      releaseDumpSlot(slot);
      release(p);
    }
    joinCommitter();
    if (!committed) {
      throw new ProtocolException("CRIU completed the dump without the "
          + (lazy ? "status-ready" : "post-dump") + " notification");
    }
    if (lazy) {
      lazyFinished();
      rounds.add(roundStats(round, r.stats(), shipped[0], t,
          Duration.ofNanos(lastResumedNanos - frozenNanos)));
      emit(new MigrationEvent.RoundFinished(Instant.now(), rounds.get(rounds.size() - 1)));
      return;
    }
    long resumedNanos;
    try {
      Envelope e = await(BodyCase.RESUMED, "the restored tree to resume");
      destinationPid = e.getResumed().getPid();
      // The tree ran on the destination from the moment the agent said so; the source's CRIU
      // tearing down the frozen original meanwhile (long for a large tree) is not downtime.
      resumedNanos = control.lastArrivalNanos();
    } catch (MigrationException e) {
      throw new MigrationException("the source tree is gone after the commit, but the agent "
          + "did not confirm that pid " + destinationPid + " runs: " + e.getMessage(), e);
    }
    lastResumedNanos = resumedNanos;
    emit(new MigrationEvent.Resumed(Instant.now(), true, destinationPid));
    rounds.add(roundStats(round, r.stats(), shipped[0], t));
    emit(new MigrationEvent.RoundFinished(Instant.now(), rounds.get(rounds.size() - 1)));
    end(MigrationPhase.COMMIT);
  }

  /**
   * Post-copy, inside post-dump, the tree frozen: ships the staged images (no page stream: the
   * memory stays in CRIU's pipes). Returning acknowledges post-dump, upon which CRIU starts its
   * lazy page server and reports status-ready; the original stays frozen until the lazy page
   * server ends, and resumes if it ends with an error. Throwing vetoes post-dump.
   */
  private TransferReport lazyHandOver(int round, ImageProxy p) throws MigrationException {
    end(MigrationPhase.FINAL_DUMP);
    begin(MigrationPhase.TRANSFER);
    imagesWritten(round, p);
    PostCopyCheck.endUnusedPageStream(p, sourceCriu);
    TransferReport tr = finishImages(round, p);
    end(MigrationPhase.TRANSFER);
    begin(MigrationPhase.RESTORE);
    return tr;
  }

  /**
   * Post-copy, at status-ready: CRIU's lazy page server listens on {@code port}. Connects it to
   * the agent through a {@link LazyPageRelay}: the destination restores now, fetching the
   * memory the restore itself touches. A thread of its own then waits for the restored tree and
   * commits, because CRIU serves pages only once this callback returned.
   */
  private void startPostCopy(int port) throws MigrationException {
    checkStop();
    java.nio.channels.SocketChannel criuSocket;
    try {
      criuSocket = java.nio.channels.SocketChannel.open(new java.net.InetSocketAddress(
          java.net.InetAddress.getLoopbackAddress(), port));
    } catch (IOException e) {
      throw new MigrationException("cannot reach CRIU's lazy page server on port " + port
          + ": " + e, e);
    }
    Connection c;
    try {
      c = connect();
      c.write(Wire.imageHeader(s.sessionId(), Wire.LAZY_PAGES_ROUND));
    } catch (MigrationException | RuntimeException e) {
      NioSockets.closeQuietly(criuSocket);
      throw e;
    }
    LazyPageRelay relay = new LazyPageRelay(label, new SourceSide());
    synchronized (lock) {
      if (stop != null) {
        NioSockets.closeQuietly(criuSocket);
        c.close();
        throw stop;
      }
      lazyRelay = relay;
    }
    relay.start(criuSocket, c);
    Thread t = new Thread(() -> commitPostCopy(relay), "criu4j-" + label + "-post-copy-commit");
    t.setDaemon(true);
    lazyCommitter = t;
    t.start();
  }

  /**
   * Waits for the restored tree, held before it runs, and commits: the destination lets it run
   * and fetches the rest of the memory in the background. From here a failure stops the copy
   * before the original resumes (see {@link LazyPageRelay}). Any failure on the way fails the
   * relay, which makes CRIU resume the original.
   */
  private void commitPostCopy(LazyPageRelay relay) {
    try {
      Envelope e = await(BodyCase.RESTORED, "the destination's restore");
      destinationPid = e.getRestored().getPid();
      synchronized (lock) {
        checkStop();
        committed = true;
      }
      control.send(Envelope.newBuilder().setCommit(Commit.getDefaultInstance()).build());
      commitSentNanos = System.nanoTime();
      end(MigrationPhase.RESTORE);
      begin(MigrationPhase.COMMIT);
      Envelope r = await(BodyCase.RESUMED, "the restored tree to resume");
      destinationPid = r.getResumed().getPid();
      lastResumedNanos = control.lastArrivalNanos();
      end(MigrationPhase.COMMIT);
      emit(new MigrationEvent.Resumed(Instant.now(), true, destinationPid));
      Duration limit = s.timeout(MigrationPhase.POST_COPY);
      // Not begin(): its timer would stop this migration the ordinary way, which no longer
      // applies; this one fails the relay, which rolls back to the source.
      emit(new MigrationEvent.PhaseStarted(Instant.now(), MigrationPhase.POST_COPY));
      postCopyTimer = timer.schedule(() -> relay.fail(MigrationPhase.POST_COPY + " timed out "
          + "after " + limit.toMillis() + " ms", LazyPageRelay.Cause.ABORT), limit.toNanos(),
          TimeUnit.NANOSECONDS);
      log.debug("{}: post-copy: pid {} runs on the destination, its memory follows", label,
          destinationPid);
    } catch (MigrationException | RuntimeException e) {
      lazyCommitFailure = e instanceof MigrationException m ? m
          : new MigrationException(e.toString(), e);
      relay.fail(e.getMessage(), LazyPageRelay.Cause.ABORT);
    }
  }

  /** The source half of the post-copy relay: CRIU's socket ends well only after the END. */
  private final class SourceSide implements LazyPageRelay.Side {
    @Override
    public boolean localEnded() {
      LazyPageRelay r = lazyRelay;
      return r != null && r.endReceived();
    }

    @Override
    public void stopLocalCopy(String why) {
      // Nothing runs here: the original is frozen until CRIU sees the reset. A wait for the
      // agent's Resumed ends now: there is no commit to complete any more.
      relayFailing = true;
      ControlChannel c = control;
      if (c != null) {
        c.wake();
      }
    }

    @Override
    public Duration fence(LazyPageRelay.Cause cause) {
      // A broken CRIU socket means CRIU failed and resumed the original already: then the
      // copy must stop at once. Otherwise the original is still frozen and waits for it.
      return cause == LazyPageRelay.Cause.CONNECTION || cause == LazyPageRelay.Cause.ABORT
          ? Wire.POST_COPY_FENCE : Duration.ZERO;
    }
  }

  /** Records the end of a successful post-copy: all memory arrived, the original is gone. */
  private void lazyFinished() {
    ScheduledFuture<?> f = postCopyTimer;
    if (f != null) {
      f.cancel(false);
    }
    Duration post = Duration.ofNanos(Math.max(0, System.nanoTime() - lastResumedNanos));
    phases.put(MigrationPhase.POST_COPY, post);
    emit(new MigrationEvent.PhaseFinished(Instant.now(), MigrationPhase.POST_COPY, post));
    LazyPageRelay r = lazyRelay;
    if (r != null) {
      // The memory moved after the restore, counted with CRIU's page-server headers.
      pageBytes += r.bytesOut();
      pages += r.bytesOut() / PAGE_SIZE;
    }
    log.debug("{}: post-copy done in {} ms ({} bytes of memory)", label, post.toMillis(),
        r == null ? 0 : r.bytesOut());
  }

  private void joinCommitter() {
    Thread t = lazyCommitter;
    if (t != null) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The dump failed after the post-copy began: CRIU resumed the original. */
  private MigrationException postCopyFailed(MigrationException e) {
    LazyPageRelay r = lazyRelay;
    if (r != null) {
      r.close(); // waits until the destination stopped its copy, if it can still tell
    }
    lastResumedNanos = System.nanoTime();
    emit(new MigrationEvent.Resumed(Instant.now(), false, s.pid()));
    MigrationException st = stop;
    MigrationException cf = lazyCommitFailure;
    String why = st != null ? st.getMessage() : cf != null ? cf.getMessage() : e.getMessage();
    MigrationException m = st instanceof MigrationCancelledException
        ? new MigrationCancelledException("post-copy of pid " + s.pid() + " was cancelled; the "
            + "copy on the destination was stopped and the source tree resumed")
        : new MigrationException("post-copy of pid " + s.pid() + " failed (" + why + "); the "
            + "copy on the destination was stopped and the source tree resumed", e);
    committed = false;
    return m;
  }

  /**
   * Runs inside post-dump, the tree frozen: ships the rest, waits for the restored tree, and
   * commits. Throwing vetoes post-dump, so the source resumes.
   */
  private TransferReport commitPoint(int round, ImageProxy p) throws MigrationException {
    end(MigrationPhase.FINAL_DUMP);
    begin(MigrationPhase.TRANSFER);
    imagesWritten(round, p);
    TransferReport tr = finishImages(round, p);
    end(MigrationPhase.TRANSFER);
    begin(MigrationPhase.RESTORE);
    Envelope e = await(BodyCase.RESTORED, "the destination's restore");
    int pid = e.getRestored().getPid();
    // If our CRIU died during the hold, the kernel has detached the tree and it runs here
    // again: committing now would start a second copy. Only the time from this check to the
    // Commit reaching the agent remains for that to happen unseen.
    int loose = s.hooks().untracedProcess(s.pid());
    if (loose >= 0) {
      throw new MigrationException("the source tree is no longer held by CRIU (pid " + loose
          + " is not traced; CRIU died?): not committing, the tree runs here");
    }
    synchronized (lock) {
      checkStop();
      committed = true;
    }
    try {
      control.send(Envelope.newBuilder().setCommit(Commit.getDefaultInstance()).build());
    } catch (MigrationException ex) {
      // The agent vetoes its restore when the connection is gone before Commit arrives.
      committed = false;
      throw new TransportException("cannot send the commit to the agent (the source resumes): "
          + ex.getMessage(), ex.errno(), ex);
    }
    destinationPid = pid;
    end(MigrationPhase.RESTORE);
    begin(MigrationPhase.COMMIT);
    log.debug("{}: committed; destination pid {}", label, pid);
    return tr;
  }

  // ------------------------------------------------------------------------------- images

  /** Announces a round, opens its image connection and proxy, and waits for the agent. */
  private ImageProxy beginImages(int round, boolean last) throws MigrationException {
    BeginImages.Builder b = BeginImages.newBuilder().setRound(round).setFinal(last);
    if (round > 1) {
      b.setParentRound(round - 1);
    }
    control.send(Envelope.newBuilder().setBeginImages(b).build());
    Connection c = connect();
    try {
      c.write(Wire.imageHeader(s.sessionId(), round));
    } catch (MigrationException | RuntimeException e) {
      c.close();
      throw e;
    }
    ImageProxy p = ImageProxy.builder(c).criuVersion(sourceCriu).stagingParent(s.stagingParent())
        .sessionId(s.sessionId()).start();
    synchronized (lock) {
      if (stop != null) {
        p.close();
        throw stop;
      }
      proxy = p;
    }
    progressTimer = timer.scheduleAtFixedRate(
        () -> emit(new MigrationEvent.Progress(Instant.now(), p.progress())),
        PROGRESS_EVERY.toMillis(), PROGRESS_EVERY.toMillis(), TimeUnit.MILLISECONDS);
    await(BodyCase.IMAGES_READY, "the agent to be ready for round " + round);
    return p;
  }

  private TransferReport finishImages(int round, ImageProxy p) throws MigrationException {
    TransferReport tr;
    try {
      tr = p.finish();
    } catch (MigrationException | IllegalStateException e) {
      checkStop();
      throw e instanceof MigrationException m ? m
          : new MigrationException("image transfer of round " + round + " failed: " + e, e);
    }
    stopProgress();
    emit(new MigrationEvent.Progress(Instant.now(), tr));
    files += tr.files();
    fileBytes += tr.fileBytes();
    pages += tr.pages();
    pageBytes += tr.pageBytes();
    control.send(Envelope.newBuilder().setImagesShipped(ImagesShipped.newBuilder()
        .setRound(round).setFiles(tr.files()).setFileBytes(tr.fileBytes()).setPages(tr.pages())
        .setPageBytes(tr.pageBytes())).build());
    return tr;
  }

  private void imagesWritten(int round, ImageProxy p) throws MigrationException {
    try {
      s.hooks().imagesWritten(round, p);
    } catch (MigrationException e) {
      throw e;
    } catch (Exception e) {
      throw new MigrationException("test hook failed: " + e, e);
    }
  }

  private void release(ImageProxy p) {
    stopProgress();
    synchronized (lock) {
      if (proxy == p) {
        proxy = null;
      }
    }
    p.close();
  }

  private void stopProgress() {
    ScheduledFuture<?> f = progressTimer;
    if (f != null) {
      f.cancel(false);
      progressTimer = null;
    }
  }

  private static RoundStats roundStats(int round, DumpStats d, TransferReport tr, long startNanos) {
    return roundStats(round, d, tr, startNanos, Duration.ofNanos(d.frozenTimeMicros() * 1000));
  }

  /**
   * With {@code frozen} as measured here: after a lazy dump CRIU's frozen time spans until the
   * last page was served, and comes out wrong besides.
   */
  private static RoundStats roundStats(int round, DumpStats d, TransferReport tr, long startNanos,
      Duration frozen) {
    return new RoundStats(round, d.pagesScanned(), d.pagesWritten(), d.pagesSkippedParent(),
        tr == null ? 0 : tr.totalBytes(), frozen, Duration.ofNanos(System.nanoTime() - startNanos));
  }

  // ------------------------------------------------------------------------------- plumbing

  private Envelope await(BodyCase expected, String what) throws MigrationException {
    MigrationPhase p = phase;
    Duration limit = s.timeout(p);
    Envelope e = control.receive(phaseDeadline, () -> relayFailing ? new MigrationException(
        "the post-copy relay failed") : committed ? null : stop,
        () -> p + " timed out after " + limit.toMillis() + " ms waiting for " + what);
    if (e.getBodyCase() == expected) {
      return e;
    }
    switch (e.getBodyCase()) {
      case ABORT -> throw new MigrationException("the agent at " + s.destination()
          + " aborted the migration: " + e.getAbort().getReason());
      case RESTORE_FAILED -> throw new MigrationException("the destination could not restore "
          + "the tree (the source resumes): " + e.getRestoreFailed().getMessage(),
          e.getRestoreFailed().getErrno(), null);
      default -> throw new ProtocolException("expected " + expected + " from the agent, got "
          + Wire.describe(e));
    }
  }

  private void checkStop() throws MigrationException {
    MigrationException st = stop;
    if (st != null && !committed) {
      throw st;
    }
  }

  private void begin(MigrationPhase p) throws MigrationException {
    if (!committed) {
      checkStop();
    }
    phase = p;
    phaseStart = System.nanoTime();
    Duration limit = s.timeout(p);
    phaseDeadline = phaseStart + limit.toNanos();
    emit(new MigrationEvent.PhaseStarted(Instant.now(), p));
    phaseTimer = timer.schedule(() -> fail(new MigrationException(p + " timed out after "
        + limit.toMillis() + " ms" + (frozen ? "; the source tree was resumed" : ""),
        110 /* ETIMEDOUT */, null)), limit.toNanos(), TimeUnit.NANOSECONDS);
  }

  private void end(MigrationPhase p) {
    if (phaseTimer != null) {
      phaseTimer.cancel(false);
      phaseTimer = null;
    }
    Duration took = Duration.ofNanos(System.nanoTime() - phaseStart);
    phases.merge(p, took, Duration::plus);
    emit(new MigrationEvent.PhaseFinished(Instant.now(), p, took));
    phase = null;
  }

  /**
   * The agent's own account of a failure, if it sent one: when the agent ends a session (a
   * limit, a bad image, a failed restore), the source mostly notices as a broken image stream
   * or a failed CRIU, whose messages do not say why. Waits briefly for the agent's Abort.
   */
  private MigrationException agentsReason(MigrationException e) {
    ControlChannel c;
    synchronized (lock) {
      c = control;
    }
    if (c == null || e.getMessage() != null && e.getMessage().contains(" aborted the migration")) {
      return e;
    }
    long deadline = System.nanoTime() + AGENT_REASON_WAIT.toNanos();
    try {
      Envelope env;
      while ((env = c.poll(deadline, () -> null)) != null) {
        if (env.getBodyCase() == BodyCase.ABORT) {
          MigrationException m = new MigrationException("the agent at " + s.destination()
              + " aborted the migration: " + env.getAbort().getReason(), e);
          return m;
        }
      }
    } catch (MigrationException | RuntimeException lost) {
      // connection gone without an Abort: the local failure is all we know
    }
    return e;
  }

  private void abortPeer(String reason, boolean cancelled) {
    ControlChannel c;
    synchronized (lock) {
      c = control;
    }
    if (c != null && !committed) {
      c.sendQuietly(Envelope.newBuilder().setAbort(Abort.newBuilder()
          .setReason(reason == null ? "failed" : reason).setCancelled(cancelled)).build());
    }
  }

  private void cleanup() {
    if (timer == null || timer.isShutdown()) {
      closeResources();
      return;
    }
    if (phase != null) {
      phases.merge(phase, Duration.ofNanos(System.nanoTime() - phaseStart), Duration::plus);
      if (phaseTimer != null) {
        phaseTimer.cancel(false);
      }
      phase = null;
    }
    long t = System.nanoTime();
    emit(new MigrationEvent.PhaseStarted(Instant.now(), MigrationPhase.CLEANUP));
    closeResources();
    timer.shutdownNow();
    try {
      timer.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Duration took = Duration.ofNanos(System.nanoTime() - t);
    phases.put(MigrationPhase.CLEANUP, took);
    emit(new MigrationEvent.PhaseFinished(Instant.now(), MigrationPhase.CLEANUP, took));
  }

  private void closeResources() {
    ImageProxy p;
    ControlChannel c;
    LazyPageRelay r;
    synchronized (lock) {
      p = proxy;
      proxy = null;
      c = control;
      r = lazyRelay;
    }
    if (r != null) {
      r.close();
    }
    if (p != null) {
      p.close();
    }
    if (c != null) {
      c.close();
    }
  }

  private synchronized void emit(MigrationEvent e) {
    try {
      s.listener().onEvent(e);
    } catch (RuntimeException ex) {
      log.warn("{}: listener failed on {}: {}", label, e, ex.toString());
    }
  }
}

package io.criu4j.internal.migrate;

import io.criu4j.CriuException;
import io.criu4j.CriuFeatures;
import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.ImageCache;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationPhase;
import io.criu4j.Notifier;
import io.criu4j.ProtocolException;
import io.criu4j.RestoreResult;
import io.criu4j.TransferReport;
import io.criu4j.TransportException;
import io.criu4j.internal.image.CacheHooks;
import io.criu4j.internal.image.ImageLimits;
import io.criu4j.internal.image.OwnedDirs;
import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.rpc.ControlProto.Abort;
import io.criu4j.internal.rpc.ControlProto.Envelope.BodyCase;
import io.criu4j.internal.rpc.ControlProto.Envelope;
import io.criu4j.internal.rpc.ControlProto.ImagesReady;
import io.criu4j.internal.rpc.ControlProto.Preflight;
import io.criu4j.internal.rpc.ControlProto.PreflightResult;
import io.criu4j.internal.rpc.ControlProto.RestoreFailed;
import io.criu4j.internal.rpc.ControlProto.RestoreFlags;
import io.criu4j.internal.rpc.ControlProto.Restored;
import io.criu4j.internal.rpc.ControlProto.Resumed;
import io.criu4j.internal.rpc.ControlProto.RoundStored;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One migration on the agent: pre-flight checks, one {@link ImageCache} per round, the restore
 * held at pre-resume until the source commits. Runs on the thread that accepted its control
 * connection; {@link #abort} from any thread. Owns its control connection, caches (and so their
 * directories) and image connections; frees them all when {@link #run()} returns.
 */
final class AgentSession {
  private static final Logger log = LoggerFactory.getLogger(AgentSession.class);
  /** Name prefix of a session's cache directory: then owner tag, session id and round. */
  static final String SESSION_PREFIX = "criu4j-";
  /** Name prefix of the scratch directory of the CPU check. */
  static final String CPU_CHECK_PREFIX = ".criu4j-cpucheck-";
  /** How often a wait for the source's next step looks at the images' progress. */
  private static final long PROGRESS_CHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
  private static final Duration SHIPPED_WAIT = Duration.ofSeconds(30);

  private final DestinationAgent agent;
  private final AgentSettings s;
  private final ControlChannel control;
  private final long handshakeDeadline;
  private final ImageLimits limits;
  private final Map<Integer, CompletableFuture<Connection>> imageConnections =
      new ConcurrentHashMap<>();
  private final Map<Integer, ImageCache> caches = new TreeMap<>();
  private UUID id = new UUID(0, 0);
  private String label;
  private volatile MigrationException stop;
  private volatile boolean registered;
  private volatile boolean commitReceived;
  private volatile boolean ended;
  private RestoreFlags flags = RestoreFlags.getDefaultInstance();
  /** The source asked for post-copy (and the pre-flight accepted it). */
  private boolean postCopy;
  private volatile PostCopyDestination postCopyRun;

  /**
   * @param handshakeDeadline ({@link System#nanoTime()}) by which the source's Hello and
   *     Preflight must have arrived
   */
  AgentSession(DestinationAgent agent, Connection connection, long handshakeDeadline) {
    this.agent = agent;
    this.s = agent.settings();
    this.label = "agent-session";
    this.handshakeDeadline = handshakeDeadline;
    this.limits = new ImageLimits(s.maxImageBytes(), s.maxFiles());
    this.control = new ControlChannel(connection, label, s.maxFrameBytes(), "maxFrameBytes");
  }

  UUID id() {
    return id;
  }

  /** Stops the session before its commit point; its restore, if held, is vetoed. */
  void abort(String reason) {
    if (stop == null) {
      stop = new MigrationException(reason);
    }
    control.wake();
    imageConnections.values().forEach(f -> f.cancel(false));
    PostCopyDestination pc = postCopyRun;
    if (pc != null) {
      pc.fail(reason);
    }
  }

  /** Hands over the image connection of {@code round}; false if none is expected. */
  boolean offerImages(int round, Connection c) {
    synchronized (imageConnections) {
      if (ended) {
        return false;
      }
      CompletableFuture<Connection> f =
          imageConnections.computeIfAbsent(round, r -> new CompletableFuture<>());
      return f.complete(c);
    }
  }

  void run() {
    try {
      Envelope hello = receiveInHandshake("Hello");
      if (hello.getBodyCase() != BodyCase.HELLO) {
        throw new ProtocolException("expected Hello, got " + Wire.describe(hello));
      }
      id = Wire.sessionId(hello.getHello().getSessionId());
      label = "agent-session-" + id.toString().substring(0, 8);
      Envelope pf = receiveInHandshake("Preflight");
      if (pf.getBodyCase() != BodyCase.PREFLIGHT) {
        throw new ProtocolException("expected Preflight, got " + Wire.describe(pf));
      }
      registered = agent.register(this);
      PreflightResult result = registered ? preflight(pf.getPreflight())
          : PreflightResult.newBuilder().setOk(false).setReason("the agent is busy (limit "
              + "maxConcurrentSessions=" + s.maxConcurrentSessions() + " reached: "
              + agent.activeSessions() + " sessions) or closing").build();
      control.send(Envelope.newBuilder().setPreflightResult(result).build());
      if (!result.getOk()) {
        log.info("{}: refused: {}", label, result.getReason());
        return;
      }
      serve();
    } catch (MigrationException | RuntimeException e) {
      log.info("{}: ended: {}", label, e.getMessage());
      if (!commitReceived) {
        control.sendQuietly(Envelope.newBuilder().setAbort(Abort.newBuilder()
            .setReason("agent: " + e.getMessage())).build());
      }
    } finally {
      synchronized (imageConnections) {
        ended = true;
      }
      imageConnections.values().forEach(f -> {
        if (!f.complete(null)) {
          Connection c = f.getNow(null);
          if (c != null && !isUsed(c)) {
            c.close();
          }
        }
      });
      PostCopyDestination pc = postCopyRun;
      if (pc != null) {
        pc.close();
      }
      long peak = 0;
      for (ImageCache c : caches.values()) {
        c.close();
        peak = Math.max(peak, CacheHooks.peakHeldBytes(c));
      }
      agent.recordPeakHeld(peak);
      control.close();
      if (registered) {
        agent.unregister(this);
      }
    }
  }

  private final java.util.Set<Connection> used = ConcurrentHashMap.newKeySet();

  private boolean isUsed(Connection c) {
    return used.contains(c);
  }

  private PreflightResult preflight(Preflight p) throws MigrationException {
    emit(new MigrationEvent.PhaseStarted(Instant.now(), MigrationPhase.PREFLIGHT));
    long t = System.nanoTime();
    CriuVersion mine = s.criu().version();
    CriuFeatures features = s.criu().checkFeatures();
    PreflightResult.Builder r = PreflightResult.newBuilder().setCriu(Wire.version(mine))
        .setPageServerHeaderSize(mine.pageServerHeaderSize()).setMemTrack(features.memTrack())
        .setMemoryLimit(s.memoryLimit()).setLazyPages(features.lazyPages());
    CriuVersion theirs = Wire.version(p.getCriu());
    flags = p.getRestore();
    String reason = null;
    if (p.getPageServerHeaderSize() != mine.pageServerHeaderSize()) {
      reason = "CRIU " + theirs + " on the source and CRIU " + mine + " here cannot exchange "
          + "pages (page-server header of " + p.getPageServerHeaderSize() + " vs "
          + mine.pageServerHeaderSize() + " bytes)";
    }
    postCopy = p.getPostCopy();
    if (reason == null && postCopy && !features.lazyPages()) {
      reason = "post-copy needs lazy pages, which this host's CRIU " + mine + " cannot restore "
          + "(userfaultfd with non-cooperative events is missing)";
    }
    if (reason == null && p.getPageSize() != 4096) {
      reason = "the source's page size " + p.getPageSize() + " is not this host's 4096";
    }
    long usable;
    try {
      usable = Files.getFileStore(s.directory()).getUsableSpace();
    } catch (IOException e) {
      throw new MigrationException("cannot stat " + s.directory() + ": " + e, e);
    }
    r.setUsableBytes(usable);
    if (reason == null && p.getEstimatedBytes() > usable) {
      reason = String.format(java.util.Locale.ROOT, "not enough space in %s: the tree's images "
          + "need about %d MiB (resident memory), %d MiB are free", s.directory(),
          p.getEstimatedBytes() >> 20, usable >> 20);
    }
    if (reason == null && p.getEstimatedBytes() > s.maxImageBytes()) {
      reason = String.format(java.util.Locale.ROOT, "the tree's images need about %d MiB "
          + "(resident memory), more than this agent's limit maxImageBytes=%d",
          p.getEstimatedBytes() >> 20, s.maxImageBytes());
    }
    if (reason == null && p.hasCpuinfo()) {
      reason = checkCpu(p.getCpuinfo().toByteArray());
    }
    emit(new MigrationEvent.PhaseFinished(Instant.now(), MigrationPhase.PREFLIGHT,
        Duration.ofNanos(System.nanoTime() - t)));
    if (reason != null) {
      return r.setOk(false).setReason(reason).build();
    }
    return r.setOk(true).build();
  }

  /** Null if this CPU can run the source's images, else why not. */
  private String checkCpu(byte[] cpuinfo) throws MigrationException {
    Path dir;
    try {
      dir = OwnedDirs.create(s.directory(), CPU_CHECK_PREFIX);
      Files.write(dir.resolve("cpuinfo.img"), cpuinfo);
    } catch (IOException e) {
      throw new MigrationException("cannot write the source's CPU description into "
          + s.directory() + ": " + e, e);
    }
    try {
      s.criu().checkCpuInfo(dir);
      return null;
    } catch (CriuException e) {
      return "this host's CPU cannot run the source's images (CPUINFO_CHECK): "
          + e.getMessage();
    } finally {
      FileTree.delete(dir);
    }
  }

  private void serve() throws MigrationException {
    while (true) {
      Envelope e = nextStep();
      switch (e.getBodyCase()) {
        case BEGIN_IMAGES -> beginImages(e.getBeginImages().getRound(),
            e.getBeginImages().hasParentRound() ? e.getBeginImages().getParentRound() : 0,
            e.getBeginImages().getFinal());
        case IMAGES_SHIPPED -> {
          int round = e.getImagesShipped().getRound();
          ImageCache c = caches.get(round);
          if (c == null) {
            throw new ProtocolException("ImagesShipped for round " + round + " never begun");
          }
          TransferReport tr = c.awaitComplete(SHIPPED_WAIT);
          emit(new MigrationEvent.Progress(Instant.now(), tr));
          if (round == finalRound) {
            restore(c);
            return;
          }
          control.send(Envelope.newBuilder().setRoundStored(RoundStored.newBuilder()
              .setRound(round)).build());
        }
        case ABORT -> {
          log.info("{}: the source aborted: {}", label, e.getAbort().getReason());
          commitReceived = true; // nothing to tell the source any more
          return;
        }
        default -> throw new ProtocolException("unexpected " + Wire.describe(e));
      }
    }
  }

  private int finalRound = -1;

  private void beginImages(int round, int parent, boolean last) throws MigrationException {
    if (caches.containsKey(round) || round < 1 || round > 1000) {
      throw new ProtocolException("round " + round + " begun twice or out of range");
    }
    Connection c = awaitImageConnection(round);
    used.add(c);
    Path dir;
    try {
      // Named after this process too, so that a later agent can tell it was left by us.
      dir = s.directory().resolve(SESSION_PREFIX + OwnedDirs.selfTag() + "-" + id + "-" + round);
    } catch (IOException e) {
      throw new MigrationException("cannot name the cache directory: " + e, e);
    }
    ImageCache.Builder b = ImageCache.builder(c).directory(dir).memoryLimit(s.memoryLimit())
        .sessionId(id).criu(s.criu());
    if (s.pageSinks() != null) {
      b = CacheHooks.pageSink(b, s.pageSinks());
    }
    b = CacheHooks.limits(b, limits, s.maxFrameBytes());
    ImageCache cache = b.start();
    caches.put(round, cache);
    if (parent > 0) {
      ImageCache p = caches.get(parent);
      if (p == null) {
        throw new ProtocolException("round " + round + " names unknown parent round " + parent);
      }
      try {
        // CRIU's page server and restore find the parent images through this link.
        Files.createSymbolicLink(cache.directory().resolve("parent"),
            Paths.get("..").resolve(p.directory().getFileName()));
      } catch (IOException e) {
        throw new MigrationException("cannot link round " + round + " to its parent: " + e, e);
      }
    }
    control.send(Envelope.newBuilder().setImagesReady(ImagesReady.newBuilder().setRound(round))
        .build());
    if (last) {
      finalRound = round;
    }
  }

  private Connection awaitImageConnection(int round) throws MigrationException {
    CompletableFuture<Connection> f =
        imageConnections.computeIfAbsent(round, r -> new CompletableFuture<>());
    long deadline = System.nanoTime() + s.restoreTimeout().toNanos();
    while (true) {
      checkStop();
      try {
        Connection c = f.get(200, TimeUnit.MILLISECONDS);
        if (c == null) {
          throw new MigrationException("session ended");
        }
        return c;
      } catch (TimeoutException e) {
        if (System.nanoTime() > deadline) {
          throw new MigrationException("the image connection of round " + round
              + " did not arrive within " + s.restoreTimeout());
        }
      } catch (ExecutionException | java.util.concurrent.CancellationException e) {
        throw new MigrationException("no image connection for round " + round);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException("interrupted", e);
      }
    }
  }

  private void restore(ImageCache cache) throws MigrationException {
    emit(new MigrationEvent.PhaseStarted(Instant.now(), MigrationPhase.RESTORE));
    long t = System.nanoTime();
    int[] pid = new int[1];
    boolean[] vetoedBeforeCommit = new boolean[1];
    // The restored root as CRIU created it (a grandchild of this JVM), so that a kill can never
    // hit another process that reused its pid.
    long[] rootStart = {-1};
    Notifier extra = s.restoreNotifier();
    if (postCopy) {
      // The restore itself touches lazy memory (CRIU's restorer faults on it), so the page
      // relay must run before the restore starts: the source connects it at status-ready,
      // right after it acknowledged post-dump.
      postCopyRun = PostCopyDestination.start(s.criu(), cache.directory(), label,
          why -> killRestored(pid[0], rootStart[0], why));
      Connection lazy = awaitImageConnection(Wire.LAZY_PAGES_ROUND);
      used.add(lazy);
      postCopyRun.attach(lazy);
    }
    Notifier hold = new Notifier() {
      @Override
      public void preRestore() throws Exception {
        checkStop();
        extra.preRestore();
        checkStop();
      }

      @Override
      public void setupNamespaces(int p) throws Exception {
        pid[0] = p;
        rootStart[0] = ProcTree.system().startTimeIfDescendant(p, ProcTree.self());
        extra.setupNamespaces(p);
      }

      @Override
      public void postSetupNamespaces() throws Exception {
        extra.postSetupNamespaces();
      }

      @Override
      public void postRestore(int p) throws Exception {
        pid[0] = p;
        rootStart[0] = ProcTree.system().startTimeIfDescendant(p, ProcTree.self());
        // The commit is awaited here, not at pre-resume: CRIU aborts the restore and kills the
        // tree when post-restore fails, also when this JVM dies and the RPC socket closes,
        // whereas it ignores a failed pre-resume and lets the tree run.
        try {
          extra.postRestore(p);
          holdForCommit();
        } catch (Exception | Error e) {
          vetoedBeforeCommit[0] = true;
          // CRIU kills the tree itself after a failed post-restore; this only makes sure.
          killRestored(pid[0], rootStart[0], "vetoed before the commit: " + e.getMessage());
          throw e;
        }
      }

      @Override
      public void networkUnlock() throws Exception {
        extra.networkUnlock();
      }

      @Override
      public void preResume() throws Exception {
        // After the commit: the source is gone, so this copy must run whatever the hook says
        // (CRIU would ignore a veto here anyway).
        try {
          extra.preResume();
        } catch (Exception e) {
          log.warn("{}: the restore notifier failed at pre-resume, after the commit; the "
              + "restored tree runs anyway: {}", label, e.toString());
        }
      }

      private void holdForCommit() throws Exception {
        checkStop();
        emit(new MigrationEvent.PhaseFinished(Instant.now(), MigrationPhase.RESTORE,
            Duration.ofNanos(System.nanoTime() - t)));
        emit(new MigrationEvent.PhaseStarted(Instant.now(), MigrationPhase.COMMIT));
        // A restored tree whose CRIU died never runs (its tasks wait for CRIU's next stage), so
        // the source must not be told to commit to it. CRIU is the tree's parent: once it dies
        // the root is reparented and no longer descends from this JVM.
        if (rootStart[0] >= 0
            && ProcTree.system().startTimeIfDescendant(pid[0], ProcTree.self()) != rootStart[0]) {
          throw new MigrationException("the destination's CRIU died while it held the restored "
              + "tree (pid " + pid[0] + "); not asking the source to commit");
        }
        control.send(Envelope.newBuilder().setRestored(Restored.newBuilder().setPid(pid[0]))
            .build());
        Envelope e = receive(s.commitTimeout(), "the source's commit");
        if (e.getBodyCase() == BodyCase.COMMIT) {
          commitReceived = true;
          if (postCopy) {
            postCopyRun.guardCopy(ProcTree.system().treeWithStartTimes(pid[0]));
          }
          return;
        }
        if (e.getBodyCase() == BodyCase.ABORT) {
          commitReceived = true; // the source knows
          throw new MigrationException("the source aborted: " + e.getAbort().getReason());
        }
        throw new ProtocolException("expected Commit, got " + Wire.describe(e));
      }

      @Override
      public void postResume() throws Exception {
        extra.postResume();
      }
    };
    RestoreResult rr;
    try {
      CriuOptions o = restoreOptions();
      if (postCopy) {
        o = o.toBuilder().lazyPages(true).build();
      }
      rr = s.criu().restore(cache.directory(), o, hold);
    } catch (MigrationException e) {
      if (!commitReceived && pid[0] > 0 && !vetoedBeforeCommit[0]) {
        // CRIU failed (or died) after creating the tree; tasks it no longer traces would run.
        killRestored(pid[0], rootStart[0], "restore failed: " + e.getMessage());
      }
      if (!commitReceived) {
        control.sendQuietly(Envelope.newBuilder().setRestoreFailed(RestoreFailed.newBuilder()
            .setErrno(e.errno()).setMessage(e.getMessage())).build());
        commitReceived = true; // told the source; no Abort on top
      }
      throw e;
    }
    if (vetoedBeforeCommit[0]) {
      // Should CRIU report success after the veto, the copy was killed above all the same.
      throw new MigrationException("the restore was vetoed before the commit; the restored "
          + "copy (pid " + pid[0] + ") was killed");
    }
    if (!postCopy) {
      agent.completed();
    }
    control.send(Envelope.newBuilder().setResumed(Resumed.newBuilder().setPid(rr.pid())).build());
    emit(new MigrationEvent.Resumed(Instant.now(), true, rr.pid()));
    log.info("{}: restored tree runs as pid {}", label, rr.pid());
    if (postCopy) {
      awaitPostCopy(rr.pid());
    }
  }

  /**
   * Post-copy: the tree runs while its memory arrives. Returns once all of it did; if the
   * post-copy fails, the copy has been killed (by the relay) before this throws.
   */
  private void awaitPostCopy(int root) throws MigrationException {
    emit(new MigrationEvent.PhaseStarted(Instant.now(), MigrationPhase.POST_COPY));
    long t = System.nanoTime();
    PostCopyDestination pc = postCopyRun;
    MigrationException st = stop;
    if (st != null) {
      pc.fail(st.getMessage()); // an abort() from now on fails the relay itself
    }
    while (true) {
      try {
        pc.done().get(200, TimeUnit.MILLISECONDS);
        break;
      } catch (TimeoutException e) {
        pc.checkDaemon();
      } catch (ExecutionException e) {
        throw new MigrationException(label + ": " + e.getCause().getMessage() + "; the copy (pid "
            + root + ") was killed and the source resumes its tree", e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        pc.fail("interrupted");
        throw new MigrationException(label + ": interrupted during post-copy", e);
      }
    }
    agent.completed();
    Duration took = Duration.ofNanos(System.nanoTime() - t);
    emit(new MigrationEvent.PhaseFinished(Instant.now(), MigrationPhase.POST_COPY, took));
    log.info("{}: post-copy of pid {} complete in {} ms ({} bytes)", label, root,
        took.toMillis(), pc.bytesReceived());
  }

  /** Kills the restored tree rooted at {@code root}, which must not run (no commit). */
  private void killRestored(int root, long startTime, String why) {
    if (root <= 0 || startTime < 0) {
      return; // not a process CRIU created for us (or none yet)
    }
    boolean gone = ProcTree.system().killTree(root, startTime, 5_000);
    if (gone) {
      log.info("{}: killed the restored copy (pid {}): {}", label, root, why);
    } else {
      log.error("{}: the restored copy (pid {}) would not die; it may run twice: {}", label,
          root, why);
    }
  }

  private CriuOptions restoreOptions() {
    CriuOptions.Builder b = CriuOptions.builder().tcpEstablished(flags.getTcpEstablished())
        .shellJob(flags.getShellJob()).externalUnixSockets(flags.getExtUnixSk())
        .fileLocks(flags.getFileLocks()).externals(List.copyOf(flags.getExternalList()));
    if (flags.hasManageCgroups()) {
      b.manageCgroups(CriuOptions.CgroupMode.valueOf(flags.getManageCgroups()));
    }
    if (flags.hasNetworkLock()) {
      b.networkLock(CriuOptions.NetworkLockMethod.valueOf(flags.getNetworkLock()));
    }
    return b.build();
  }

  private Envelope receiveInHandshake(String what) throws MigrationException {
    return control.receive(handshakeDeadline, () -> stop, () -> label + ": limit "
        + "handshakeTimeout=" + s.handshakeTimeout().toMillis() + " ms exceeded: no " + what
        + " from the source in time");
  }

  /**
   * The source's next message. It may take long while images arrive (a round's transfer), but
   * not {@code idleTimeout} without a message and without image progress, and never longer
   * than the restore timeout; a limit the images broke ends the wait at once.
   */
  private Envelope nextStep() throws MigrationException {
    long start = System.nanoTime();
    long idle = s.idleTimeout().toNanos();
    long hardDeadline = start + s.restoreTimeout().toNanos();
    long idleDeadline = start + idle;
    long mark = progressMark();
    while (true) {
      long now = System.nanoTime();
      Envelope e = control.poll(Math.min(now + PROGRESS_CHECK_NANOS,
          Math.min(idleDeadline, hardDeadline)), () -> stop);
      if (e != null) {
        return e;
      }
      String refusal = limits.refusal();
      if (refusal != null) {
        throw new MigrationException(label + ": " + refusal);
      }
      now = System.nanoTime();
      long m = progressMark();
      if (m != mark) {
        mark = m;
        idleDeadline = now + idle;
      }
      if (now - idleDeadline >= 0) {
        throw new TransportException(label + ": limit idleTimeout=" + s.idleTimeout().toMillis()
            + " ms exceeded: neither a step from the source nor image data for that long",
            110 /* ETIMEDOUT */, null);
      }
      if (now - hardDeadline >= 0) {
        throw new TransportException(label + ": no step from the source within the restore "
            + "timeout of " + s.restoreTimeout().toMillis() + " ms", 110 /* ETIMEDOUT */, null);
      }
    }
  }

  /**
   * Changes whenever images arrive: connections, files opened (by their announced sizes) and
   * stored, page stream bytes.
   */
  private long progressMark() {
    long m = imageConnections.size() + limits.bytes() + limits.files();
    for (ImageCache c : caches.values()) {
      TransferReport p = c.progress();
      m += p.files() + p.fileBytes() + p.pages();
    }
    return m;
  }

  private Envelope receive(Duration timeout, String what) throws MigrationException {
    return control.receive(System.nanoTime() + timeout.toNanos(), () -> stop,
        () -> label + ": no " + what + " within " + timeout.toMillis() + " ms");
  }

  private void checkStop() throws MigrationException {
    MigrationException st = stop;
    if (st != null) {
      throw st;
    }
  }

  private void emit(MigrationEvent e) {
    try {
      s.listener().onEvent(e);
    } catch (RuntimeException ex) {
      log.warn("{}: listener failed on {}: {}", label, e, ex.toString());
    }
  }
}

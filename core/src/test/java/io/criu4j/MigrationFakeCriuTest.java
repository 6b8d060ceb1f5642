package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.internal.image.InProcessPageSink;
import io.criu4j.internal.image.SocketChannels;
import io.criu4j.internal.image.SyntheticPageClient;
import io.criu4j.internal.migrate.SourceSettings;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import io.criu4j.testing.FakeCriu;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.RecordedRequest;
import io.criu4j.testing.TmpfsDir;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The migration protocol between a {@link MigrationSession} and a {@link MigrationAgent} in this
 * JVM, each with its own fake CRIU: the pre-flight refusals, pre-copy, and the orderings of the
 * commit protocol (restore failure, cancellation at each phase, connection loss, timeouts). The
 * fake writes no images, so the source's test hook plays CRIU's page stream, and the agent's
 * page server is in-process. After every test no descriptor, child process, session or
 * directory is left.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 90, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MigrationFakeCriuTest {
  private static final CriuFeatures NO_MEM_TRACK = new CriuFeatures(false, true, true);
  private static final CriuFeatures MEM_TRACK = new CriuFeatures(true, true, true);
  private static final int RESTORED_PID = 4242;
  private static final DumpStats FINAL_STATS = new DumpStats(100, 2000, 300, 400, 512, 0, 64, 0);

  private FakeCriu srcFake;
  private FakeCriu dstFake;
  private Criu srcCriu;
  private Criu dstCriu;
  private TmpfsDir staging;
  private TmpfsDir cacheDir;
  private Process victim;
  private CuttableTransport transport;
  private MigrationAgent agent;
  private final List<MigrationEvent> events = new CopyOnWriteArrayList<>();
  private final List<MigrationEvent> agentEvents = new CopyOnWriteArrayList<>();
  private volatile Consumer<MigrationEvent> onEvent = e -> {};

  @BeforeEach
  void setUp() throws Exception {
    srcFake = FakeCriu.start();
    dstFake = FakeCriu.start();
    srcCriu = Criu.builder().binary(srcFake.binary()).timeout(Duration.ofSeconds(30)).build();
    dstCriu = Criu.builder().binary(dstFake.binary()).timeout(Duration.ofSeconds(30)).build();
    staging = TmpfsDir.create("mig-src-");
    cacheDir = TmpfsDir.create("mig-dst-");
    victim = new ProcessBuilder("sleep", "300").start();
    transport = new CuttableTransport(Transports.inMemory());
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (agent != null) {
        agent.close();
        assertThat(agent.activeSessions()).as("sessions left on the agent").isZero();
      }
      assertThat(listing(staging.path())).as("left in the staging parent").isEmpty();
      assertThat(listing(cacheDir.path())).as("left in the cache parent").isEmpty();
      assertThat(srcFake.errors()).as("source fake failures").isEmpty();
      assertThat(dstFake.errors()).as("destination fake failures").isEmpty();
      assertThat(srcFake.pendingScripts()).as("source scripts unused").isZero();
      assertThat(dstFake.pendingScripts()).as("destination scripts unused").isZero();
    } finally {
      victim.destroyForcibly().waitFor();
      victim.getInputStream().close();
      victim.getOutputStream().close();
      victim.getErrorStream().close();
      srcFake.close();
      dstFake.close();
      staging.close();
      cacheDir.close();
    }
  }

  private static List<Path> listing(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.toList();
    }
  }

  // ------------------------------------------------------------------------- set-up helpers

  private MigrationAgent startAgent(Consumer<MigrationAgent.Builder> tweak) throws Exception {
    MigrationAgent.Builder b = MigrationAgent.builder()
        .listen(transport, URI.create("mem://agent-" + UUID.randomUUID()))
        .directory(cacheDir.path()).criu(dstCriu).listener(agentEvents::add)
        .pageSinks(InProcessPageSink.factory(24, 4096));
    tweak.accept(b);
    agent = b.start();
    return agent;
  }

  private MigrationAgent startAgent() throws Exception {
    return startAgent(b -> {});
  }

  /** Plays CRIU: a cpuinfo.img after CPUINFO_DUMP, a page stream on ps.fd after each dump. */
  private static class PlayCriu implements SourceSettings.TestHooks {
    @Override
    public int untracedProcess(int root) {
      return -1; // the fake CRIU never traces the victim
    }

    @Override
    public void cpuInfoDumped(Path dir) throws Exception {
      Files.write(dir.resolve("cpuinfo.img"), new byte[] {1, 2, 3, 4});
    }

    @Override
    public void imagesWritten(int round, ImageProxy proxy) throws Exception {
      int fd = proxy.configure(CriuOptions.DEFAULTS).pageServer().fd();
      try (UnixSocket criu = UnixSocket.adopt(Fd.duplicate(fd, 3).release())) {
        new SyntheticPageClient(24, 4096).run(SocketChannels.of(criu), 1, 16, 8);
      }
    }
  }

  private MigrationSession.Builder session() {
    return MigrationSession.builder().pid((int) victim.pid())
        .destination(transport, agent.address()).criu(srcCriu)
        .stagingDirectory(staging.path()).listener(e -> {
          events.add(e);
          onEvent.accept(e);
        }).testHooks(new PlayCriu());
  }

  private void sourcePreflightScripts(CriuFeatures f) {
    srcFake.enqueue(Script.features(f, true));
    srcFake.enqueue(Script.succeed()); // CPUINFO_DUMP
  }

  private void destinationPreflightScripts(CriuFeatures f) {
    dstFake.enqueue(Script.features(f, true));
    dstFake.enqueue(Script.succeed()); // CPUINFO_CHECK
  }

  private void finalDumpScript() {
    srcFake.enqueue(Script.notifying("pre-dump", "post-dump").thenSucceed()
        .withStats(FINAL_STATS));
  }

  private void restoreScript() {
    dstFake.enqueue(Script.notifying("pre-restore").notify("setup-namespaces", RESTORED_PID)
        .notify("post-restore", RESTORED_PID).notify("pre-resume").notify("post-resume")
        .thenRestored(RESTORED_PID));
  }

  /** The request types a fake received, notification answers as NOTIFY+ (go on) or NOTIFY-. */
  private static List<String> received(FakeCriu fake) throws InterruptedException {
    List<String> out = new ArrayList<>();
    while (fake.pendingRequests() > 0) {
      RecordedRequest r = fake.takeRequest();
      if (r.type().equals("VERSION")) {
        continue;
      }
      out.add(r.type().equals("NOTIFY") ? (r.notifySuccess() ? "NOTIFY+" : "NOTIFY-")
          : r.type());
    }
    return out;
  }

  /**
   * Like {@link #received}, but waits (a few seconds at most) for a veto to be recorded: the
   * fake reports what it received asynchronously, so its last record may trail the agent.
   */
  private static List<String> receivedUntilVeto(FakeCriu fake) throws InterruptedException {
    List<String> out = new ArrayList<>();
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    do {
      out.addAll(received(fake));
      if (!out.isEmpty() && out.get(out.size() - 1).equals("NOTIFY-")) {
        break;
      }
      Thread.sleep(20);
    } while (System.nanoTime() < deadline);
    return out;
  }

  private MigrationException failedMigration(MigrationSession.Builder b) {
    try (MigrationSession s = b.build()) {
      return catchThrowableOfType(s::migrate, MigrationException.class);
    }
  }

  /** Waits until the agent has ended every session (its last CRIU answers are recorded). */
  private void awaitAgentIdle() throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (agent.activeSessions() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertThat(agent.activeSessions()).as("sessions still running on the agent").isZero();
  }

  private boolean victimRuns() {
    return victim.isAlive();
  }

  // ------------------------------------------------------------------------- success

  @Test
  @DisplayName("an agent starting reclaims what a killed agent left in its directory, and only "
      + "that")
  void agentStartReclaimsDirectoriesOfEndedAgents() throws Exception {
    Process ended = new ProcessBuilder("true").start();
    ended.waitFor();
    Path session = Files.createDirectory(cacheDir.path().resolve("criu4j-" + ended.pid()
        + ".1-0b5e3c1a-1"));
    Files.writeString(session.resolve("pages-1.img"), "left by a SIGKILLed agent");
    Path work = Files.createDirectory(cacheDir.path().resolve(".criu4j-cache-work-"
        + ended.pid() + ".1-q7"));
    Path unrelated = Files.createDirectory(cacheDir.path().resolve("criu4j-notes"));

    startAgent();

    assertThat(session).doesNotExist();
    assertThat(work).doesNotExist();
    assertThat(unrelated).isDirectory();
    Files.delete(unrelated); // the directory must be empty for the next test
  }

  @Test
  @DisplayName("downtime ends when the agent reports the tree running, not when the source's "
      + "CRIU finishes tearing down the original")
  void downtimeEndsWhenTheDestinationRuns() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    Duration teardown = Duration.ofMillis(1500);
    srcFake.enqueue(Script.notifying("pre-dump", "post-dump").pause(teardown).thenSucceed()
        .withStats(FINAL_STATS));
    restoreScript();

    MigrationReport report;
    try (MigrationSession s = session().build()) {
      report = s.migrate();
    }

    assertThat(report.destinationPid()).isEqualTo(RESTORED_PID);
    assertThat(report.phases().get(MigrationPhase.COMMIT)).isGreaterThanOrEqualTo(teardown);
    assertThat(report.downtime()).isPositive().isLessThan(teardown);
  }

  @Test
  @DisplayName("a migration without mem_track goes straight to the final dump and commits")
  void migrationCommitsAndReportsWhatHappened() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    restoreScript();

    MigrationReport report;
    try (MigrationSession s = session().build()) {
      report = s.migrate();
    }

    assertThat(report.destinationPid()).isEqualTo(RESTORED_PID);
    assertThat(report.sourcePid()).isEqualTo(victim.pid());
    assertThat(report.sourceCriu()).isEqualTo(CriuVersion.of(4, 1, 1));
    assertThat(report.pages()).isEqualTo(16);
    assertThat(report.pageBytes()).isEqualTo(16 * 4096);
    assertThat(report.rounds()).singleElement().satisfies(r -> {
      assertThat(r.pagesWritten()).isEqualTo(64);
      assertThat(r.frozen()).isEqualTo(Duration.ofMillis(2));
    });
    assertThat(report.preCopyNote()).contains("mem_track").contains("on both hosts");
    assertThat(report.downtime()).isPositive().isLessThan(report.total());
    assertThat(report.phases()).containsOnlyKeys(MigrationPhase.PREFLIGHT,
        MigrationPhase.FINAL_DUMP, MigrationPhase.TRANSFER, MigrationPhase.RESTORE,
        MigrationPhase.COMMIT, MigrationPhase.CLEANUP);
    assertThat(report.toJson()).contains("\"destinationPid\":4242")
        .contains("\"preCopyNote\":\"pre-copy skipped");

    assertThat(received(srcFake)).containsExactly("FEATURE_CHECK", "CPUINFO_DUMP", "DUMP",
        "NOTIFY+", "NOTIFY+");
    awaitAgentIdle();
    assertThat(received(dstFake)).containsExactly("FEATURE_CHECK", "CPUINFO_CHECK", "RESTORE",
        "NOTIFY+", "NOTIFY+", "NOTIFY+", "NOTIFY+", "NOTIFY+");
    assertThat(events).filteredOn(e -> e instanceof MigrationEvent.Note).singleElement()
        .extracting(e -> ((MigrationEvent.Note) e).message()).asString().contains("mem_track");
    List<String> order = events.stream().filter(e -> e instanceof MigrationEvent.Frozen
        || e instanceof MigrationEvent.Resumed).map(e -> e.getClass().getSimpleName()).toList();
    assertThat(order).containsExactly("Frozen", "Resumed");
    assertThat(agent.completedSessions()).isEqualTo(1);
  }

  @Test
  @DisplayName("with mem_track on both sides, pre-copy rounds run until the stop rule ends them")
  void preCopyRoundsRunUntilTheStopRuleStopsThem() throws Exception {
    startAgent();
    sourcePreflightScripts(MEM_TRACK);
    destinationPreflightScripts(MEM_TRACK);
    srcFake.enqueue(Script.succeed().withStats(new DumpStats(0, 0, 0, 0, 300_000, 0,
        262_144, 0)));
    srcFake.enqueue(Script.succeed().withStats(new DumpStats(0, 0, 0, 0, 300_000, 250_000,
        10_000, 0)));
    srcFake.enqueue(Script.succeed().withStats(new DumpStats(0, 0, 0, 0, 300_000, 299_000,
        900, 0)));
    finalDumpScript();
    restoreScript();

    MigrationReport report;
    try (MigrationSession s = session().build()) {
      report = s.migrate();
    }

    assertThat(report.rounds()).extracting(RoundStats::pagesWritten)
        .containsExactly(262_144L, 10_000L, 900L, 64L);
    assertThat(report.preCopyNote()).contains("3 round(s)").contains("converged");
    assertThat(report.phases()).containsKey(MigrationPhase.PRE_COPY);
    assertThat(report.pages()).as("16 synthetic pages per round").isEqualTo(64);
    List<RecordedRequest> preDumps = new ArrayList<>();
    RecordedRequest dump = null;
    while (srcFake.pendingRequests() > 0) {
      RecordedRequest r = srcFake.takeRequest();
      if (r.type().equals("SINGLE_PRE_DUMP")) {
        preDumps.add(r);
      } else if (r.type().equals("DUMP")) {
        dump = r;
      }
    }
    assertThat(preDumps).hasSize(3).allSatisfy(r ->
        assertThat(r.option("track_mem")).isEqualTo(true));
    assertThat(dump).isNotNull();
    assertThat(dump.option("track_mem")).isEqualTo(true);
    assertThat(events).filteredOn(e -> e instanceof MigrationEvent.RoundFinished).hasSize(4);
  }

  // ------------------------------------------------------------------------- pre-flight

  @Test
  void aPidThatDoesNotExistIsRefusedBeforeAnythingElse() throws Exception {
    startAgent();
    MigrationException e = failedMigration(session().pid(Integer.MAX_VALUE - 7));

    assertThat(e).hasMessageContaining("does not exist");
    assertThat(e.errnoName()).isEqualTo("ESRCH");
    assertThat(received(srcFake)).isEmpty();
    assertThat(agent.completedSessions()).isZero();
  }

  @Test
  void thisProcessItselfIsRefused() throws Exception {
    startAgent();
    MigrationException e = failedMigration(session().pid((int) ProcessHandle.current().pid()));

    assertThat(e).hasMessageContaining("would freeze the migration itself");
    assertThat(received(srcFake)).isEmpty();
  }

  @Test
  void anUnreachableAgentIsRefusedBeforeFreezing() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    MigrationException e = failedMigration(session()
        .destination(transport, URI.create("mem://nobody-" + UUID.randomUUID())));

    assertThat(e).isInstanceOf(TransportException.class).hasMessageContaining("cannot reach");
    assertThat(received(srcFake)).doesNotContain("DUMP");
    assertThat(victimRuns()).isTrue();
  }

  @Test
  void peersWhosePageServerHeadersDifferAreRefused() throws Exception {
    dstFake.version(CriuVersion.of(4, 2, 0));
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    dstFake.enqueue(Script.features(NO_MEM_TRACK, true));
    MigrationException e = failedMigration(session());

    assertThat(e).hasMessageContaining("refused").hasMessageContaining("cannot exchange pages")
        .hasMessageContaining("24 vs 32");
    assertThat(received(srcFake)).doesNotContain("DUMP");
    assertThat(received(dstFake)).doesNotContain("CPUINFO_CHECK", "RESTORE");
  }

  @Test
  void aCpuTheImagesCannotRunOnIsRefused() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    dstFake.enqueue(Script.features(NO_MEM_TRACK, true));
    dstFake.enqueue(Script.fail(22, "cpu feature mismatch: avx512f"));
    MigrationException e = failedMigration(session());

    assertThat(e).hasMessageContaining("CPU").hasMessageContaining("avx512f");
    assertThat(received(srcFake)).doesNotContain("DUMP");
  }

  @Test
  void aDestinationWithoutSpaceForTheImagesIsRefused() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    dstFake.enqueue(Script.features(NO_MEM_TRACK, true)); // no CPU check after a refusal
    MigrationException e = failedMigration(session().testHooks(new PlayCriu() {
      @Override
      public long estimatedBytes(long measured) {
        return 1L << 60;
      }
    }));

    assertThat(e).hasMessageContaining("not enough space").hasMessageContaining("MiB");
    assertThat(received(srcFake)).doesNotContain("DUMP");
  }

  @Test
  void aFailingSourceCriuRefusesBeforeFreezing() throws Exception {
    startAgent();
    srcFake.enqueue(Script.features(NO_MEM_TRACK, true));
    srcFake.enqueue(Script.fail(1, "cannot dump cpuinfo"));
    MigrationException e = failedMigration(session());

    assertThat(e).isInstanceOf(CriuException.class).hasMessageContaining("CPUINFO_DUMP");
    assertThat(victimRuns()).isTrue();
  }

  /** Plays CRIU and answers for this host's pipes, whose sysctl limit the test cannot set. */
  private static PlayCriu pipes(String refusal) {
    return new PlayCriu() {
      @Override
      public String pipeRefusal() {
        return refusal;
      }
    };
  }

  @Test
  void postCopyIsRefusedBeforeFreezingWhenTheSourceCriuLacksLazyPages() throws Exception {
    startAgent();
    srcFake.enqueue(Script.features(new CriuFeatures(false, false, true), true));
    MigrationException e = failedMigration(session().postCopy(true).testHooks(pipes(null)));

    assertThat(e).hasMessageContaining("post-copy").hasMessageContaining("refused")
        .hasMessageContaining("this host's CRIU cannot dump with lazy pages");
    assertThat(received(srcFake)).containsExactly("FEATURE_CHECK");
    assertThat(received(dstFake)).isEmpty();
    assertThat(victimRuns()).isTrue();
  }

  @Test
  void postCopyIsRefusedBeforeFreezingWhenThePipesAreTooSmallForTheLazyPageServer()
      throws Exception {
    startAgent();
    srcFake.enqueue(Script.features(NO_MEM_TRACK, true));
    MigrationException e = failedMigration(session().postCopy(true)
        .testHooks(pipes("pipe-max-size is 65536")));

    assertThat(e).hasMessageContaining("post-copy").hasMessageContaining("refused")
        .hasMessageContaining("pipe-max-size is 65536");
    assertThat(received(srcFake)).containsExactly("FEATURE_CHECK");
    assertThat(victimRuns()).isTrue();
  }

  @Test
  void postCopyIsRefusedBeforeFreezingWhenTheDestinationCriuLacksLazyPages() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    dstFake.enqueue(Script.features(new CriuFeatures(false, false, true), true));
    MigrationException e = failedMigration(session().postCopy(true).testHooks(pipes(null)));

    assertThat(e).hasMessageContaining("the destination " + agent.address())
        .hasMessageContaining("refused").hasMessageContaining("post-copy needs lazy pages");
    assertThat(received(srcFake)).doesNotContain("DUMP", "PRE_DUMP");
    assertThat(received(dstFake)).containsExactly("FEATURE_CHECK");
    assertThat(victimRuns()).isTrue();
  }

  @Test
  void aBusyAgentRefusesAtPreFlight() throws Exception {
    java.util.concurrent.CountDownLatch inRestore = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    startAgent(b -> b.maxConcurrentSessions(1).restoreNotifier(new Notifier() {
      @Override
      public void preRestore() throws Exception {
        inRestore.countDown();
        release.await();
        throw new IllegalStateException("first session vetoed by the test");
      }
    }));
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    dstFake.enqueue(Script.notifying("pre-restore").thenRestored(RESTORED_PID));
    MigrationSession first = session().build();
    Thread t = new Thread(() -> catchThrowableOfType(first::migrate, MigrationException.class));
    t.start();
    inRestore.await();
    sourcePreflightScripts(NO_MEM_TRACK);

    MigrationException e = failedMigration(session());
    release.countDown();
    t.join();
    first.close();

    assertThat(e).hasMessageContaining("busy");
  }

  // ------------------------------------------------------------------------- commit protocol

  @Test
  @DisplayName("a failed destination restore vetoes post-dump: the source resumes")
  void restoreFailureVetoesPostDump() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    dstFake.enqueue(Script.notifying("pre-restore").thenFail(17, "File exists: pid 1 taken"));

    MigrationException e = failedMigration(session());

    assertThat(e).hasMessageContaining("could not restore").hasMessageContaining("pid 1 taken");
    assertThat(received(srcFake)).containsExactly("FEATURE_CHECK", "CPUINFO_DUMP", "DUMP",
        "NOTIFY+", "NOTIFY-");
    assertThat(events).anyMatch(ev -> ev instanceof MigrationEvent.Resumed r && !r.onDestination());
    assertThat(agent.completedSessions()).isZero();
  }

  @Test
  @DisplayName("a restore vetoed by the agent's own notifier vetoes post-dump")
  void agentNotifierVetoRollsBack() throws Exception {
    startAgent(b -> b.restoreNotifier(new Notifier() {
      @Override
      public void preRestore() {
        throw new IllegalStateException("not today");
      }
    }));
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    dstFake.enqueue(Script.notifying("pre-restore").thenRestored(RESTORED_PID));

    MigrationException e = failedMigration(session());

    assertThat(e).hasMessageContaining("could not restore");
    awaitAgentIdle();
    assertThat(received(srcFake)).endsWith("NOTIFY-");
    assertThat(receivedUntilVeto(dstFake)).endsWith("NOTIFY-");
  }

  @ParameterizedTest(name = "cancelled when {0} starts")
  @EnumSource(value = MigrationPhase.class, names = {"PREFLIGHT", "FINAL_DUMP", "TRANSFER",
      "RESTORE"})
  void cancellationBeforeTheCommitRollsBack(MigrationPhase phase) throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    if (phase != MigrationPhase.PREFLIGHT) {
      destinationPreflightScripts(NO_MEM_TRACK);
    }
    boolean dumps = phase == MigrationPhase.TRANSFER || phase == MigrationPhase.RESTORE;
    if (dumps) {
      finalDumpScript();
    }
    if (phase == MigrationPhase.RESTORE) {
      restoreScript();
    }
    MigrationSession s = session().build();
    onEvent = e -> {
      if (e instanceof MigrationEvent.PhaseStarted p && p.phase() == phase) {
        s.cancel();
      }
    };
    MigrationException e;
    try (s) {
      e = catchThrowableOfType(s::migrate, MigrationException.class);
    }

    assertThat(e).isInstanceOf(MigrationCancelledException.class);
    assertThat(victimRuns()).isTrue();
    List<String> src = received(srcFake);
    if (dumps) {
      assertThat(src).containsSubsequence("DUMP", "NOTIFY+", "NOTIFY-");
      assertThat(e).hasMessageContaining("resumed");
    } else {
      assertThat(src).doesNotContain("DUMP");
    }
    awaitAgentIdle();
    if (phase == MigrationPhase.RESTORE) {
      assertThat(receivedUntilVeto(dstFake)).as("the held restore is vetoed")
          .endsWith("NOTIFY-");
    }
    assertThat(agent.completedSessions()).isZero();
  }

  @Test
  void cancellationBeforeMigrateFailsAtOnce() throws Exception {
    startAgent();
    MigrationSession s = session().build();
    s.cancel();
    MigrationException e;
    try (s) {
      e = catchThrowableOfType(s::migrate, MigrationException.class);
    }
    assertThat(e).isInstanceOf(MigrationCancelledException.class);
    assertThat(received(srcFake)).isEmpty();
  }

  @Test
  void cancellationAfterTheCommitHasNoEffect() throws Exception {
    startAgent();
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    restoreScript();
    MigrationSession s = session().build();
    onEvent = e -> {
      if (e instanceof MigrationEvent.PhaseStarted p && p.phase() == MigrationPhase.COMMIT) {
        s.cancel();
      }
    };
    MigrationReport report;
    try (s) {
      report = s.migrate();
    }
    assertThat(report.destinationPid()).isEqualTo(RESTORED_PID);
  }

  @Test
  void migrateRunsOnlyOnce() throws Exception {
    startAgent();
    MigrationSession s = session().pid(Integer.MAX_VALUE - 7).build();
    catchThrowableOfType(s::migrate, MigrationException.class);
    try (s) {
      org.assertj.core.api.Assertions.assertThatThrownBy(s::migrate)
          .isInstanceOf(IllegalStateException.class).hasMessageContaining("already");
    }
  }

  @Test
  @DisplayName("losing the control connection while the restore is held rolls both sides back")
  void connectionLossBeforeTheCommitRollsBothSidesBack() throws Exception {
    startAgent(b -> b.restoreNotifier(new Notifier() {
      @Override
      public void postRestore(int pid) {
        transport.cutAll();
      }
    }));
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    restoreScript();

    MigrationException e = failedMigration(session());

    assertThat(e).isInstanceOf(TransportException.class);
    assertThat(received(srcFake)).endsWith("NOTIFY-");
    awaitAgentIdle();
    assertThat(receivedUntilVeto(dstFake)).as("restore vetoed at post-restore")
        .endsWith("NOTIFY-");
    assertThat(agent.completedSessions()).isZero();
  }

  @Test
  @DisplayName("a restore slower than the RESTORE timeout rolls back")
  void restoreTimeoutRollsBack() throws Exception {
    startAgent(b -> b.restoreNotifier(new Notifier() {
      @Override
      public void preRestore() throws Exception {
        Thread.sleep(2500);
      }
    }));
    sourcePreflightScripts(NO_MEM_TRACK);
    destinationPreflightScripts(NO_MEM_TRACK);
    finalDumpScript();
    restoreScript();

    MigrationException e = failedMigration(session()
        .phaseTimeout(MigrationPhase.RESTORE, Duration.ofMillis(800)));

    assertThat(e).hasMessageContaining("RESTORE timed out after 800 ms");
    assertThat(received(srcFake)).endsWith("NOTIFY-");
    awaitAgentIdle();
    assertThat(receivedUntilVeto(dstFake)).as("the agent vetoes once it hears the abort")
        .endsWith("NOTIFY-");
  }

  /** A transport whose connections (both directions) the test can cut at once. */
  static final class CuttableTransport implements Transport {
    private final Transport inner;
    private final List<Connection> connections = new CopyOnWriteArrayList<>();

    CuttableTransport(Transport inner) {
      this.inner = inner;
    }

    void cutAll() {
      connections.forEach(Connection::close);
    }

    @Override
    public String scheme() {
      return inner.scheme();
    }

    @Override
    public Listener listen(URI address) throws TransportException {
      Listener l = inner.listen(address);
      return new Listener() {
        @Override
        public URI address() {
          return l.address();
        }

        @Override
        public Connection accept() throws TransportException {
          return track(l.accept());
        }

        @Override
        public Connection accept(Duration timeout) throws TransportException {
          return track(l.accept(timeout));
        }

        @Override
        public boolean isOpen() {
          return l.isOpen();
        }

        @Override
        public void close() {
          l.close();
        }
      };
    }

    @Override
    public Connection connect(URI address, Duration timeout) throws TransportException {
      return track(inner.connect(address, timeout));
    }

    private Connection track(Connection c) {
      connections.add(c);
      return c;
    }
  }
}

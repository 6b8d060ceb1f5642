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
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import io.criu4j.testing.FakeCriu;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.TmpfsDir;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The agent's per-session limits ({@link MigrationAgent.Builder#maxImageBytes},
 * {@code maxFiles}, {@code maxConcurrentSessions}, {@code handshakeTimeout},
 * {@code idleTimeout}, {@code maxFrameBytes}): a session that exceeds one ends with an error
 * naming the limit and its value, its source resumes the process, and another session held in
 * its restore on the same agent at that moment completes untouched. CRIU is faked on both
 * sides; the source's test hook plays CRIU's images (extra files in the staging directory, then
 * a synthetic page stream).
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 90, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MigrationLimitsTest {
  private static final CriuFeatures FEATURES = new CriuFeatures(false, true, true);
  private static final int RESTORED_PID = 4242;
  private static final DumpStats STATS = new DumpStats(100, 2000, 300, 400, 512, 0, 64, 0);
  private static final Duration PATIENCE = Duration.ofSeconds(20);
  /**
   * The idle timeout of the idle tests: above the time the fake CRIU takes to start on a busy
   * machine (no images flow meanwhile), below what the tests stall for.
   */
  private static final Duration IDLE = Duration.ofMillis(2500);

  private FakeCriu srcFake;
  private FakeCriu dstFake;
  private Criu srcCriu;
  private Criu dstCriu;
  private TmpfsDir staging;
  private TmpfsDir cacheDir;
  private Process victim;
  private Transport transport;
  private MigrationAgent agent;
  private final CountDownLatch firstRestoreHeld = new CountDownLatch(1);
  private final CountDownLatch releaseFirstRestore = new CountDownLatch(1);

  @BeforeEach
  void setUp() throws Exception {
    srcFake = FakeCriu.start();
    dstFake = FakeCriu.start();
    srcCriu = Criu.builder().binary(srcFake.binary()).timeout(Duration.ofSeconds(30)).build();
    dstCriu = Criu.builder().binary(dstFake.binary()).timeout(Duration.ofSeconds(30)).build();
    staging = TmpfsDir.create("lim-src-");
    cacheDir = TmpfsDir.create("lim-dst-");
    victim = new ProcessBuilder("sleep", "300").start();
    transport = Transports.inMemory();
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      releaseFirstRestore.countDown();
      if (agent != null) {
        agent.close();
        assertThat(agent.activeSessions()).isZero();
      }
      try (Stream<Path> s = Files.list(cacheDir.path())) {
        assertThat(s.toList()).as("left in the cache parent").isEmpty();
      }
      try (Stream<Path> s = Files.list(staging.path())) {
        assertThat(s.toList()).as("left in the staging parent").isEmpty();
      }
      assertThat(srcFake.errors()).isEmpty();
      assertThat(dstFake.errors()).isEmpty();
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

  // ------------------------------------------------------------------------- helpers

  /** An agent whose first restore waits at pre-restore until the test releases it. */
  private void startAgent(Consumer<MigrationAgent.Builder> limits) throws Exception {
    MigrationAgent.Builder b = MigrationAgent.builder()
        .listen(transport, URI.create("mem://limits-" + UUID.randomUUID()))
        .directory(cacheDir.path()).criu(dstCriu)
        .pageSinks(InProcessPageSink.factory(24, 4096))
        .restoreNotifier(new Notifier() {
          private boolean first = true;

          @Override
          public synchronized void preRestore() throws Exception {
            if (first) {
              first = false;
              firstRestoreHeld.countDown();
              releaseFirstRestore.await();
            }
          }
        });
    limits.accept(b);
    agent = b.start();
  }

  /** Plays CRIU: some files into the staging directory, then a page stream of some pages. */
  private static class PlayCriu implements SourceSettings.TestHooks {
    private final int files;
    private final int fileBytes;
    private final long pages;
    private final long pauseMillis;

    @Override
    public int untracedProcess(int root) {
      return -1; // the fake CRIU never traces the victim
    }

    PlayCriu(int files, int fileBytes, long pages, long pauseMillis) {
      this.files = files;
      this.fileBytes = fileBytes;
      this.pages = pages;
      this.pauseMillis = pauseMillis;
    }

    @Override
    public long estimatedBytes(long measured) {
      return 64 * 1024; // the synthetic images, not the stand-in process's memory
    }

    @Override
    public void cpuInfoDumped(Path dir) throws Exception {
      Files.write(dir.resolve("cpuinfo.img"), new byte[] {1, 2, 3, 4});
    }

    @Override
    public void imagesWritten(int round, ImageProxy proxy) throws Exception {
      for (int i = 0; i < files; i++) {
        Files.write(proxy.stagingDir().resolve("extra-" + i + ".img"), new byte[fileBytes]);
        Thread.sleep(pauseMillis);
      }
      int fd = proxy.configure(CriuOptions.DEFAULTS).pageServer().fd();
      try (UnixSocket criu = UnixSocket.adopt(Fd.duplicate(fd, 3).release())) {
        new SyntheticPageClient(24, 4096).run(SocketChannels.of(criu), 1, pages, 8);
      }
    }
  }

  private static PlayCriu small() {
    return new PlayCriu(0, 0, 16, 0);
  }

  /** One source session with its own events. */
  private final class Source {
    final List<MigrationEvent> events = new CopyOnWriteArrayList<>();
    final MigrationSession.Builder builder;

    Source(SourceSettings.TestHooks hooks) {
      builder = MigrationSession.builder().pid((int) victim.pid())
          .destination(transport, agent.address()).criu(srcCriu)
          .stagingDirectory(staging.path()).listener(events::add).testHooks(hooks);
    }

    MigrationReport migrate() throws MigrationException {
      try (MigrationSession s = builder.build()) {
        return s.migrate();
      }
    }

    MigrationException fails() {
      try (MigrationSession s = builder.build()) {
        return catchThrowableOfType(s::migrate, MigrationException.class);
      }
    }

    boolean resumedAtHome() {
      return events.stream().anyMatch(e -> e instanceof MigrationEvent.Resumed r
          && !r.onDestination());
    }
  }

  private void sourceScripts(boolean dumps) {
    srcFake.enqueue(Script.features(FEATURES, true));
    srcFake.enqueue(Script.succeed()); // CPUINFO_DUMP
    if (dumps) {
      srcFake.enqueue(Script.notifying("pre-dump", "post-dump").thenSucceed().withStats(STATS));
    }
  }

  private void destinationPreflightScripts() {
    dstFake.enqueue(Script.features(FEATURES, true));
    dstFake.enqueue(Script.succeed()); // CPUINFO_CHECK
  }

  private void restoreScript() {
    dstFake.enqueue(Script.notifying("pre-restore").notify("setup-namespaces", RESTORED_PID)
        .notify("post-restore", RESTORED_PID).notify("pre-resume").notify("post-resume")
        .thenRestored(RESTORED_PID));
  }

  /** Starts a good session A and waits until the agent holds it in its restore. */
  private CompletableFuture<MigrationReport> holdAGoodSession() throws Exception {
    sourceScripts(true);
    destinationPreflightScripts();
    restoreScript();
    Source a = new Source(small());
    CompletableFuture<MigrationReport> done = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        done.complete(a.migrate());
      } catch (Throwable e) {
        done.completeExceptionally(e);
      }
    }, "session-a");
    t.setDaemon(true);
    t.start();
    long deadline = System.nanoTime() + PATIENCE.toNanos();
    while (!firstRestoreHeld.await(50, TimeUnit.MILLISECONDS)) {
      if (done.isDone()) {
        done.get(); // throws A's failure
        throw new AssertionError("session A completed without being held");
      }
      assertThat(System.nanoTime() - deadline).as("session A reached its restore")
          .isNegative();
    }
    return done;
  }

  /** Releases A and checks that it committed as if nothing had happened. */
  private void assertTheHeldSessionCompletes(CompletableFuture<MigrationReport> a)
      throws Exception {
    assertThat(a).as("A still held while B failed").isNotDone();
    releaseFirstRestore.countDown();
    MigrationReport report = a.get(PATIENCE.toSeconds(), TimeUnit.SECONDS);
    assertThat(report.destinationPid()).isEqualTo(RESTORED_PID);
    awaitAgentIdle();
    assertThat(agent.completedSessions()).isEqualTo(1);
  }

  /** B fails on a limit while A is held; returns B's error after A completed. */
  private MigrationException failsWhileAnotherSessionIsHeld(SourceSettings.TestHooks hooks,
      boolean dumps) throws Exception {
    CompletableFuture<MigrationReport> a = holdAGoodSession();
    sourceScripts(dumps);
    if (dumps) {
      destinationPreflightScripts();
    }
    Source b = new Source(hooks);
    MigrationException e = b.fails();
    assertThat(victim.isAlive()).isTrue();
    if (dumps) {
      assertThat(b.resumedAtHome()).as("B's source resumed the tree").isTrue();
    }
    assertTheHeldSessionCompletes(a);
    return e;
  }

  private void awaitAgentIdle() throws InterruptedException {
    long deadline = System.nanoTime() + PATIENCE.toNanos();
    while (agent.activeSessions() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertThat(agent.activeSessions()).isZero();
  }

  /** Everything a raw peer receives until the agent closes the connection. */
  private static String readToEnd(Connection c) throws Exception {
    c.setReadTimeout(PATIENCE);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteBuffer b = ByteBuffer.allocate(4096);
    while (c.read(b.clear()) >= 0) {
      out.write(b.array(), 0, b.position());
    }
    return out.toString(StandardCharsets.ISO_8859_1);
  }

  private static ByteBuffer controlPreamble() {
    return ByteBuffer.wrap("C4JC\0\0\0\1".getBytes(StandardCharsets.ISO_8859_1));
  }

  // ------------------------------------------------------------------------- maxImageBytes

  @Test
  @DisplayName("files beyond maxImageBytes end that session only; its source resumes")
  void fileBytesBeyondTheLimit() throws Exception {
    startAgent(b -> b.maxImageBytes(200 * 1024));

    MigrationException e = failsWhileAnotherSessionIsHeld(new PlayCriu(1, 300 * 1024, 16, 0),
        true);

    assertThat(e).hasMessageContaining("limit maxImageBytes=204800 exceeded")
        .hasMessageContaining("extra-0.img");
  }

  @Test
  @DisplayName("a page stream beyond maxImageBytes ends that session only; its source resumes")
  void pageBytesBeyondTheLimit() throws Exception {
    startAgent(b -> b.maxImageBytes(200 * 1024));

    MigrationException e = failsWhileAnotherSessionIsHeld(new PlayCriu(0, 0, 128, 0), true);

    assertThat(e).hasMessageContaining("limit maxImageBytes=204800 exceeded")
        .hasMessageContaining("page stream");
  }

  @Test
  @DisplayName("a tree announced larger than maxImageBytes is refused at pre-flight")
  void estimateBeyondTheLimitIsRefusedBeforeFreezing() throws Exception {
    startAgent(b -> b.maxImageBytes(1 << 20));
    sourceScripts(false);
    dstFake.enqueue(Script.features(FEATURES, true));

    MigrationException e = new Source(new PlayCriu(0, 0, 16, 0) {
      @Override
      public long estimatedBytes(long measured) {
        return 64L << 20;
      }
    }).fails();

    assertThat(e).hasMessageContaining("refused").hasMessageContaining("about 64 MiB")
        .hasMessageContaining("maxImageBytes=1048576");
    assertThat(victim.isAlive()).isTrue();
  }

  // ------------------------------------------------------------------------- maxFiles

  @Test
  @DisplayName("more files than maxFiles end that session only; its source resumes")
  void filesBeyondTheLimit() throws Exception {
    startAgent(b -> b.maxFiles(3));

    MigrationException e = failsWhileAnotherSessionIsHeld(new PlayCriu(6, 100, 16, 0), true);

    assertThat(e).hasMessageContaining("limit maxFiles=3 exceeded")
        .hasMessageContaining("file number 4");
  }

  // ------------------------------------------------------------------------- sessions

  @Test
  @DisplayName("a session beyond maxConcurrentSessions is refused at pre-flight, naming it")
  void sessionsBeyondTheLimit() throws Exception {
    startAgent(b -> b.maxConcurrentSessions(1));

    MigrationException e = failsWhileAnotherSessionIsHeld(small(), false);

    assertThat(e).hasMessageContaining("busy").hasMessageContaining("maxConcurrentSessions=1");
  }

  // ------------------------------------------------------------------------- timeouts

  @Test
  @DisplayName("a peer that stops after the preamble is dropped at handshakeTimeout, naming it")
  void handshakeTimeout() throws Exception {
    startAgent(b -> b.handshakeTimeout(Duration.ofMillis(300)));
    CompletableFuture<MigrationReport> a = holdAGoodSession();

    long start = System.nanoTime();
    String silent;
    String preambleOnly;
    try (Connection mute = transport.connect(agent.address(), PATIENCE);
        Connection halfway = transport.connect(agent.address(), PATIENCE)) {
      halfway.write(controlPreamble());
      silent = readToEnd(mute);
      preambleOnly = readToEnd(halfway);
    }
    long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

    assertThat(silent).as("a peer that sends nothing gets nothing").isEmpty();
    assertThat(preambleOnly).contains("limit handshakeTimeout=300 ms exceeded")
        .contains("no Hello");
    assertThat(tookMillis).isBetween(250L, 10_000L);
    assertTheHeldSessionCompletes(a);
  }

  @Test
  @DisplayName("a source silent beyond idleTimeout (no step, no images) is dropped, naming it")
  void idleTimeout() throws Exception {
    startAgent(b -> b.idleTimeout(IDLE));

    MigrationException e = failsWhileAnotherSessionIsHeld(new PlayCriu(1, 100, 16, 0) {
      @Override
      public void imagesWritten(int round, ImageProxy proxy) throws Exception {
        Thread.sleep(IDLE.toMillis() * 2);
        super.imagesWritten(round, proxy);
      }
    }, true);

    assertThat(e).hasMessageContaining("limit idleTimeout=" + IDLE.toMillis() + " ms exceeded");
  }

  @Test
  @DisplayName("images that keep arriving outlast an idleTimeout shorter than the transfer")
  void progressKeepsASessionAlive() throws Exception {
    startAgent(b -> b.idleTimeout(IDLE));
    releaseFirstRestore.countDown();
    sourceScripts(true);
    destinationPreflightScripts();
    restoreScript();

    long start = System.nanoTime();
    long gap = IDLE.toMillis() / 5;
    MigrationReport report = new Source(new PlayCriu(12, 1000, 16, gap)).migrate();

    assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start))
        .isGreaterThan(12 * gap).isGreaterThan(IDLE.toMillis());
    assertThat(report.destinationPid()).isEqualTo(RESTORED_PID);
  }

  // ------------------------------------------------------------------------- maxFrameBytes

  @Test
  @DisplayName("a control message larger than maxFrameBytes ends that connection, naming it")
  void controlMessageBeyondTheLimit() throws Exception {
    startAgent(b -> b.maxFrameBytes(4096));
    CompletableFuture<MigrationReport> a = holdAGoodSession();

    String answer;
    try (Connection c = transport.connect(agent.address(), PATIENCE)) {
      c.write(controlPreamble());
      c.write(ByteBuffer.allocate(4).putInt(0, 8192));
      c.write(ByteBuffer.allocate(8192));
      answer = readToEnd(c);
    }

    assertThat(answer).contains("limit maxFrameBytes=4096 exceeded")
        .contains("control message of 8192 bytes");
    assertTheHeldSessionCompletes(a);
  }

  @Test
  @DisplayName("with a small maxFrameBytes, sources send smaller data frames and still migrate")
  void sourcesAdaptToASmallFrameLimit() throws Exception {
    startAgent(b -> b.maxFrameBytes(4096));
    releaseFirstRestore.countDown();
    sourceScripts(true);
    destinationPreflightScripts();
    restoreScript();

    MigrationReport report = new Source(new PlayCriu(2, 64 * 1024, 64, 0)).migrate();

    assertThat(report.destinationPid()).isEqualTo(RESTORED_PID);
  }

  @Test
  @DisplayName("limits reject values that cannot work")
  void badLimitValues() {
    MigrationAgent.Builder b = MigrationAgent.builder();
    assertThat(catchThrowableOfType(() -> b.maxImageBytes(0), IllegalArgumentException.class))
        .hasMessageContaining("maxImageBytes < 1: 0");
    assertThat(catchThrowableOfType(() -> b.maxFiles(-1), IllegalArgumentException.class))
        .hasMessageContaining("maxFiles < 1: -1");
    assertThat(catchThrowableOfType(() -> b.maxFrameBytes(2 << 20),
        IllegalArgumentException.class)).hasMessageContaining("2097152");
    assertThat(catchThrowableOfType(() -> b.idleTimeout(Duration.ZERO),
        IllegalArgumentException.class)).hasMessageContaining("idleTimeout");
    assertThat(catchThrowableOfType(() -> b.handshakeTimeout(Duration.ofSeconds(-1)),
        IllegalArgumentException.class)).hasMessageContaining("handshakeTimeout");
  }
}

package io.criu4j.it;

import static io.criu4j.it.RunningCopies.assertOnlyCopyAt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.MigrationAgent;
import io.criu4j.MigrationCancelledException;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationException;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import io.criu4j.Notifier;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import io.criu4j.transport.tcp.TcpTransport;
import io.criu4j.transport.unix.UnixTransport;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Live migration of a real process tree between a {@link MigrationSession} and a
 * {@link MigrationAgent} in this JVM, with real CRIU on both sides. The payload runs in its own
 * PID namespace, so the restored copy can exist next to the frozen source on one machine.
 *
 * <p>Every test ends with the same two checks: exactly one copy of the payload runs, at the pid
 * the outcome calls for (the destination's on success, the source's on rollback), and it keeps
 * counting; and nothing leaked: no CRIU process, no child process, no descriptor of this JVM,
 * nothing in the staging and cache directories the test gave to session and agent, nobody
 * listening at the agent's address.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MigrationIT {
  private static final int MEM_MIB = 32;
  private static final long MIB = 1024 * 1024;
  /** How soon after cancel() a migration stalled in its transfer must have rolled back. */
  private static final Duration CANCEL_PROMPTLY = Duration.ofSeconds(2);

  private final List<AutoCloseable> cleanup = new ArrayList<>();
  private final List<MigrationEvent> events = new CopyOnWriteArrayList<>();
  private LeakCheck leaks;
  private TmpfsDir staging;
  private TmpfsDir cache;
  private TmpfsDir sockets;
  /** Whether the sessions of this test migrate with post-copy. */
  private boolean postCopy;

  @BeforeAll
  static void warmUp() throws Exception {
    // Whatever the JDK keeps open for good once a socket kind is first used must not count as
    // a leak of the first test.
    for (Transport t : List.of(TcpTransport.create(), UnixTransport.create())) {
      try (TmpfsDir dir = TmpfsDir.create("criu4j-it-warmup-");
          Listener l = t.listen(t.scheme().equals("tcp") ? URI.create("tcp://127.0.0.1:0")
              : URI.create("unix://" + dir.resolve("s")));
          Connection c = t.connect(l.address());
          Connection a = l.accept(Duration.ofSeconds(5))) {
        assertThat(c.isOpen() && a.isOpen()).isTrue();
      }
    }
  }

  @BeforeEach
  void snapshot() {
    leaks = LeakCheck.begin();
    staging = closeLater(TmpfsDir.create("criu4j-it-staging-"));
    cache = closeLater(TmpfsDir.create("criu4j-it-cache-"));
    sockets = closeLater(TmpfsDir.create("criu4j-it-sock-"));
    leaks.watchDirectory(staging.path()).watchDirectory(cache.path());
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  /** Publishes a finding to the test report and prints it, so build logs show it too. */
  private static void note(TestReporter reporter, String key, String value) {
    reporter.publishEntry(key, value);
    System.out.println("[MigrationIT] " + key + ": " + value);
  }

  private <T extends AutoCloseable> T closeLater(T resource) {
    cleanup.add(resource);
    return resource;
  }

  // ------------------------------------------------------------------------------ success

  @Test
  @DisplayName("over the Unix transport the tree moves and counts on at the destination pid")
  void migratesOverUnixTransport(Criu criu, TestReporter reporter) throws Exception {
    Payload payload = startPayload(Payload.builder().memMib(MEM_MIB));
    MigrationAgent agent = startAgent(criu, unixAddress(), Notifier.NONE);

    MigrationReport report = migrate(criu, payload, UnixTransport.create(), agent.address());

    assertMigrated(payload, report, 1, reporter);
    assertThat(report.pageBytes()).isGreaterThanOrEqualTo(MEM_MIB * MIB);
    closeAndAssertNoLeaks(payload, agent);
  }

  @ParameterizedTest(name = "post-copy {0}")
  @ValueSource(booleans = {false, true})
  @DisplayName("a parent with children and a pipe between them moves as one tree")
  void migratesParentChildrenAndTheirPipe(boolean withPostCopy, Criu criu,
      TestReporter reporter) throws Exception {
    postCopy = withPostCopy;
    Payload payload = startPayload(Payload.builder().memMib(16).children(2));
    assertThat(payload.findCopies()).as("parent and two children before").hasSize(3);
    MigrationAgent agent = startAgent(criu, URI.create("tcp://127.0.0.1:0"), Notifier.NONE);

    MigrationReport report = migrate(criu, payload, TcpTransport.create(), agent.address());

    // The parent exits when a child dies or the pipe ends, so counting on proves both survived.
    assertMigrated(payload, report, 3, reporter);
    for (int p : payload.findCopies()) {
      if (p != report.destinationPid()) {
        assertThat(RunningCopies.parentOf(p)).as("parent of child %d", p)
            .isEqualTo(report.destinationPid());
      }
    }
    if (postCopy) {
      assertThat(report.phases()).containsKey(MigrationPhase.POST_COPY);
      payload.awaitCounterAbove(payload.counter() + 20, Duration.ofSeconds(10));
    }
    closeAndAssertNoLeaks(payload, agent);
  }

  @Test
  @DisplayName("a process with several threads moves with all of them counting")
  void migratesAllThreads(Criu criu, TestReporter reporter) throws Exception {
    Payload payload = startPayload(Payload.builder().memMib(16).threads(4));
    assertThat(RunningCopies.threadsOf(payload.pid())).isEqualTo(5);
    MigrationAgent agent = startAgent(criu, unixAddress(), Notifier.NONE);

    MigrationReport report = migrate(criu, payload, UnixTransport.create(), agent.address());

    // The payload exits when one of its threads stalls, so counting on proves they all run.
    assertMigrated(payload, report, 1, reporter);
    assertThat(RunningCopies.threadsOf(report.destinationPid())).isEqualTo(5);
    closeAndAssertNoLeaks(payload, agent);
  }

  @Test
  @DisplayName("a file the process keeps appending to continues with no gap and no repeat")
  void appendedFileContinuesSeamlessly(Criu criu, TestReporter reporter) throws Exception {
    Payload payload = startPayload(Payload.builder().memMib(16).appendFile(true)
        .intervalMillis(5));
    MigrationAgent agent = startAgent(criu, URI.create("tcp://127.0.0.1:0"), Notifier.NONE);
    long beforeMigration = payload.appendedRecords().size();

    MigrationReport report = migrate(criu, payload, TcpTransport.create(), agent.address());

    long atCommit = payload.appendedRecords().size();
    assertMigrated(payload, report, 1, reporter);
    payload.awaitCounterAbove(atCommit + 20, Duration.ofSeconds(10));
    List<Long> records = payload.appendedRecords();
    // The payload itself stops (exit 6) if size or offset were off after the restore; the
    // records prove from outside that the file went on exactly where the dump left it.
    assertThat(records).as("records 1..n").isEqualTo(
        LongStream.rangeClosed(1, records.size()).boxed().toList());
    assertThat((long) records.size()).isGreaterThan(atCommit + 10)
        .isGreaterThan(beforeMigration);
    note(reporter, "appended records", "before " + beforeMigration + ", at commit "
        + atCommit + ", after " + records.size());
    closeAndAssertNoLeaks(payload, agent);
  }

  @Test
  @DisplayName("baseline: the appended file survives a plain local dump and restore")
  void appendedFileSurvivesALocalDumpAndRestore(Criu criu) throws Exception {
    // Separates "CRIU or the payload cannot carry a growing file" from a migration bug.
    Payload payload = startPayload(Payload.builder().appendFile(true).intervalMillis(5));
    TmpfsDir images = closeLater(TmpfsDir.create("criu4j-it-local-"));
    criu.dump(images.path(), CriuOptions.builder().pid(payload.pid()).build());
    long atDump = payload.appendedRecords().size();
    int restored = payload.registerRestored(criu.restore(images.path(), CriuOptions.DEFAULTS)
        .pid());

    assertOnlyCopyAt(payload, restored, 1);
    payload.awaitCounterAbove(atDump + 20, Duration.ofSeconds(10));
    List<Long> records = payload.appendedRecords();
    assertThat(records).isEqualTo(LongStream.rangeClosed(1, records.size()).boxed().toList());
    assertThat((long) records.size()).isGreaterThan(atDump + 10);
    leaks.assertClean(payload);
  }

  // ------------------------------------------------------------------------------ rollback

  @Test
  @DisplayName("when the destination vetoes its restore, the source resumes and no copy runs there")
  void rollsBackWhenTheRestoreFails(Criu criu, TestReporter reporter) throws Exception {
    Payload payload = startPayload(Payload.builder().memMib(MEM_MIB));
    AtomicInteger preRestores = new AtomicInteger();
    MigrationAgent agent = startAgent(criu, unixAddress(), new Notifier() {
      @Override
      public void preRestore() {
        preRestores.incrementAndGet();
        throw new IllegalStateException("restore vetoed by the test");
      }
    });

    MigrationException failure = migrateExpectingFailure(criu, payload, UnixTransport.create(),
        agent.address());

    note(reporter, "failure", String.valueOf(failure));
    assertThat(failure).isNotInstanceOf(MigrationCancelledException.class);
    assertThat(preRestores.get()).as("restores the agent attempted").isEqualTo(1);
    assertRolledBack(payload, agent, 1);
    closeAndAssertNoLeaks(payload, agent);
  }

  static Stream<Arguments> cuts() {
    return Stream.of(false, true).flatMap(postCopy -> Stream.of(FaultyTransport.Fault.CUT_ONE,
        FaultyTransport.Fault.CUT_ALL).map(how -> Arguments.of(postCopy, how)));
  }

  @ParameterizedTest(name = "post-copy {0}, {1}")
  @MethodSource("cuts")
  @DisplayName("when the connection is cut while memory moves, the source resumes and no copy "
      + "runs")
  void rollsBackWhenTheConnectionIsCut(boolean withPostCopy, FaultyTransport.Fault how,
      Criu criu, TestReporter reporter) throws Exception {
    postCopy = withPostCopy;
    // With post-copy the images are a few hundred KiB and the memory moves after the restore:
    // the cut lands while the copy runs.
    int mib = postCopy ? 64 : MEM_MIB;
    Payload payload = startPayload(Payload.builder().memMib(mib));
    MigrationAgent agent = startAgent(criu, URI.create("tcp://127.0.0.1:0"), Notifier.NONE);
    FaultyTransport faulty = FaultyTransport.cutAfter(TcpTransport.create(),
        (postCopy ? 16 : 8) * MIB, how);

    MigrationException failure = migrateExpectingFailure(criu, payload, faulty,
        agent.address());

    note(reporter, "failure", String.valueOf(failure));
    assertThat(faulty.triggered()).as("the cut happened").isTrue();
    assertThat(faulty.bytesWritten()).as("bytes through before the cut").isLessThan(mib * MIB);
    assertThat(failure).isNotInstanceOf(MigrationCancelledException.class);
    if (postCopy) {
      assertThat(failure).hasMessageContaining("post-copy");
    }
    assertRolledBack(payload, agent, 1);
    closeAndAssertNoLeaks(payload, agent);
  }

  @Test
  @DisplayName("cancel() from another thread during the transfer resumes the source")
  void cancelDuringTransferResumesTheSource(Criu criu, TestReporter reporter) throws Exception {
    Payload payload = startPayload(Payload.builder().memMib(MEM_MIB));
    MigrationAgent agent = startAgent(criu, URI.create("tcp://127.0.0.1:0"), Notifier.NONE);
    // The link stalls after 8 MiB, so the cancellation certainly lands mid-transfer.
    FaultyTransport held = FaultyTransport.holdAfter(TcpTransport.create(), 8 * MIB);
    long cancelMillis;
    long endedMillis;
    try {
      MigrationSession session = closeLater(session(criu, payload, held, agent.address())
          .build());
      CompletableFuture<MigrationReport> running = CompletableFuture.supplyAsync(() -> {
        try {
          return session.migrate();
        } catch (MigrationException e) {
          throw new CompletionException(e);
        }
      });
      assertThat(held.awaitTriggered(Duration.ofSeconds(30))).as("transfer reached 8 MiB")
          .isTrue();
      assertThat(payload.isAlive()).isTrue(); // frozen, not dead

      long cancelledAt = System.nanoTime();
      CompletableFuture<Void> cancelling = new CompletableFuture<>();
      Thread canceller = new Thread(() -> {
        session.cancel();
        cancelling.complete(null);
      }, "test-canceller");
      canceller.start();
      waitOrDumpThreads(cancelling, "cancel()");
      cancelling.get(30, TimeUnit.SECONDS);
      cancelMillis = (System.nanoTime() - cancelledAt) / 1_000_000;
      waitOrDumpThreads(running, "migrate()");
      Throwable outcome = outcome(running, Duration.ofSeconds(30));
      endedMillis = (System.nanoTime() - cancelledAt) / 1_000_000;
      note(reporter, "cancel", "cancel() returned after " + cancelMillis + " ms, migrate() "
          + "ended " + endedMillis + " ms after cancel(): " + outcome);

      assertThat(outcome).isInstanceOf(MigrationCancelledException.class);
      session.close();
      assertRolledBack(payload, agent, 1);
    } finally {
      held.release();
    }
    closeAndAssertNoLeaks(payload, agent);
    // The source stays frozen until the rollback is done, so that must not wait for the
    // stalled link to drain; and cancel() is documented to return at once.
    assertThat(cancelMillis).as("ms cancel() blocked its caller").isLessThan(500);
    assertThat(endedMillis).as("ms from cancel() to the end of migrate()")
        .isLessThan(CANCEL_PROMPTLY.toMillis());
  }

  // ------------------------------------------------------------------------------ post-copy

  @Test
  @DisplayName("post-copy: the tree runs at the destination first, then all its memory arrives")
  void migratesWithPostCopy(Criu criu, TestReporter reporter) throws Exception {
    postCopy = true;
    Payload payload = startPayload(Payload.builder().memMib(64).intervalMillis(5));
    MigrationAgent agent = startAgent(criu, URI.create("tcp://127.0.0.1:0"), Notifier.NONE);

    MigrationReport report = migrate(criu, payload, TcpTransport.create(), agent.address());

    assertMigrated(payload, report, 1, reporter);
    assertThat(report.phases()).containsKey(MigrationPhase.POST_COPY);
    assertThat(report.pageBytes()).as("memory moved after the restore")
        .isGreaterThanOrEqualTo(64 * MIB);
    assertThat(agent.completedSessions()).isEqualTo(1);
    // The payload checks 1 MiB of its memory per tick against its pattern and stops on a
    // mismatch: 80 more ticks have walked all 64 MiB at least once.
    payload.awaitCounterAbove(payload.counter() + 80, Duration.ofSeconds(20));
    closeAndAssertNoLeaks(payload, agent);
  }

  @Test
  @DisplayName("post-copy: when the destination vetoes its restore, the source resumes")
  void postCopyRollsBackWhenTheRestoreFails(Criu criu, TestReporter reporter) throws Exception {
    postCopy = true;
    Payload payload = startPayload(Payload.builder().memMib(MEM_MIB));
    MigrationAgent agent = startAgent(criu, unixAddress(), new Notifier() {
      @Override
      public void preRestore() {
        throw new IllegalStateException("restore vetoed by the test");
      }
    });

    MigrationException failure = migrateExpectingFailure(criu, payload, UnixTransport.create(),
        agent.address());

    note(reporter, "failure", String.valueOf(failure));
    assertRolledBack(payload, agent, 1);
    closeAndAssertNoLeaks(payload, agent);
  }

  /** Waits up to {@link #CANCEL_PROMPTLY} for {@code f}; if it is slower, prints all threads. */
  private static void waitOrDumpThreads(CompletableFuture<?> f, String what) throws Exception {
    try {
      f.get(CANCEL_PROMPTLY.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException slow) {
      System.out.println("[MigrationIT] " + what + " still running " + CANCEL_PROMPTLY
          + " after cancel(); threads:\n" + threadDump());
    } catch (ExecutionException checkedByTheCaller) {
      // done
    }
  }

  // ------------------------------------------------------------------------------ helpers

  private Payload startPayload(Payload.Builder builder) {
    Payload payload = closeLater(builder.start());
    payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(10));
    return payload;
  }

  private URI unixAddress() {
    return URI.create("unix://" + sockets.resolve("agent.sock"));
  }

  private MigrationAgent startAgent(Criu criu, URI listen, Notifier restoreNotifier)
      throws MigrationException {
    return closeLater(MigrationAgent.builder().listen(listen).criu(criu)
        .directory(cache.path()).restoreNotifier(restoreNotifier).start());
  }

  private MigrationSession.Builder session(Criu criu, Payload payload, Transport transport,
      URI agent) {
    return MigrationSession.builder().pid(payload.pid()).destination(transport, agent)
        .criu(criu).stagingDirectory(staging.path()).listener(events::add).postCopy(postCopy);
  }

  private MigrationReport migrate(Criu criu, Payload payload, Transport transport, URI agent)
      throws MigrationException {
    long before = payload.counter();
    try (MigrationSession session = session(criu, payload, transport, agent).build()) {
      MigrationReport report = session.migrate();
      payload.registerRestored(report.destinationPid());
      assertThat(payload.counter()).as("counter after the migration").isGreaterThan(before);
      return report;
    }
  }

  private MigrationException migrateExpectingFailure(Criu criu, Payload payload,
      Transport transport, URI agent) {
    try (MigrationSession session = session(criu, payload, transport, agent).build()) {
      MigrationException failure = catchThrowableOfType(session::migrate,
          MigrationException.class);
      assertThat(failure).as("migrate() must fail; events: %s", events).isNotNull();
      return failure;
    } finally {
      // A copy restored against all expectations must still be killed at the end.
      for (int p : payload.findCopies()) {
        if (p != payload.pid()) {
          payload.registerRestored(p);
        }
      }
    }
  }

  private void assertMigrated(Payload payload, MigrationReport report, int processes,
      TestReporter reporter) {
    note(reporter, "report", report.toJson());
    assertThat(report.sourcePid()).isEqualTo(payload.pid());
    assertThat(report.destinationPid()).isPositive().isNotEqualTo(payload.pid());
    assertOnlyCopyAt(payload, report.destinationPid(), processes);
    assertThat(payload.isAlive()).as("the source after the commit").isFalse();
    assertThat(events).anyMatch(e -> e instanceof MigrationEvent.Frozen)
        .anyMatch(e -> e instanceof MigrationEvent.Resumed r && r.onDestination()
            && r.pid() == report.destinationPid());
  }

  private void assertRolledBack(Payload payload, MigrationAgent agent, int processes) {
    assertThat(events).as("events").anyMatch(e -> e instanceof MigrationEvent.Frozen)
        .anyMatch(e -> e instanceof MigrationEvent.Resumed r && !r.onDestination()
            && r.pid() == payload.pid());
    List<MigrationEvent.Resumed> resumed = events.stream()
        .filter(e -> e instanceof MigrationEvent.Resumed).map(e -> (MigrationEvent.Resumed) e)
        .toList();
    if (postCopy) {
      // The copy may have run while its memory was on the way; the source resumed last.
      assertThat(resumed.get(resumed.size() - 1).onDestination()).as("last Resumed event: %s",
          resumed).isFalse();
    } else {
      assertThat(resumed).as("Resumed events").noneMatch(MigrationEvent.Resumed::onDestination);
    }
    assertOnlyCopyAt(payload, payload.pid(), processes);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (agent.activeSessions() > 0 && System.nanoTime() < deadline) {
      sleep(20);
    }
    assertThat(agent.activeSessions()).as("sessions still active at the agent").isZero();
    assertThat(agent.completedSessions()).as("sessions the agent committed").isZero();
  }

  private void closeAndAssertNoLeaks(Payload payload, MigrationAgent agent) {
    URI address = agent.address();
    agent.close();
    leaks.assertClean(payload, address);
  }

  private static String threadDump() {
    StringBuilder sb = new StringBuilder();
    Thread.getAllStackTraces().forEach((t, stack) -> {
      sb.append('"').append(t.getName()).append("\" ").append(t.getState()).append('\n');
      for (StackTraceElement e : stack) {
        sb.append("    at ").append(e).append('\n');
      }
    });
    return sb.toString();
  }

  private static Throwable outcome(CompletableFuture<?> f, Duration timeout) throws Exception {
    try {
      f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      return null;
    } catch (ExecutionException e) {
      return e.getCause() instanceof CompletionException c
          && c.getCause() != null ? c.getCause() : e.getCause();
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}

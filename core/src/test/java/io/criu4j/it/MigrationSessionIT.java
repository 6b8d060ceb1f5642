package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.Criu;
import io.criu4j.MigrationAgent;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import io.criu4j.Notifier;
import io.criu4j.spi.Transports;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Live migration of a real process tree between a {@link MigrationSession} and a
 * {@link MigrationAgent} in this JVM, over the in-memory transport: the counter payload (PID 1
 * of its own PID namespace) continues on the destination, exactly once; a destination restore
 * that fails leaves the source running.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MigrationSessionIT {
  private static final Duration PROGRESS = Duration.ofSeconds(10);

  private final List<AutoCloseable> cleanup = new ArrayList<>();
  private TmpfsDir staging;
  private TmpfsDir cache;

  @BeforeEach
  void dirs() {
    staging = closeLater(TmpfsDir.create("mig-staging-"));
    cache = closeLater(TmpfsDir.create("mig-cache-"));
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  private <T extends AutoCloseable> T closeLater(T resource) {
    cleanup.add(resource);
    return resource;
  }

  private MigrationAgent agent(Criu criu, Notifier restoreNotifier) throws MigrationException {
    return closeLater(MigrationAgent.builder()
        .listen(Transports.inMemory(), URI.create("mem://agent-" + UUID.randomUUID()))
        .directory(cache.path()).criu(criu).restoreNotifier(restoreNotifier).start());
  }

  private Payload payload() {
    Payload p = closeLater(Payload.builder().memMib(16).threads(1).intervalMillis(10).start());
    p.awaitCounterAbove(p.counter() + 2, PROGRESS);
    return p;
  }

  private static List<Path> leftovers(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.toList();
    }
  }

  @Test
  void payloadContinuesOnTheDestinationExactlyOnce(Criu criu, TestReporter reporter)
      throws Exception {
    Payload payload = payload();
    MigrationAgent agent = agent(criu, Notifier.NONE);
    List<MigrationEvent> events = new CopyOnWriteArrayList<>();
    long before = payload.counter();

    MigrationReport report;
    try (MigrationSession session = MigrationSession.builder().pid(payload.pid())
        .destination(Transports.inMemory(), agent.address()).criu(criu)
        .stagingDirectory(staging.path()).listener(events::add).build()) {
      report = session.migrate();
    }
    payload.registerRestored(report.destinationPid());
    reporter.publishEntry("report", report.toJson());

    assertThat(Payload.isRunning(report.destinationPid())).as("restored pid runs").isTrue();
    assertThat(payload.isAlive()).as("source pid %d is gone", payload.pid()).isFalse();
    assertThat(payload.findCopies()).containsExactly(report.destinationPid());
    long after = payload.awaitCounterAbove(before, PROGRESS);
    assertThat(after).isGreaterThan(before);
    payload.awaitCounterAbove(after + 2, PROGRESS);

    assertThat(report.downtime()).isPositive().isLessThan(report.total());
    assertThat(report.pageBytes()).as("pages shipped").isGreaterThan(16L << 20);
    assertThat(report.files()).isPositive();
    assertThat(report.rounds()).hasSize(1);
    assertThat(report.preCopyNote()).contains("mem_track");
    assertThat(report.phases()).containsKeys(MigrationPhase.PREFLIGHT,
        MigrationPhase.FINAL_DUMP, MigrationPhase.TRANSFER, MigrationPhase.RESTORE,
        MigrationPhase.COMMIT);
    assertThat(events).anyMatch(e -> e instanceof MigrationEvent.Frozen);
    assertThat(events).anyMatch(e -> e instanceof MigrationEvent.Resumed r && r.onDestination()
        && r.pid() == report.destinationPid());
    assertThat(agent.completedSessions()).isEqualTo(1);
    awaitNoSessions(agent);
    assertThat(leftovers(staging.path())).isEmpty();
    assertThat(leftovers(cache.path())).isEmpty();
  }

  @Test
  void destinationRestoreVetoedAtPreRestoreLeavesTheSourceCounting(Criu criu) throws Exception {
    Payload payload = payload();
    MigrationAgent agent = agent(criu, new Notifier() {
      @Override
      public void preRestore() {
        throw new IllegalStateException("vetoed by the test");
      }
    });
    List<MigrationEvent> events = new CopyOnWriteArrayList<>();

    MigrationException e;
    try (MigrationSession session = MigrationSession.builder().pid(payload.pid())
        .destination(Transports.inMemory(), agent.address()).criu(criu)
        .stagingDirectory(staging.path()).listener(events::add).build()) {
      e = catchThrowableOfType(session::migrate, MigrationException.class);
    }

    assertThat(e).hasMessageContaining("could not restore");
    assertThat(payload.isAlive()).isTrue();
    long now = payload.counter();
    payload.awaitCounterAbove(now + 2, PROGRESS);
    assertThat(payload.findCopies()).containsExactly(payload.pid());
    assertThat(events).anyMatch(ev -> ev instanceof MigrationEvent.Resumed r
        && !r.onDestination() && r.pid() == payload.pid());
    awaitNoSessions(agent);
    assertThat(leftovers(staging.path())).isEmpty();
    assertThat(leftovers(cache.path())).isEmpty();
  }

  private static void awaitNoSessions(MigrationAgent agent) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (agent.activeSessions() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(agent.activeSessions()).isZero();
  }
}

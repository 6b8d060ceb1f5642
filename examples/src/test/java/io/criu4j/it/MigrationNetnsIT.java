package io.criu4j.it;

import static io.criu4j.it.RunningCopies.assertOnlyCopyAt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.Criu;
import io.criu4j.MigrationCancelledException;
import io.criu4j.MigrationEvent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import io.criu4j.transport.tcp.TcpTransport;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Migration over TCP between two hosts on one machine: the source host is this JVM's network
 * namespace, where the payload runs; the destination host is a fresh network namespace joined to
 * it by a veth pair ({@link NetnsHost}), where an agent runs in a JVM of its own
 * ({@link AgentMain} under {@code nsenter --net}). The session connects to the agent's address
 * on the veth link, so the images cross a real IP link between the namespaces, and the restored
 * tree lives in the destination namespace.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 90, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MigrationNetnsIT {
  private static NetnsHost destinationHost;

  private final List<AutoCloseable> cleanup = new ArrayList<>();
  private final List<MigrationEvent> events = new CopyOnWriteArrayList<>();
  private LeakCheck leaks;
  private TmpfsDir staging;
  private TmpfsDir cache;
  private TmpfsDir logs;

  @BeforeAll
  static void createHost() throws Exception {
    if (!RealCriu.isUsable()) {
      return; // each test skips (or fails) with the reason
    }
    NetnsHost.removeLeftovers();
    destinationHost = NetnsHost.create();
  }

  @AfterAll
  static void removeHost() {
    if (destinationHost != null) {
      destinationHost.close();
    }
  }

  @BeforeEach
  void snapshot() {
    leaks = LeakCheck.begin();
    staging = closeLater(TmpfsDir.create("criu4j-it-staging-"));
    cache = closeLater(TmpfsDir.create("criu4j-it-cache-"));
    logs = closeLater(TmpfsDir.create("criu4j-it-agent-log-"));
    if (destinationHost != null) {
      leaks.watchDirectory(staging.path()).watchDirectory(cache.path())
          .watchNetns(destinationHost.netnsFile());
    }
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

  @Test
  @DisplayName("over TCP between two network namespaces the tree moves into the destination's")
  void migratesOverTcpIntoAnotherNetworkNamespace(Criu criu, TestReporter reporter)
      throws Exception {
    Payload payload = startPayload();
    AgentProcess agent = startAgent();

    MigrationReport report;
    long before = payload.counter();
    try (MigrationSession session = MigrationSession.builder().pid(payload.pid())
        .destination(agent.address()).criu(criu).stagingDirectory(staging.path())
        .listener(events::add).build()) {
      report = session.migrate();
    } catch (Exception e) {
      throw new AssertionError("migration failed: " + e + "; agent log:\n" + agent.logTail(),
          e);
    }
    payload.registerRestored(report.destinationPid());
    reporter.publishEntry("report", report.toJson());
    System.out.println("[MigrationNetnsIT] report: " + report.toJson());

    assertThat(report.sourcePid()).isEqualTo(payload.pid());
    assertOnlyCopyAt(payload, report.destinationPid(), 1);
    assertThat(payload.counter()).isGreaterThan(before);
    assertThat(NetnsHost.netnsInodeOf(report.destinationPid()))
        .as("network namespace of the restored tree").isEqualTo(destinationHost.inode());
    assertThat(events).anyMatch(e -> e instanceof MigrationEvent.Frozen);
    assertThat(report.downtime()).isPositive().isLessThan(report.total());

    URI address = agent.address();
    agent.close();
    assertThat(agent.exitCode()).as("agent exit code; log:\n%s", agent.logTail()).isZero();
    assertThat(agent.lastLine()).isEqualTo(AgentMain.STOPPED);
    leaks.assertClean(payload, address);
    // Still counting, in the destination namespace, after the agent is gone.
    assertOnlyCopyAt(payload, report.destinationPid(), 1);
  }

  @Test
  @DisplayName("when the link goes down mid-transfer, the source times out and resumes")
  void rollsBackWhenTheLinkGoesDownMidTransfer(Criu criu, TestReporter reporter)
      throws Exception {
    Payload payload = startPayload();
    AgentProcess agent = startAgent();
    // A partition, not a reset: packets are dropped and both ends just stop hearing each
    // other, so only the phase timeouts can end the attempt.
    FaultyTransport partition = FaultyTransport.actionAfter(TcpTransport.create(),
        8L * 1024 * 1024, () -> {
          try {
            destinationHost.setLinkUp(false);
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
        });
    Duration timeout = Duration.ofSeconds(4);
    long start = System.nanoTime();
    MigrationException failure;
    try (MigrationSession session = MigrationSession.builder().pid(payload.pid())
        .destination(partition, agent.address()).criu(criu).stagingDirectory(staging.path())
        .phaseTimeout(MigrationPhase.FINAL_DUMP, timeout)
        .phaseTimeout(MigrationPhase.TRANSFER, timeout)
        .phaseTimeout(MigrationPhase.RESTORE, timeout)
        .listener(events::add).build()) {
      failure = catchThrowableOfType(session::migrate, MigrationException.class);
    } finally {
      destinationHost.setLinkUp(true);
    }
    long tookMillis = (System.nanoTime() - start) / 1_000_000;
    String outcome = "migrate() failed after " + tookMillis + " ms: " + failure;
    reporter.publishEntry("partition", outcome);
    System.out.println("[MigrationNetnsIT] partition: " + outcome);

    assertThat(partition.triggered()).as("the link went down mid-transfer").isTrue();
    assertThat(failure).as("migrate() outcome").isNotNull()
        .isNotInstanceOf(MigrationCancelledException.class);
    assertThat(events).anyMatch(e -> e instanceof MigrationEvent.Frozen)
        .anyMatch(e -> e instanceof MigrationEvent.Resumed r && !r.onDestination());
    assertOnlyCopyAt(payload, payload.pid(), 1);

    URI address = agent.address();
    agent.close();
    assertThat(agent.exitCode()).as("agent exit code; log:\n%s", agent.logTail()).isZero();
    leaks.assertClean(payload, address);
    assertOnlyCopyAt(payload, payload.pid(), 1);
  }

  private Payload startPayload() throws IOException {
    Payload payload = closeLater(Payload.builder().memMib(32).intervalMillis(10).start());
    payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(10));
    assertThat(NetnsHost.netnsInodeOf(payload.pid())).as("netns of the payload")
        .isNotEqualTo(destinationHost.inode());
    return payload;
  }

  private AgentProcess startAgent() throws IOException {
    AgentProcess agent = closeLater(AgentProcess.start(destinationHost,
        URI.create("tcp://" + destinationHost.address() + ":0"), cache.path(),
        logs.resolve("agent.log")));
    assertThat(agent.address().getHost()).isEqualTo(destinationHost.address());
    assertThat(NetnsHost.netnsInodeOf((int) agent.pid())).as("netns of the agent JVM")
        .isEqualTo(destinationHost.inode());
    return agent;
  }
}

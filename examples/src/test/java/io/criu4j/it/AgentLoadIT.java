package io.criu4j.it;

import static io.criu4j.it.RunningCopies.assertOnlyCopyAt;
import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.Criu;
import io.criu4j.MigrationAgent;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import io.criu4j.internal.migrate.AgentHooks;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import io.criu4j.transport.tcp.TlsTransport;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Load on one agent: eight live migrations at once, each of its own payload (own PID
 * namespace), all through one {@link MigrationAgent} over mutual TLS with certificates from
 * {@code scripts/certs.sh}, real CRIU on both sides. All must commit, each payload must then
 * run exactly once (at the destination pid) and count on, and the agent must have kept within
 * its cache bound.
 *
 * <p>The memory check measures what the bound is about: the image file data each session's
 * cache held in memory, through the caches' own peak counters (test hooks), against the
 * per-session {@code memoryLimit} and the agent-wide bound {@code memoryLimit x sessions}. It
 * runs the agent in this JVM rather than reading an agent JVM's {@code VmHWM}: a JVM's resident
 * peak mostly reflects heap sizing and garbage-collection timing, not what the agent chose to
 * hold, so it could neither prove nor disprove the bound. The JVM's {@code VmHWM} is printed for
 * reference. Page data never passes through that memory: it goes to CRIU's page server, which
 * writes it to the tmpfs directory.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 180, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class AgentLoadIT {
  private static final int SESSIONS = 8;
  private static final int MEM_MIB = 12;
  /** Per session: small, so that the bound is exercised rather than trivially met. */
  private static final long MEMORY_LIMIT = 4L << 20;

  @TempDir
  Path pkiDir;

  private final List<AutoCloseable> cleanup = new ArrayList<>();

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
  @DisplayName("8 concurrent migrations through one TLS agent all commit within its memory bound")
  void eightConcurrentMigrationsThroughOneTlsAgent(Criu criu, TestReporter reporter)
      throws Exception {
    Pki pki = Pki.init(pkiDir).issue("agent", "127.0.0.1").issue("source", "127.0.0.1");
    TlsTransport agentTls = pki.transport("agent").allowPeers("CN=source").build();
    TlsTransport sourceTls = pki.transport("source").allowPeers("CN=agent").build();
    TmpfsDir staging = closeLater(TmpfsDir.create("criu4j-load-staging-"));
    TmpfsDir cache = closeLater(TmpfsDir.create("criu4j-load-cache-"));

    List<Payload> payloads = new ArrayList<>();
    for (int i = 0; i < SESSIONS; i++) {
      payloads.add(closeLater(Payload.builder().memMib(MEM_MIB).start()));
    }
    for (Payload p : payloads) {
      p.awaitCounterAbove(p.counter() + 2, Duration.ofSeconds(20));
    }
    MigrationAgent agent = closeLater(MigrationAgent.builder()
        .listen(agentTls, URI.create("tls://127.0.0.1:0")).criu(criu)
        .directory(cache.path()).memoryLimit(MEMORY_LIMIT).maxConcurrentSessions(SESSIONS)
        .start());

    CountDownLatch go = new CountDownLatch(1);
    List<CompletableFuture<MigrationReport>> running = new ArrayList<>();
    for (Payload p : payloads) {
      CompletableFuture<MigrationReport> f = new CompletableFuture<>();
      Thread t = new Thread(() -> {
        try (MigrationSession s = MigrationSession.builder().pid(p.pid())
            .destination(sourceTls, agent.address()).criu(criu)
            .stagingDirectory(staging.path()).build()) {
          go.await();
          f.complete(s.migrate());
        } catch (Throwable e) {
          f.completeExceptionally(e);
        }
      }, "load-source-" + p.pid());
      t.setDaemon(true);
      t.start();
      running.add(f);
    }
    long start = System.nanoTime();
    go.countDown();
    List<MigrationReport> reports = new ArrayList<>();
    List<String> failures = new ArrayList<>();
    for (int i = 0; i < SESSIONS; i++) {
      try {
        reports.add(running.get(i).get(150, TimeUnit.SECONDS));
      } catch (Exception e) {
        failures.add("pid " + payloads.get(i).pid() + ": " + e.getCause());
      }
    }
    long totalMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    for (int i = 0; i < reports.size(); i++) {
      payloads.get(i).registerRestored(reports.get(i).destinationPid());
    }
    assertThat(failures).as("failed migrations").isEmpty();

    for (int i = 0; i < SESSIONS; i++) {
      assertOnlyCopyAt(payloads.get(i), reports.get(i).destinationPid(), 1);
    }
    assertThat(agent.completedSessions()).isEqualTo(SESSIONS);
    agent.close();
    long[] peak = AgentHooks.peakHeldBytes(agent);
    long maxDowntime = reports.stream().mapToLong(r -> r.downtime().toMillis()).max()
        .orElseThrow();
    long pageMiB = reports.stream().mapToLong(MigrationReport::pageBytes).sum() >> 20;
    String figures = String.format(java.util.Locale.ROOT, "%d sessions of %d MiB: total %d ms, "
        + "max downtime %d ms, %d MiB of pages; held image data: max %d KiB per session "
        + "(limit %d KiB), sum of peaks %d KiB (bound %d KiB); this JVM's VmHWM %s",
        SESSIONS, MEM_MIB, totalMillis, maxDowntime, pageMiB, peak[0] >> 10,
        MEMORY_LIMIT >> 10, peak[1] >> 10, (MEMORY_LIMIT * SESSIONS) >> 10, vmHwm());
    reporter.publishEntry("load", figures);
    System.out.println("[AgentLoadIT] " + figures);

    assertThat(peak[0]).as("one session's held image data").isPositive()
        .isLessThanOrEqualTo(MEMORY_LIMIT);
    assertThat(peak[1]).as("all sessions' held image data").isLessThanOrEqualTo(
        MEMORY_LIMIT * SESSIONS);
    try (Stream<Path> s = Files.list(cache.path())) {
      assertThat(s.toList()).as("left in the agent's directory").isEmpty();
    }
    try (Stream<Path> s = Files.list(staging.path())) {
      assertThat(s.toList()).as("left in the staging directory").isEmpty();
    }
  }

  private static String vmHwm() {
    try {
      return Files.readAllLines(Paths.get("/proc/self/status")).stream()
          .filter(l -> l.startsWith("VmHWM:")).map(l -> l.substring(6).trim()).findFirst()
          .orElse("?");
    } catch (java.io.IOException e) {
      return "?";
    }
  }
}

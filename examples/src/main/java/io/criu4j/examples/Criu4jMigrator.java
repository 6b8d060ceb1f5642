package io.criu4j.examples;

import io.criu4j.MigrationAgent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import io.criu4j.RoundStats;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The criu4j side of {@link MigrateBench}: a {@link MigrationAgent} on loopback TCP in this JVM,
 * and one {@link MigrationSession} per measured migration. The agent's cache and the source's
 * staging directories live under the bench's tmpfs work directory. Closing stops the agent.
 * Not thread-safe.
 */
final class Criu4jMigrator implements AutoCloseable {
  private final MigrationAgent agent;
  private final Path staging;

  private Criu4jMigrator(MigrationAgent agent, Path staging) {
    this.agent = agent;
    this.staging = staging;
  }

  static Criu4jMigrator start(Path work) throws IOException {
    Path agentDir = Files.createDirectories(work.resolve("agent"));
    Path staging = Files.createDirectories(work.resolve("staging"));
    MigrationAgent agent = MigrationAgent.builder().listen(URI.create("tcp://127.0.0.1:0"))
        .directory(agentDir).start();
    return new Criu4jMigrator(agent, staging);
  }

  URI address() {
    return agent.address();
  }

  /**
   * Migrates {@code payload} to the agent, stop-and-copy or, with {@code postCopy}, post-copy
   * (mode {@link MigrateBench#CRIU4J_POSTCOPY}: downtime until the tree runs on the
   * destination, total until all of its memory arrived there).
   */
  MigrateBench.Run migrate(PayloadProcess payload, Path dir, int mib, int rep, boolean postCopy)
      throws Exception {
    MigrationReport r;
    try (MigrationSession session = MigrationSession.builder().pid(payload.pid())
        .destination(agent.address()).stagingDirectory(staging).postCopy(postCopy).build()) {
      r = session.migrate();
    }
    if (PayloadProcess.isRunning(payload.pid())) {
      throw new MigrationException("source pid " + payload.pid() + " still runs after the "
          + "migration");
    }
    long atDump = MigrateBench.verifyContinues(payload, r.destinationPid());
    // A lazy dump holds the original frozen until all of its memory was served, so CRIU's
    // frozen time of that dump is no measure of the downtime: left out.
    RoundStats last = postCopy || r.rounds().isEmpty() ? null
        : r.rounds().get(r.rounds().size() - 1);
    return new MigrateBench.Run(mib, postCopy ? MigrateBench.CRIU4J_POSTCOPY
        : MigrateBench.CRIU4J, rep, r.downtime().toNanos() / 1e6,
        r.total().toNanos() / 1e6, String.format(Locale.ROOT,
            "(%d MiB shipped, %d rounds%s, phases %s; counter on from %d)",
            r.totalBytes() >> 20, r.rounds().size(), last == null ? ""
                : String.format(Locale.ROOT, ", final dump frozen %.1f ms",
                    last.frozen().toNanos() / 1e6), phases(r), atDump));
  }

  private static String phases(MigrationReport r) {
    StringBuilder sb = new StringBuilder();
    r.phases().forEach((p, d) -> sb.append(sb.length() == 0 ? "" : " ")
        .append(p.name().toLowerCase(Locale.ROOT)).append('=')
        .append(String.format(Locale.ROOT, "%.0f", d.toNanos() / 1e6)));
    return sb.toString();
  }

  @Override
  public void close() {
    agent.close();
  }
}

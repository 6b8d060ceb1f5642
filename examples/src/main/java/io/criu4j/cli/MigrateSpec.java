package io.criu4j.cli;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationSession;
import io.criu4j.PreCopyPolicy;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What {@code criu4j migrate} was asked to do, once the command line is parsed: the value the
 * tests check, and what {@link #toBuilder} turns into a {@link MigrationSession}.
 *
 * @param criuBinary the {@code --criu} executable, or {@code null} for the default lookup
 * @param manageCgroups {@code null} for CRIU's default
 * @param networkLock {@code null} for CRIU's default
 * @param criuLogLevel {@code null} for the library's default
 * @param postCopy the destination runs the tree before its memory arrived (CRIU lazy pages)
 * @param stagingDirectory {@code null} for the library's default ({@code /dev/shm})
 * @param security how the link to the agent is protected
 */
record MigrateSpec(int pid, URI destination, boolean tcpEstablished, boolean shellJob,
    boolean extUnixSockets, boolean fileLocks, boolean linkRemap, List<String> externals,
    CriuOptions.CgroupMode manageCgroups, CriuOptions.NetworkLockMethod networkLock,
    Integer criuLogLevel, Map<MigrationPhase, Duration> phaseTimeouts, boolean preCopy,
    boolean postCopy, Path stagingDirectory, Path criuBinary, LinkSecurity security) {

  MigrateSpec {
    Objects.requireNonNull(destination, "destination");
    Objects.requireNonNull(security, "security");
    externals = List.copyOf(externals);
    EnumMap<MigrationPhase, Duration> t = new EnumMap<>(MigrationPhase.class);
    t.putAll(phaseTimeouts);
    phaseTimeouts = java.util.Collections.unmodifiableMap(t);
  }

  /** A session builder configured as this spec says, reporting to {@code listener}. */
  MigrationSession.Builder toBuilder(MigrationListener listener) {
    MigrationSession.Builder b = MigrationSession.builder().pid(pid)
        .destination(security.transport(destination), destination)
        .tcpEstablished(tcpEstablished).shellJob(shellJob).extUnixSockets(extUnixSockets)
        .fileLocks(fileLocks).linkRemap(linkRemap).listener(listener)
        .preCopy(preCopy ? PreCopyPolicy.defaults() : PreCopyPolicy.disabled())
        .postCopy(postCopy);
    externals.forEach(b::external);
    if (manageCgroups != null) {
      b.manageCgroups(manageCgroups);
    }
    if (networkLock != null) {
      b.networkLock(networkLock);
    }
    phaseTimeouts.forEach(b::phaseTimeout);
    if (stagingDirectory != null) {
      b.stagingDirectory(stagingDirectory);
    }
    if (criuBinary != null) {
      Criu.Builder c = Criu.builder().binary(criuBinary);
      if (criuLogLevel != null) {
        c.logLevel(criuLogLevel);
      }
      b.criu(c.build());
    } else if (criuLogLevel != null) {
      b.criuLogLevel(criuLogLevel);
    }
    return b;
  }
}

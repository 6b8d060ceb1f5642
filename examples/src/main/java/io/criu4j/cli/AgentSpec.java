package io.criu4j.cli;

import io.criu4j.Criu;
import io.criu4j.MigrationAgent;
import io.criu4j.MigrationListener;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * What {@code criu4j agent} was asked to run, once the command line is parsed.
 *
 * @param memoryLimit per-session bound of image data held in memory, {@code null} for the
 *     library's default
 * @param maxSessions {@code null} for the library's default
 * @param criuLogLevel {@code null} for the library's default
 * @param criuBinary the {@code --criu} executable, or {@code null} for the default lookup
 * @param security how the listening address is protected
 * @param limits the per-session limits given on the command line
 */
record AgentSpec(URI listen, Path directory, Long memoryLimit, Integer maxSessions,
    Integer criuLogLevel, Path criuBinary, LinkSecurity security, Limits limits) {

  /** Per-session limits; each {@code null} for the library's default. */
  record Limits(Long maxImageBytes, Integer maxFiles, Integer maxFrameBytes,
      Duration handshakeTimeout, Duration idleTimeout) {
    static final Limits DEFAULTS = new Limits(null, null, null, null, null);
  }

  AgentSpec {
    Objects.requireNonNull(listen, "listen");
    Objects.requireNonNull(directory, "directory");
    Objects.requireNonNull(security, "security");
    Objects.requireNonNull(limits, "limits");
  }

  /** An agent builder configured as this spec says, reporting to {@code listener}. */
  MigrationAgent.Builder toBuilder(MigrationListener listener) {
    MigrationAgent.Builder b = MigrationAgent.builder()
        .listen(security.transport(listen), listen).directory(directory)
        .listener(listener);
    if (memoryLimit != null) {
      b.memoryLimit(memoryLimit);
    }
    if (maxSessions != null) {
      b.maxConcurrentSessions(maxSessions);
    }
    if (limits.maxImageBytes() != null) {
      b.maxImageBytes(limits.maxImageBytes());
    }
    if (limits.maxFiles() != null) {
      b.maxFiles(limits.maxFiles());
    }
    if (limits.maxFrameBytes() != null) {
      b.maxFrameBytes(limits.maxFrameBytes());
    }
    if (limits.handshakeTimeout() != null) {
      b.handshakeTimeout(limits.handshakeTimeout());
    }
    if (limits.idleTimeout() != null) {
      b.idleTimeout(limits.idleTimeout());
    }
    if (criuBinary != null || criuLogLevel != null) {
      Criu.Builder c = Criu.builder();
      if (criuBinary != null) {
        c.binary(criuBinary);
      }
      if (criuLogLevel != null) {
        c.logLevel(criuLogLevel);
      }
      b.criu(c.build());
    }
    return b;
  }
}

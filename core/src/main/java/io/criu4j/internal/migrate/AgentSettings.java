package io.criu4j.internal.migrate;

import io.criu4j.Criu;
import io.criu4j.MigrationListener;
import io.criu4j.Notifier;
import io.criu4j.internal.image.PageSink;
import io.criu4j.spi.Transport;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Everything an agent was configured with; immutable. {@code pageSinks} null: real CRIU.
 *
 * @param maxImageBytes most bytes of images (files and page stream) per session
 * @param maxFiles most image files per session
 * @param maxFrameBytes largest control message and largest image DATA frame payload
 * @param handshakeTimeout from accepting a connection to its preamble (image connections) or
 *     to the source's Preflight (control connections)
 * @param idleTimeout longest wait for the source's next step while its images make no progress
 */
public record AgentSettings(Transport transport, URI listen, Path directory, Criu criu,
    long memoryLimit, int maxConcurrentSessions, Notifier restoreNotifier,
    MigrationListener listener, Duration restoreTimeout, Duration commitTimeout,
    PageSink.Factory pageSinks, long maxImageBytes, int maxFiles, int maxFrameBytes,
    Duration handshakeTimeout, Duration idleTimeout) {}

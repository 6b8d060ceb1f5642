package io.criu4j.internal.migrate;

import io.criu4j.Criu;
import io.criu4j.MigrationListener;
import io.criu4j.Notifier;
import io.criu4j.internal.image.PageSink;
import io.criu4j.spi.Transport;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;

/** Everything an agent was configured with; immutable. {@code pageSinks} null: real CRIU. */
public record AgentSettings(Transport transport, URI listen, Path directory, Criu criu,
    long memoryLimit, int maxConcurrentSessions, Notifier restoreNotifier,
    MigrationListener listener, Duration restoreTimeout, Duration commitTimeout,
    PageSink.Factory pageSinks) {}

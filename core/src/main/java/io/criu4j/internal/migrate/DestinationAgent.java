package io.criu4j.internal.migrate;

import io.criu4j.MigrationException;
import java.net.URI;

/** The destination agent: accepts sessions. */
public final class DestinationAgent implements AutoCloseable {
  private final AgentSettings settings;

  private DestinationAgent(AgentSettings settings) {
    this.settings = settings;
  }

  public static DestinationAgent start(AgentSettings settings) throws MigrationException {
    throw new UnsupportedOperationException("not implemented yet");
  }

  public URI address() {
    return settings.listen();
  }

  public int activeSessions() {
    return 0;
  }

  public int completedSessions() {
    return 0;
  }

  @Override
  public void close() {}
}

package io.criu4j.internal.migrate;

import io.criu4j.MigrationAgent;
import java.util.Objects;
import java.util.function.Function;

/**
 * What criu4j's own tests and benchmarks may look at inside a {@link MigrationAgent} without it
 * being public API. {@code MigrationAgent} registers the implementation when it loads.
 */
public final class AgentHooks {
  private static volatile Function<MigrationAgent, DestinationAgent> access;

  private AgentHooks() {}

  /** Called once by {@code MigrationAgent}. */
  public static void register(Function<MigrationAgent, DestinationAgent> a) {
    access = Objects.requireNonNull(a, "access");
  }

  /**
   * Image file data the agent's ended sessions held in memory: {@code [0]} the largest peak of
   * one session, {@code [1]} the sum of all sessions' peaks.
   */
  public static long[] peakHeldBytes(MigrationAgent agent) {
    return access.apply(Objects.requireNonNull(agent, "agent")).peakHeldBytes();
  }
}

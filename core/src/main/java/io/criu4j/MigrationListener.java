package io.criu4j;

/**
 * Receives the {@link MigrationEvent}s of a migration, in order, on the thread that runs the
 * migration (or a thread of the agent). Implementations must be quick and must not throw: an
 * exception is logged and otherwise ignored, it never changes the outcome of the migration.
 *
 * @since 0.1
 */
@FunctionalInterface
public interface MigrationListener {
  /** A listener that ignores everything. */
  MigrationListener NONE = e -> {};

  void onEvent(MigrationEvent event);
}

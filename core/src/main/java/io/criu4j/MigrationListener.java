package io.criu4j;

/**
 * Receives the {@link MigrationEvent}s of a migration, one at a time and in order: a session
 * calls it on the thread running {@link MigrationSession#migrate()} (and {@code Progress} from its
 * timer thread), an agent on the thread serving each session (sessions may run concurrently).
 * Implementations must be quick and must not throw: an exception is logged and otherwise
 * ignored, it never changes the outcome of the migration. Calling {@link
 * MigrationSession#cancel()} from a listener is allowed.
 *
 * @since 0.1
 */
@FunctionalInterface
public interface MigrationListener {
  /** A listener that ignores everything. */
  MigrationListener NONE = e -> {};

  void onEvent(MigrationEvent event);
}

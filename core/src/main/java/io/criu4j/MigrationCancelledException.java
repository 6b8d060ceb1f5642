package io.criu4j;

/**
 * A migration was cancelled ({@link MigrationSession#cancel()}, {@link MigrationSession#close()}
 * or the agent closing) before its commit point: the source tree was resumed (or never frozen),
 * and the destination discarded what it had restored.
 *
 * @since 0.1
 */
public class MigrationCancelledException extends MigrationException {
  private static final long serialVersionUID = 1L;

  public MigrationCancelledException(String message) {
    super(message);
  }

  public MigrationCancelledException(String message, Throwable cause) {
    super(message, cause);
  }
}

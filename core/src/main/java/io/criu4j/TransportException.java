package io.criu4j;

/**
 * A transport connection failed: it could not be opened, it was reset or closed by the peer, or
 * it stalled past its timeout.
 *
 * @since 0.1
 */
public class TransportException extends MigrationException {
  private static final long serialVersionUID = 1L;

  public TransportException(String message) {
    super(message);
  }

  public TransportException(String message, Throwable cause) {
    super(message, cause);
  }

  public TransportException(String message, int errno, Throwable cause) {
    super(message, errno, cause);
  }
}

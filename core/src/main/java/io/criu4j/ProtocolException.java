package io.criu4j;

/**
 * A peer (CRIU, or the other side of a transport connection) sent something that breaks the
 * protocol: an undecodable message, a message of the wrong type, a frame that is too large, an
 * unexpected end of stream. The message names what was expected and what arrived.
 *
 * @since 0.1
 */
public class ProtocolException extends MigrationException {
  private static final long serialVersionUID = 1L;

  public ProtocolException(String message) {
    super(message);
  }

  public ProtocolException(String message, Throwable cause) {
    super(message, cause);
  }
}

package io.criu4j.internal.wire;

import io.criu4j.ProtocolException;

/**
 * A violation of the wire protocol, detected here ({@link #remote()} is {@code false}) or
 * reported by the peer in an {@code ERROR} frame ({@link #remote()} is {@code true}). The
 * message names the offence; {@link #code()} is the reason code that was (or would be) sent in
 * the {@code ERROR} frame, and {@link #reason()} its text.
 *
 * <p>Immutable apart from the suppressed-exception list inherited from {@link Throwable}.
 */
public final class WireProtocolException extends ProtocolException {
  private static final long serialVersionUID = 1L;

  private final int code;
  private final boolean remote;
  private final String reason;

  /** A violation detected by this side; {@code reason} is both the message and the reason. */
  public WireProtocolException(ErrorCode code, String reason) {
    this(code.code(), false, reason, reason, null);
  }

  WireProtocolException(int code, boolean remote, String reason, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
    this.remote = remote;
    this.reason = reason;
  }

  /** A failure the peer reported in an {@code ERROR} frame. */
  static WireProtocolException fromPeer(int code, String reason) {
    return new WireProtocolException(
        code, true, reason, "peer reported " + ErrorCode.describe(code) + ": " + reason, null);
  }

  /** The reason code, as a number (the peer may send codes this version does not know). */
  public int codeValue() {
    return code;
  }

  /** The reason code, or {@code null} if the peer sent a code this version does not know. */
  public ErrorCode code() {
    return ErrorCode.of(code);
  }

  /** Whether the peer reported this failure (in an {@code ERROR} frame). */
  public boolean remote() {
    return remote;
  }

  /** The reason text, without the "peer reported" prefix. */
  public String reason() {
    return reason;
  }

  /** A copy to throw in another thread, with this exception as its cause. */
  WireProtocolException copy() {
    return new WireProtocolException(code, remote, reason, getMessage(), this);
  }
}

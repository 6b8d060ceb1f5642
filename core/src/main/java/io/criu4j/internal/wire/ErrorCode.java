package io.criu4j.internal.wire;

/**
 * The reason codes an {@code ERROR} frame carries (wire protocol version 1, see
 * {@code docs/wire-protocol.md}). Codes not listed here may arrive from a newer peer; they are
 * kept as numbers and shown as {@code UNKNOWN(n)}.
 *
 * <p>Immutable and thread-safe.
 */
public enum ErrorCode {
  /** A malformed frame, or a frame that is not allowed in the current state. */
  PROTOCOL_ERROR(1),
  /** The peers speak different protocol versions; the reason names both. */
  UNSUPPORTED_VERSION(2),
  /** Both peers claim the same role (two senders or two receivers). */
  ROLE_CONFLICT(3),
  /** The session id in the peer's HELLO is not the one this side expects. */
  SESSION_MISMATCH(4),
  /** A frame's length is above the negotiated maximum. */
  FRAME_TOO_LARGE(5),
  /** A frame type this version does not know. */
  UNKNOWN_FRAME_TYPE(6),
  /** A file or tunnel name breaks the name rules. */
  BAD_NAME(7),
  /** The same file name was opened twice in one image. */
  DUPLICATE_FILE(8),
  /** A file carried more or fewer bytes than its OPEN_FILE announced. */
  SIZE_MISMATCH(9),
  /** A file's CRC32C does not match the one in its END_OF_FILE. */
  CHECKSUM_MISMATCH(10),
  /** DATA beyond the granted credit, or a credit window overflow. */
  FLOW_CONTROL(11),
  /** A frame for a stream that does not exist, is closed, or has the wrong id. */
  STREAM_STATE(12),
  /** END_OF_IMAGE counts disagree with what was received, or files are still open. */
  IMAGE_MISMATCH(13),
  /** No frame arrived from the peer for longer than the stall timeout. */
  STALLED(14),
  /** The sending side gave up (its application aborted or closed with streams open). */
  CANCELLED(15),
  /** A local failure unrelated to the peer's behaviour (for example a full disk). */
  INTERNAL(16),
  /** The peer opened more concurrent streams than this side allows. */
  RESOURCE_LIMIT(17);

  private final int code;

  ErrorCode(int code) {
    this.code = code;
  }

  /** The number sent on the wire. */
  public int code() {
    return code;
  }

  /** The constant for a wire code, or {@code null} if this version does not know it. */
  public static ErrorCode of(int code) {
    for (ErrorCode c : values()) {
      if (c.code == code) {
        return c;
      }
    }
    return null;
  }

  /** The name of a wire code: the constant's name, or {@code UNKNOWN(n)}. */
  public static String describe(int code) {
    ErrorCode c = of(code);
    return c == null ? "UNKNOWN(" + code + ")" : c.name();
  }
}

package io.criu4j.internal.wire;

/** The frame types of wire protocol version 1, with their type byte. */
public enum FrameType {
  HELLO(0x01, Scope.CONNECTION),
  ACCEPT(0x02, Scope.CONNECTION),
  OPEN_FILE(0x03, Scope.STREAM),
  DATA(0x04, Scope.STREAM),
  END_OF_FILE(0x05, Scope.STREAM),
  OPEN_TUNNEL(0x06, Scope.STREAM),
  END_OF_STREAM(0x07, Scope.STREAM),
  WINDOW_UPDATE(0x08, Scope.EITHER),
  END_OF_IMAGE(0x09, Scope.CONNECTION),
  ERROR(0x0A, Scope.EITHER),
  PING(0x0B, Scope.CONNECTION),
  PONG(0x0C, Scope.CONNECTION),
  GOODBYE(0x0D, Scope.CONNECTION);

  /** Where a frame type may appear: stream 0 only, a non-zero stream only, or both. */
  enum Scope {
    CONNECTION,
    STREAM,
    EITHER
  }

  private static final FrameType[] BY_CODE = new FrameType[256];

  static {
    for (FrameType t : values()) {
      BY_CODE[t.code] = t;
    }
  }

  private final int code;
  private final Scope scope;

  FrameType(int code, Scope scope) {
    this.code = code;
    this.scope = scope;
  }

  /** The type byte on the wire. */
  public int code() {
    return code;
  }

  Scope scope() {
    return scope;
  }

  /** The type for a type byte (0..255), or {@code null} if version 1 does not define it. */
  static FrameType of(int code) {
    return BY_CODE[code & 0xFF];
  }
}

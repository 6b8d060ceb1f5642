package io.criu4j.internal.wire;

/**
 * Which end of a wire connection this is. The sender (the source host's image proxy) opens
 * files and ends images; the receiver (the destination's image cache) accepts them. Either side
 * may open tunnels.
 */
public enum Role {
  /** The source side: sends image files. Opens odd-numbered streams. */
  SENDER(1),
  /** The destination side: receives image files. Opens even-numbered streams. */
  RECEIVER(2);

  private final int code;

  Role(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }

  static Role of(int code) {
    for (Role r : values()) {
      if (r.code == code) {
        return r;
      }
    }
    return null;
  }

  Role opposite() {
    return this == SENDER ? RECEIVER : SENDER;
  }
}

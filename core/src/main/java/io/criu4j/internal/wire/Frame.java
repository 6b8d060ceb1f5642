package io.criu4j.internal.wire;

import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.UUID;

/**
 * One frame of the wire protocol (version 1, see {@code docs/wire-protocol.md}), as a value.
 * {@link FrameCodec} turns frames into bytes and back.
 *
 * <p>The records hold what the wire holds and check only what the encoding needs (for example
 * that a name fits its 16-bit length); the semantic rules (name rules, limits, states) are
 * checked by the decoder and by {@link MuxConnection}, so tests can build invalid frames.
 */
public sealed interface Frame {

  /** The frame's type. */
  FrameType type();

  /** The stream the frame belongs to; {@code 0} for connection-level frames. */
  int streamId();

  /** The flags byte. */
  default int flags() {
    return 0;
  }

  /** Protocol version, role, session id, capabilities and this side's receive limits. */
  record Hello(
      int version,
      Role role,
      int capabilities,
      UUID sessionId,
      int maxFramePayload,
      int initialStreamWindow,
      int initialConnectionWindow,
      int maxOpenStreams)
      implements Frame {
    public Hello {
      Objects.requireNonNull(role, "role");
      Objects.requireNonNull(sessionId, "sessionId");
    }

    @Override
    public FrameType type() {
      return FrameType.HELLO;
    }

    @Override
    public int streamId() {
      return 0;
    }
  }

  /** The receiver's answer to a valid HELLO: the agreed version, capabilities and session. */
  record Accept(int version, int capabilities, UUID sessionId) implements Frame {
    public Accept {
      Objects.requireNonNull(sessionId, "sessionId");
    }

    @Override
    public FrameType type() {
      return FrameType.ACCEPT;
    }

    @Override
    public int streamId() {
      return 0;
    }
  }

  /** Opens a file stream: the file's name, exact size in bytes, and permission bits (0 = none). */
  record OpenFile(int streamId, String name, long size, int mode) implements Frame {
    public OpenFile {
      Objects.requireNonNull(name, "name");
    }

    @Override
    public FrameType type() {
      return FrameType.OPEN_FILE;
    }
  }

  /**
   * Bytes of a file or of one direction of a tunnel. Equality compares the remaining bytes of
   * the payload, as {@link ByteBuffer#equals} does.
   */
  record Data(int streamId, ByteBuffer payload) implements Frame {
    public Data {
      Objects.requireNonNull(payload, "payload");
    }

    @Override
    public FrameType type() {
      return FrameType.DATA;
    }

    @Override
    public String toString() {
      return "Data[streamId=" + streamId + ", " + payload.remaining() + " bytes]";
    }
  }

  /** Ends a file stream; carries the CRC32C of the file's bytes. */
  record EndOfFile(int streamId, int crc32c) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.END_OF_FILE;
    }
  }

  /** Opens a tunnel: a bidirectional byte stream (used for CRIU's page-server traffic). */
  record OpenTunnel(int streamId, String name) implements Frame {
    public OpenTunnel {
      Objects.requireNonNull(name, "name");
    }

    @Override
    public FrameType type() {
      return FrameType.OPEN_TUNNEL;
    }
  }

  /** Ends the sending side's direction of a tunnel (a half-close). */
  record EndOfStream(int streamId) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.END_OF_STREAM;
    }
  }

  /** Grants {@code increment} more bytes of credit on a stream, or on the connection (stream 0). */
  record WindowUpdate(int streamId, int increment) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.WINDOW_UPDATE;
    }
  }

  /**
   * Ends an image (a set of files): its index and totals. With {@code ack}, the receiver's
   * confirmation that it received and stored the image.
   */
  record EndOfImage(boolean ack, int image, int fileCount, long totalBytes) implements Frame {
    /** The flag bit that marks the receiver's acknowledgement. */
    public static final int FLAG_ACK = 0x01;

    @Override
    public FrameType type() {
      return FrameType.END_OF_IMAGE;
    }

    @Override
    public int streamId() {
      return 0;
    }

    @Override
    public int flags() {
      return ack ? FLAG_ACK : 0;
    }
  }

  /** A fatal error: a reason code (see {@link ErrorCode}) and a human-readable reason. */
  record ErrorFrame(int streamId, int code, String reason) implements Frame {
    public ErrorFrame {
      Objects.requireNonNull(reason, "reason");
    }

    @Override
    public FrameType type() {
      return FrameType.ERROR;
    }
  }

  /** A liveness probe; the peer answers with a {@link Pong} carrying the same value. */
  record Ping(long opaque) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.PING;
    }

    @Override
    public int streamId() {
      return 0;
    }
  }

  /** The answer to a {@link Ping}. */
  record Pong(long opaque) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.PONG;
    }

    @Override
    public int streamId() {
      return 0;
    }
  }

  /** The last frame a side sends on a healthy connection. */
  record Goodbye() implements Frame {
    @Override
    public FrameType type() {
      return FrameType.GOODBYE;
    }

    @Override
    public int streamId() {
      return 0;
    }
  }
}

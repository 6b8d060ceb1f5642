package io.criu4j.internal.wire;

import io.criu4j.ProtocolException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;

/**
 * Encodes and decodes the frames of wire protocol version 1 ({@code docs/wire-protocol.md}).
 *
 * <p>Every frame is a 12-byte header (type, flags, reserved, stream id, payload length; all
 * big-endian) and a payload. The decoder is strict: an unknown type, a length above the limit, a
 * non-zero reserved field, unknown flags, a frame on the wrong kind of stream, a payload whose
 * length does not match its contents, a bad name or a truncated stream all end decoding with a
 * {@link WireProtocolException} whose message names the offence and whose code is the one to
 * send in the {@code ERROR} frame.
 *
 * <p>{@link #decodeAll(byte[])} is the entry point for tests and fuzzers: any byte array either
 * decodes or fails with a {@link ProtocolException}, never with another exception.
 *
 * <p>Stateless and thread-safe.
 */
public final class FrameCodec {
  /** The protocol version this implementation speaks. */
  public static final int PROTOCOL_VERSION = 1;
  /** Bytes in a frame header. */
  public static final int HEADER_BYTES = 12;
  /** The smallest maximum frame payload a peer may announce. */
  public static final int MIN_MAX_FRAME_PAYLOAD = 4 * 1024;
  /** The maximum frame payload a peer announces unless configured otherwise. */
  public static final int DEFAULT_MAX_FRAME_PAYLOAD = 1024 * 1024;
  /** The largest maximum frame payload a peer may announce. */
  public static final int HARD_MAX_FRAME_PAYLOAD = 1024 * 1024;
  /** The largest payload of any frame other than DATA. */
  public static final int MAX_CONTROL_PAYLOAD = 4 * 1024;
  /** The largest reason text in an ERROR frame, in UTF-8 bytes; longer reasons are cut. */
  public static final int MAX_REASON_BYTES = 1024;
  /** Capability bit: this side supports tunnels. */
  public static final int CAP_TUNNELS = 0x1;
  /** The largest permission bits an OPEN_FILE may carry. */
  static final int MAX_MODE = 07777;

  static final byte[] MAGIC = {'C', 'R', 'I', 'U', '4', 'J', 'W', 'P'};
  static final int HELLO_BYTES = 48;
  static final int ACCEPT_BYTES = 24;
  private static final int HELLO_PREFIX_BYTES = MAGIC.length + 2;

  private FrameCodec() {}

  /** A decoded, checked frame header. */
  record Header(FrameType type, int flags, int streamId, int length) {}

  // ---------------------------------------------------------------- encoding

  /** Encodes one frame, header and payload. */
  public static byte[] encode(Frame frame) {
    ByteBuffer buf = ByteBuffer.allocate(HEADER_BYTES + payloadLength(frame));
    encode(frame, buf);
    return buf.array();
  }

  /** Encodes frames back to back. */
  public static byte[] encodeAll(List<? extends Frame> frames) {
    int size = 0;
    for (Frame f : frames) {
      size += HEADER_BYTES + payloadLength(f);
    }
    ByteBuffer buf = ByteBuffer.allocate(size);
    for (Frame f : frames) {
      encode(f, buf);
    }
    return buf.array();
  }

  /**
   * A raw frame header with arbitrary values, for tests and fuzzers that need to build frames
   * the encoder refuses to produce.
   */
  public static byte[] header(int type, int flags, int reserved, int streamId, int length) {
    ByteBuffer buf = ByteBuffer.allocate(HEADER_BYTES);
    putHeader(buf, type, flags, reserved, streamId, length);
    return buf.array();
  }

  static void putHeader(ByteBuffer dst, int type, int flags, int reserved, int stream, int len) {
    dst.put((byte) type).put((byte) flags).putShort((short) reserved).putInt(stream).putInt(len);
  }

  /** The payload length {@code frame} encodes to. */
  static int payloadLength(Frame frame) {
    if (frame instanceof Frame.Hello) {
      return HELLO_BYTES;
    } else if (frame instanceof Frame.Accept) {
      return ACCEPT_BYTES;
    } else if (frame instanceof Frame.OpenFile f) {
      return 14 + nameBytes(f.name()).length;
    } else if (frame instanceof Frame.Data d) {
      return d.payload().remaining();
    } else if (frame instanceof Frame.EndOfFile) {
      return 4;
    } else if (frame instanceof Frame.OpenTunnel t) {
      return 2 + nameBytes(t.name()).length;
    } else if (frame instanceof Frame.EndOfStream) {
      return 0;
    } else if (frame instanceof Frame.WindowUpdate) {
      return 4;
    } else if (frame instanceof Frame.EndOfImage) {
      return 16;
    } else if (frame instanceof Frame.ErrorFrame e) {
      return 4 + reasonBytes(e.reason()).length;
    } else if (frame instanceof Frame.Ping || frame instanceof Frame.Pong) {
      return 8;
    } else {
      return 0; // Goodbye
    }
  }

  /** Writes {@code frame}'s header and payload into {@code dst} (DATA payloads are copied). */
  static void encode(Frame frame, ByteBuffer dst) {
    int length = payloadLength(frame);
    putHeader(dst, frame.type().code(), frame.flags(), 0, frame.streamId(), length);
    if (frame instanceof Frame.Hello h) {
      dst.put(MAGIC)
          .putShort((short) h.version())
          .put((byte) h.role().code())
          .put((byte) 0)
          .putInt(h.capabilities());
      putUuid(dst, h.sessionId());
      dst.putInt(h.maxFramePayload())
          .putInt(h.initialStreamWindow())
          .putInt(h.initialConnectionWindow())
          .putInt(h.maxOpenStreams());
    } else if (frame instanceof Frame.Accept a) {
      dst.putShort((short) a.version()).putShort((short) 0).putInt(a.capabilities());
      putUuid(dst, a.sessionId());
    } else if (frame instanceof Frame.OpenFile f) {
      byte[] name = nameBytes(f.name());
      dst.putLong(f.size()).putInt(f.mode()).putShort((short) name.length).put(name);
    } else if (frame instanceof Frame.Data d) {
      dst.put(d.payload().duplicate());
    } else if (frame instanceof Frame.EndOfFile e) {
      dst.putInt(e.crc32c());
    } else if (frame instanceof Frame.OpenTunnel t) {
      byte[] name = nameBytes(t.name());
      dst.putShort((short) name.length).put(name);
    } else if (frame instanceof Frame.WindowUpdate w) {
      dst.putInt(w.increment());
    } else if (frame instanceof Frame.EndOfImage e) {
      dst.putInt(e.image()).putInt(e.fileCount()).putLong(e.totalBytes());
    } else if (frame instanceof Frame.ErrorFrame e) {
      byte[] reason = reasonBytes(e.reason());
      dst.putShort((short) e.code()).putShort((short) reason.length).put(reason);
    } else if (frame instanceof Frame.Ping p) {
      dst.putLong(p.opaque());
    } else if (frame instanceof Frame.Pong p) {
      dst.putLong(p.opaque());
    }
  }

  private static byte[] nameBytes(String name) {
    byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
    if (bytes.length > 0xFFFF) {
      throw new IllegalArgumentException("name too long to encode: " + bytes.length + " bytes");
    }
    return bytes;
  }

  /** The reason's UTF-8 bytes, cut at a character boundary to {@link #MAX_REASON_BYTES}. */
  static byte[] reasonBytes(String reason) {
    byte[] bytes = reason.getBytes(StandardCharsets.UTF_8);
    if (bytes.length <= MAX_REASON_BYTES) {
      return bytes;
    }
    int end = MAX_REASON_BYTES;
    while (end > 0 && (bytes[end] & 0xC0) == 0x80) {
      end--; // do not split a multi-byte character
    }
    return Arrays.copyOf(bytes, end);
  }

  private static void putUuid(ByteBuffer dst, UUID id) {
    dst.putLong(id.getMostSignificantBits()).putLong(id.getLeastSignificantBits());
  }

  // ---------------------------------------------------------------- decoding

  /**
   * Decodes a whole byte array of frames, allowing DATA payloads up to the hard maximum.
   *
   * @throws ProtocolException (a {@link WireProtocolException}) at the first offence, including
   *     a frame cut short by the end of the array
   */
  public static List<Frame> decodeAll(byte[] bytes) throws ProtocolException {
    return decodeAll(bytes, HARD_MAX_FRAME_PAYLOAD);
  }

  /** Like {@link #decodeAll(byte[])}, with DATA payloads limited to {@code maxFramePayload}. */
  public static List<Frame> decodeAll(byte[] bytes, int maxFramePayload) throws ProtocolException {
    FrameReader reader =
        new FrameReader(Channels.newChannel(new ByteArrayInputStream(bytes)), false);
    List<Frame> frames = new ArrayList<>();
    try {
      Header h;
      while ((h = reader.readHeader(maxFramePayload, false)) != null) {
        frames.add(reader.readFrame(h));
      }
    } catch (ProtocolException e) {
      throw e;
    } catch (IOException e) {
      // A byte array channel does not fail; keep the promise of the signature anyway.
      throw new ProtocolException("cannot decode: " + e, e);
    }
    return frames;
  }

  /** Decodes and checks a 12-byte header (position 0 to 12 of {@code h}). */
  static Header decodeHeader(ByteBuffer h, int maxDataPayload) throws WireProtocolException {
    int typeByte = h.get(0) & 0xFF;
    int flags = h.get(1) & 0xFF;
    int reserved = h.getShort(2) & 0xFFFF;
    int stream = h.getInt(4);
    long length = Integer.toUnsignedLong(h.getInt(8));
    FrameType type = FrameType.of(typeByte);
    if (type == null) {
      throw new WireProtocolException(
          ErrorCode.UNKNOWN_FRAME_TYPE,
          String.format(
              "unknown frame type 0x%02x (stream %d, length %d)",
              typeByte, Integer.toUnsignedLong(stream), length));
    }
    if (type == FrameType.DATA) {
      if (length > maxDataPayload) {
        throw new WireProtocolException(
            ErrorCode.FRAME_TOO_LARGE,
            "DATA frame of "
                + length
                + " bytes on stream "
                + Integer.toUnsignedLong(stream)
                + " exceeds the maximum frame payload of "
                + maxDataPayload
                + " bytes");
      }
      if (length == 0) {
        throw new WireProtocolException(ErrorCode.PROTOCOL_ERROR, "empty DATA frame");
      }
    } else if (length > MAX_CONTROL_PAYLOAD) {
      throw new WireProtocolException(
          ErrorCode.FRAME_TOO_LARGE,
          type
              + " frame of "
              + length
              + " bytes exceeds the limit of "
              + MAX_CONTROL_PAYLOAD
              + " bytes for frames other than DATA");
    } else {
      int expected = fixedLength(type);
      if (expected >= 0 && length != expected) {
        throw new WireProtocolException(
            ErrorCode.PROTOCOL_ERROR,
            "bad length " + length + " for " + type + " frame (expected " + expected + ")");
      }
    }
    if (reserved != 0) {
      throw new WireProtocolException(
          ErrorCode.PROTOCOL_ERROR,
          String.format("%s frame with non-zero reserved field 0x%04x", type, reserved));
    }
    if (stream < 0) {
      throw new WireProtocolException(
          ErrorCode.PROTOCOL_ERROR,
          String.format("%s frame with the reserved stream id bit set (0x%08x)", type, stream));
    }
    if (type.scope() == FrameType.Scope.CONNECTION && stream != 0) {
      throw new WireProtocolException(
          ErrorCode.PROTOCOL_ERROR, type + " frame must be on stream 0, not stream " + stream);
    }
    if (type.scope() == FrameType.Scope.STREAM && stream == 0) {
      throw new WireProtocolException(
          ErrorCode.PROTOCOL_ERROR, type + " frame must be on a stream, not stream 0");
    }
    int allowedFlags = type == FrameType.END_OF_IMAGE ? Frame.EndOfImage.FLAG_ACK : 0;
    if ((flags & ~allowedFlags) != 0) {
      throw new WireProtocolException(
          ErrorCode.PROTOCOL_ERROR,
          String.format("%s frame with unknown flags 0x%02x", type, flags));
    }
    return new Header(type, flags, stream, (int) length);
  }

  /** The payload length a type always has, or -1 if it varies. */
  private static int fixedLength(FrameType type) {
    switch (type) {
      case ACCEPT:
        return ACCEPT_BYTES;
      case END_OF_FILE:
      case WINDOW_UPDATE:
        return 4;
      case END_OF_STREAM:
      case GOODBYE:
        return 0;
      case END_OF_IMAGE:
        return 16;
      case PING:
      case PONG:
        return 8;
      default:
        return -1; // HELLO (other versions may differ), OPEN_FILE, OPEN_TUNNEL, ERROR, DATA
    }
  }

  /**
   * Decodes the payload of a frame whose header was checked by {@link #decodeHeader}. The
   * payload is {@code p}'s remaining bytes; DATA payloads are copied.
   */
  static Frame decodePayload(Header h, ByteBuffer p) throws WireProtocolException {
    int stream = h.streamId();
    switch (h.type()) {
      case HELLO:
        return decodeHello(p);
      case ACCEPT:
        {
          int version = p.getShort() & 0xFFFF;
          checkVersion(version, "ACCEPT");
          int reserved = p.getShort() & 0xFFFF;
          if (reserved != 0) {
            throw protocol(String.format("ACCEPT with non-zero reserved field 0x%04x", reserved));
          }
          int caps = p.getInt();
          return new Frame.Accept(version, caps, getUuid(p));
        }
      case OPEN_FILE:
        {
          if (p.remaining() < 14) {
            throw protocol("OPEN_FILE payload of " + p.remaining() + " bytes is too short");
          }
          long size = p.getLong();
          int mode = p.getInt();
          int nameLength = p.getShort() & 0xFFFF;
          if (size < 0) {
            throw protocol("OPEN_FILE with size " + Long.toUnsignedString(size) + " out of range");
          }
          if (mode < 0 || mode > MAX_MODE) {
            throw protocol(String.format("OPEN_FILE with mode 0%o outside 0..07777", mode));
          }
          checkNameLength("OPEN_FILE", nameLength, p.remaining());
          String name = Names.decodeRemote("file", p.slice());
          return new Frame.OpenFile(stream, name, size, mode);
        }
      case DATA:
        {
          ByteBuffer copy = ByteBuffer.allocate(p.remaining());
          copy.put(p).flip();
          return new Frame.Data(stream, copy);
        }
      case END_OF_FILE:
        return new Frame.EndOfFile(stream, p.getInt());
      case OPEN_TUNNEL:
        {
          if (p.remaining() < 2) {
            throw protocol("OPEN_TUNNEL payload of " + p.remaining() + " bytes is too short");
          }
          int nameLength = p.getShort() & 0xFFFF;
          checkNameLength("OPEN_TUNNEL", nameLength, p.remaining());
          return new Frame.OpenTunnel(stream, Names.decodeRemote("tunnel", p.slice()));
        }
      case END_OF_STREAM:
        return new Frame.EndOfStream(stream);
      case WINDOW_UPDATE:
        {
          int increment = p.getInt();
          if (increment <= 0) {
            throw protocol(
                "WINDOW_UPDATE with increment "
                    + Integer.toUnsignedLong(increment)
                    + " outside 1.."
                    + Integer.MAX_VALUE);
          }
          return new Frame.WindowUpdate(stream, increment);
        }
      case END_OF_IMAGE:
        {
          int image = p.getInt();
          int files = p.getInt();
          long bytes = p.getLong();
          if (image < 0 || files < 0 || bytes < 0) {
            throw protocol("END_OF_IMAGE with a count out of range");
          }
          return new Frame.EndOfImage(
              (h.flags() & Frame.EndOfImage.FLAG_ACK) != 0, image, files, bytes);
        }
      case ERROR:
        {
          if (p.remaining() < 4) {
            throw protocol("ERROR payload of " + p.remaining() + " bytes is too short");
          }
          int code = p.getShort() & 0xFFFF;
          int reasonLength = p.getShort() & 0xFFFF;
          if (reasonLength > MAX_REASON_BYTES) {
            throw protocol(
                "ERROR reason of " + reasonLength + " bytes exceeds " + MAX_REASON_BYTES);
          }
          if (reasonLength != p.remaining()) {
            throw protocol(
                "ERROR payload has "
                    + p.remaining()
                    + " reason bytes but says "
                    + reasonLength);
          }
          return new Frame.ErrorFrame(stream, code, lenientUtf8(p));
        }
      case PING:
        return new Frame.Ping(p.getLong());
      case PONG:
        return new Frame.Pong(p.getLong());
      case GOODBYE:
        return new Frame.Goodbye();
    }
    throw new AssertionError(h.type());
  }

  private static Frame decodeHello(ByteBuffer p) throws WireProtocolException {
    int length = p.remaining();
    if (length < HELLO_PREFIX_BYTES) {
      throw protocol("HELLO payload of " + length + " bytes is too short");
    }
    byte[] magic = new byte[MAGIC.length];
    p.get(magic);
    if (!Arrays.equals(magic, MAGIC)) {
      throw protocol("not a criu4j wire peer: bad magic in HELLO (" + hex(magic) + ")");
    }
    int version = p.getShort() & 0xFFFF;
    checkVersion(version, "HELLO");
    if (length != HELLO_BYTES) {
      throw protocol("bad length " + length + " for HELLO frame (expected " + HELLO_BYTES + ")");
    }
    int roleCode = p.get() & 0xFF;
    Role role = Role.of(roleCode);
    if (role == null) {
      throw protocol("HELLO with unknown role " + roleCode);
    }
    int reserved = p.get() & 0xFF;
    if (reserved != 0) {
      throw protocol(String.format("HELLO with non-zero reserved byte 0x%02x", reserved));
    }
    int caps = p.getInt();
    UUID session = getUuid(p);
    int maxFrame = p.getInt();
    int streamWindow = p.getInt();
    int connectionWindow = p.getInt();
    int maxStreams = p.getInt();
    if (maxFrame < MIN_MAX_FRAME_PAYLOAD || maxFrame > HARD_MAX_FRAME_PAYLOAD) {
      throw protocol(
          "HELLO with max frame payload "
              + Integer.toUnsignedLong(maxFrame)
              + " outside "
              + MIN_MAX_FRAME_PAYLOAD
              + ".."
              + HARD_MAX_FRAME_PAYLOAD);
    }
    if (streamWindow < 0 || connectionWindow < 0) {
      throw protocol("HELLO with an initial window above " + Integer.MAX_VALUE);
    }
    if (maxStreams <= 0) {
      throw protocol("HELLO with max open streams " + Integer.toUnsignedLong(maxStreams));
    }
    return new Frame.Hello(
        version, role, caps, session, maxFrame, streamWindow, connectionWindow, maxStreams);
  }

  private static void checkVersion(int version, String frame) throws WireProtocolException {
    if (version != PROTOCOL_VERSION) {
      throw new WireProtocolException(
          ErrorCode.UNSUPPORTED_VERSION,
          "protocol version mismatch: peer's "
              + frame
              + " speaks version "
              + version
              + ", this side speaks version "
              + PROTOCOL_VERSION);
    }
  }

  private static void checkNameLength(String frame, int nameLength, int remaining)
      throws WireProtocolException {
    if (nameLength != remaining) {
      throw protocol(
          frame + " name length " + nameLength + " does not match the " + remaining
              + " name bytes in the frame");
    }
  }

  private static UUID getUuid(ByteBuffer p) {
    return new UUID(p.getLong(), p.getLong());
  }

  private static String lenientUtf8(ByteBuffer p) {
    CharsetDecoder decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    try {
      return decoder.decode(p).toString();
    } catch (java.nio.charset.CharacterCodingException e) {
      throw new AssertionError("REPLACE does not throw", e);
    }
  }

  private static WireProtocolException protocol(String message) {
    return new WireProtocolException(ErrorCode.PROTOCOL_ERROR, message);
  }

  static String hex(byte[] bytes) {
    StringBuilder sb = new StringBuilder();
    for (byte b : bytes) {
      if (sb.length() > 0) {
        sb.append(' ');
      }
      sb.append(String.format("%02x", b & 0xFF));
    }
    return sb.toString();
  }
}

package io.criu4j.internal.wire;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ScatteringByteChannel;

/**
 * Reads frames from a blocking channel: first the header ({@link #readHeader}), then the
 * payload, either into a caller's buffer ({@link #readPayload}, for DATA on the hot path),
 * decoded ({@link #readFrame}), or skipped.
 *
 * <p>Not thread-safe: one reading thread.
 */
final class FrameReader {
  private final ReadableByteChannel in;
  private final ScatteringByteChannel scattering;
  private final ByteBuffer[] payloadAndHeader = new ByteBuffer[2];
  /** The next header; may hold bytes read ahead together with the previous payload. */
  private final ByteBuffer header;
  private final ByteBuffer control;
  private ByteBuffer scratch;

  FrameReader(ReadableByteChannel in, boolean direct) {
    this.in = in;
    this.scattering = in instanceof ScatteringByteChannel s ? s : null;
    this.header =
        direct
            ? ByteBuffer.allocateDirect(FrameCodec.HEADER_BYTES)
            : ByteBuffer.allocate(FrameCodec.HEADER_BYTES);
    this.control = ByteBuffer.allocate(FrameCodec.MAX_CONTROL_PAYLOAD);
  }

  /**
   * Reads and checks the next header.
   *
   * @param first whether this is the first frame of the connection, which must be a HELLO (or
   *     an ERROR); anything else is reported as "not a criu4j wire peer" with the bytes seen
   * @return the header, or {@code null} if the channel ended cleanly before the header
   * @throws WireProtocolException if the header breaks a rule or the channel ends inside it
   */
  FrameCodec.Header readHeader(int maxDataPayload, boolean first) throws IOException {
    fill(header); // continues after bytes read ahead by readPayload
    try {
      return decodeHeader(maxDataPayload, first);
    } finally {
      header.clear();
    }
  }

  private FrameCodec.Header decodeHeader(int maxDataPayload, boolean first) throws IOException {
    if (header.position() == 0) {
      return null;
    }
    if (header.hasRemaining()) {
      byte[] seen = new byte[header.position()];
      header.flip();
      header.get(seen);
      if (first && !looksLikeHello(seen)) {
        throw notAPeer(seen);
      }
      throw new WireProtocolException(
          ErrorCode.PROTOCOL_ERROR,
          "truncated frame: the stream ended after "
              + seen.length
              + " of "
              + FrameCodec.HEADER_BYTES
              + " header bytes");
    }
    if (first) {
      byte[] seen = new byte[FrameCodec.HEADER_BYTES];
      header.get(0, seen);
      if (!looksLikeHello(seen)) {
        throw notAPeer(seen);
      }
    }
    return FrameCodec.decodeHeader(header, maxDataPayload);
  }

  private static boolean looksLikeHello(byte[] seen) {
    int type = seen[0] & 0xFF;
    return type == FrameType.HELLO.code() || type == FrameType.ERROR.code();
  }

  private static WireProtocolException notAPeer(byte[] seen) {
    return new WireProtocolException(
        ErrorCode.PROTOCOL_ERROR,
        "not a criu4j wire peer: the first frame must be HELLO, got bytes " + FrameCodec.hex(seen));
  }

  /**
   * Reads the payload of {@code h} into {@code dst}, which has exactly that many bytes free. On a
   * scattering channel, the same reads also take what has arrived of the next header, saving a
   * system call per frame.
   */
  void readPayload(FrameCodec.Header h, ByteBuffer dst) throws IOException {
    int expected = dst.remaining();
    if (scattering != null && header.position() == 0) {
      payloadAndHeader[0] = dst;
      payloadAndHeader[1] = header;
      try {
        while (dst.hasRemaining()) {
          if (scattering.read(payloadAndHeader) < 0) {
            break;
          }
        }
      } finally {
        payloadAndHeader[0] = null;
      }
    } else {
      fill(dst);
    }
    if (dst.hasRemaining()) {
      throw truncatedPayload(h, expected - dst.remaining());
    }
  }

  /** Reads and decodes the payload of {@code h}; DATA payloads are copied onto the heap. */
  Frame readFrame(FrameCodec.Header h) throws IOException {
    ByteBuffer payload;
    if (h.type() == FrameType.DATA) {
      payload = ByteBuffer.allocate(h.length());
    } else {
      control.clear().limit(h.length());
      payload = control;
    }
    readPayload(h, payload);
    payload.flip();
    return FrameCodec.decodePayload(h, payload);
  }

  /** Reads and discards the payload of {@code h}. */
  void skipPayload(FrameCodec.Header h) throws IOException {
    int left = h.length();
    if (scratch == null) {
      scratch = ByteBuffer.allocate(64 * 1024);
    }
    while (left > 0) {
      scratch.clear().limit(Math.min(left, scratch.capacity()));
      fill(scratch);
      if (scratch.hasRemaining()) {
        throw truncatedPayload(h, h.length() - left + scratch.position());
      }
      left -= scratch.position();
    }
  }

  private static WireProtocolException truncatedPayload(FrameCodec.Header h, int got) {
    return new WireProtocolException(
        ErrorCode.PROTOCOL_ERROR,
        "truncated frame: the stream ended after "
            + got
            + " of "
            + h.length()
            + " payload bytes of a "
            + h.type()
            + " frame on stream "
            + h.streamId());
  }

  /** Reads until {@code buf} is full or the channel ends. */
  private void fill(ByteBuffer buf) throws IOException {
    int idle = 0;
    while (buf.hasRemaining()) {
      int n = in.read(buf);
      if (n < 0) {
        return;
      }
      if (n == 0 && ++idle > 16) {
        Thread.yield(); // a blocking channel never returns 0; be gentle with one that does
      }
    }
  }
}

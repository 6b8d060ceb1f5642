package io.criu4j.testing.transport;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * Small blocking-channel helpers for transport tests: write a string or a pattern, read to the
 * end, read exactly n bytes, checksum a whole stream.
 *
 * <p>Thread-safe; stateless.
 */
public final class Streams {
  private Streams() {}

  /** Writes {@code text} as UTF-8. */
  public static void writeUtf8(WritableByteChannel channel, String text) throws IOException {
    ByteBuffer buffer = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }

  /** Reads until the end of the stream and decodes the bytes as UTF-8. */
  public static String readUtf8ToEnd(ReadableByteChannel channel) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocate(8192);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    while (channel.read(buffer) >= 0) {
      buffer.flip();
      bytes.write(buffer.array(), 0, buffer.limit());
      buffer.clear();
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  /** Reads exactly {@code dst.remaining()} bytes. */
  public static void readFully(ReadableByteChannel channel, ByteBuffer dst) throws IOException {
    while (dst.hasRemaining()) {
      if (channel.read(dst) < 0) {
        throw new EOFException(dst.remaining() + " bytes missing at the end of the stream");
      }
    }
  }

  /**
   * Writes {@code length} bytes of pattern stream {@code seed} in chunks of {@code chunkSize}.
   */
  public static void writePattern(WritableByteChannel channel, long seed, long length,
      int chunkSize) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocateDirect(chunkSize);
    for (long position = 0; position < length; ) {
      buffer.clear();
      buffer.limit((int) Math.min(chunkSize, length - position));
      StreamPattern.fill(buffer, seed, position);
      buffer.flip();
      position += buffer.remaining();
      while (buffer.hasRemaining()) {
        channel.write(buffer);
      }
    }
  }

  /**
   * Reads until the end of the stream (or until {@code limit} bytes), checking every byte
   * against pattern stream {@code seed}.
   *
   * @return the number of bytes read
   * @throws AssertionError at the first wrong byte
   */
  public static long readPattern(ReadableByteChannel channel, long seed, long limit,
      int chunkSize) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocateDirect(chunkSize);
    long position = 0;
    while (position < limit) {
      buffer.clear();
      buffer.limit((int) Math.min(chunkSize, limit - position));
      int n = channel.read(buffer);
      if (n < 0) {
        break;
      }
      buffer.flip();
      long mismatch = StreamPattern.firstMismatch(buffer, seed, position);
      if (mismatch >= 0) {
        throw new AssertionError("wrong byte at stream position " + mismatch);
      }
      position += n;
    }
    return position;
  }

  /** Byte count and CRC32C of a whole stream. */
  public record Checksum(long length, int crc32c) {
    @Override
    public String toString() {
      return length + " bytes, crc32c " + Integer.toHexString(crc32c);
    }
  }

  /** Reads until the end of the stream and returns its length and CRC32C. */
  public static Checksum checksumToEnd(ReadableByteChannel channel, int chunkSize)
      throws IOException {
    ByteBuffer buffer = ByteBuffer.allocateDirect(chunkSize);
    CRC32C crc = new CRC32C();
    long length = 0;
    while (true) {
      buffer.clear();
      int n = channel.read(buffer);
      if (n < 0) {
        return new Checksum(length, (int) crc.getValue());
      }
      buffer.flip();
      crc.update(buffer);
      length += n;
    }
  }
}

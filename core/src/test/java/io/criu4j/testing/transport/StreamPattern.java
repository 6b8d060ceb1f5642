package io.criu4j.testing.transport;

import java.nio.ByteBuffer;

/**
 * A deterministic, non-repeating byte stream: the byte at position {@code p} of stream
 * {@code seed} is a hash of both, so a lost, duplicated or reordered chunk of any length shows
 * up at the first byte after it.
 *
 * <p>Thread-safe; stateless.
 */
public final class StreamPattern {
  private StreamPattern() {}

  /** The byte at {@code position} of stream {@code seed}. */
  public static byte at(long seed, long position) {
    long x = (position + seed * 0x632BE59BD9B4E019L) * 0x9E3779B97F4A7C15L;
    return (byte) (x >>> 56);
  }

  /** Fills {@code dst}'s remaining bytes with the stream from {@code position}; flips nothing. */
  public static void fill(ByteBuffer dst, long seed, long position) {
    long p = position;
    while (dst.hasRemaining()) {
      dst.put(at(seed, p++));
    }
  }

  /**
   * Checks {@code src}'s remaining bytes against the stream from {@code position}, consuming
   * them.
   *
   * @return the stream position of the first wrong byte, or {@code -1} if all are right
   */
  public static long firstMismatch(ByteBuffer src, long seed, long position) {
    long p = position;
    while (src.hasRemaining()) {
      if (src.get() != at(seed, p)) {
        return p;
      }
      p++;
    }
    return -1;
  }
}

package io.criu4j.internal.wire;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * A pool of direct buffers in power-of-two size classes, from {@link #MIN_BUFFER} up to the
 * largest size the pool was made for, so the data path allocates no buffer per frame and a small
 * frame does not pin a buffer of the largest frame size. Free buffers are kept for reuse up to a
 * byte budget; beyond it, returned buffers are left to the garbage collector. Counts the buffers
 * handed out and not yet returned, so tests can check that a connection freed everything it held.
 *
 * <p>Thread-safe. After {@link #close()}, returned buffers are dropped and new ones are still
 * handed out, unpooled.
 */
final class BufferPool {
  /** The smallest buffer handed out. */
  static final int MIN_BUFFER = 4 * 1024;

  private final int bufferSize;
  private final long retainBytes;
  private final ArrayDeque<ByteBuffer>[] free;
  private long freeBytes;
  private int outstanding;
  private boolean closed;

  /**
   * A pool handing out buffers of up to {@code bufferSize} bytes (a power of two, or rounded up
   * to one), keeping up to {@code retainBytes} of free buffers.
   */
  @SuppressWarnings("unchecked")
  BufferPool(int bufferSize, long retainBytes) {
    this.bufferSize = classSize(bufferSize);
    this.retainBytes = retainBytes;
    this.free = new ArrayDeque[classOf(this.bufferSize) + 1];
    for (int i = 0; i < free.length; i++) {
      free[i] = new ArrayDeque<>();
    }
  }

  /** The largest buffer handed out. */
  int bufferSize() {
    return bufferSize;
  }

  private static int classSize(int bytes) {
    int n = Math.max(bytes, MIN_BUFFER);
    return n == Integer.highestOneBit(n) ? n : Integer.highestOneBit(n) << 1;
  }

  private static int classOf(int classSize) {
    return Integer.numberOfTrailingZeros(classSize) - Integer.numberOfTrailingZeros(MIN_BUFFER);
  }

  /** A buffer of the largest size. */
  ByteBuffer take() {
    return take(bufferSize);
  }

  /**
   * A cleared buffer with a capacity of at least {@code minBytes} (at most the largest size),
   * rounded up to its size class.
   */
  synchronized ByteBuffer take(int minBytes) {
    int size = classSize(Math.min(minBytes, bufferSize));
    outstanding++;
    ByteBuffer b = free[classOf(size)].pollFirst();
    if (b != null) {
      freeBytes -= size;
      return b.clear();
    }
    return ByteBuffer.allocateDirect(size);
  }

  synchronized void release(ByteBuffer b) {
    outstanding--;
    int size = b.capacity();
    if (!closed && freeBytes + size <= retainBytes && size == classSize(size)
        && size <= bufferSize) {
      free[classOf(size)].addFirst(b);
      freeBytes += size;
    }
  }

  /** Buffers taken and not yet released. */
  synchronized int outstanding() {
    return outstanding;
  }

  synchronized void close() {
    closed = true;
    for (ArrayDeque<ByteBuffer> q : free) {
      q.clear();
    }
    freeBytes = 0;
  }
}

package io.criu4j.internal.wire;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * A pool of equal-sized direct buffers, so the data path allocates no large buffer per frame.
 * Keeps up to {@code maxRetained} free buffers; counts the buffers handed out and not yet
 * returned, so tests can check that a connection freed everything it held.
 *
 * <p>Thread-safe. After {@link #close()}, returned buffers are dropped (left to the garbage
 * collector) and new ones are still handed out, unpooled.
 */
final class BufferPool {
  private final int bufferSize;
  private final int maxRetained;
  private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();
  private int outstanding;
  private boolean closed;

  BufferPool(int bufferSize, int maxRetained) {
    this.bufferSize = bufferSize;
    this.maxRetained = maxRetained;
  }

  int bufferSize() {
    return bufferSize;
  }

  synchronized ByteBuffer take() {
    outstanding++;
    ByteBuffer b = free.pollFirst();
    return b != null ? b.clear() : ByteBuffer.allocateDirect(bufferSize);
  }

  synchronized void release(ByteBuffer b) {
    outstanding--;
    if (!closed && free.size() < maxRetained) {
      free.addFirst(b);
    }
  }

  /** Buffers taken and not yet released. */
  synchronized int outstanding() {
    return outstanding;
  }

  synchronized void close() {
    closed = true;
    free.clear();
  }
}

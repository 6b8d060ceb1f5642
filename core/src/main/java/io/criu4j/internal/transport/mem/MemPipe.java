package io.criu4j.internal.transport.mem;

import java.nio.ByteBuffer;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One direction of an in-memory connection: a bounded ring buffer with one reading and one
 * writing end. Methods return status codes instead of throwing, so the connection can close
 * itself without holding this pipe's lock (closing takes both pipes' locks, one at a time).
 *
 * <p>Thread-safe.
 */
final class MemPipe {
  static final int EOF = -1;
  static final int TIMED_OUT = -2;
  static final int INTERRUPTED = -3;
  /** The reading end was closed locally (read), or the writing end was (write). */
  static final int CLOSED = -4;
  /** write: the writing end was shut down. */
  static final int SHUT_DOWN = -5;
  /** write: the reading end (the peer) was closed. */
  static final int BROKEN = -6;
  static final int OK = 0;

  private final byte[] buffer;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition readable = lock.newCondition();
  private final Condition writable = lock.newCondition();
  private int head; // guarded by lock
  private int count; // guarded by lock
  private boolean writerShutDown; // guarded by lock: EOF after the buffered bytes
  private boolean writerClosed; // guarded by lock: the writing side's connection is closed
  private boolean readerClosed; // guarded by lock: the reading side's connection is closed

  MemPipe(int capacity) {
    this.buffer = new byte[capacity];
  }

  /**
   * Reads into {@code dst}, waiting at most {@code timeoutNanos} (0: forever) for a first byte.
   *
   * @return bytes read, {@link #EOF}, or a negative status
   */
  int read(ByteBuffer dst, long timeoutNanos) {
    if (Thread.currentThread().isInterrupted()) {
      return INTERRUPTED;
    }
    long start = timeoutNanos == 0 ? 0 : System.nanoTime();
    lock.lock();
    try {
      while (true) {
        if (readerClosed) {
          return CLOSED;
        }
        if (!dst.hasRemaining()) {
          return 0;
        }
        if (count > 0) {
          int total = 0;
          while (count > 0 && dst.hasRemaining()) {
            int n = Math.min(Math.min(count, dst.remaining()), buffer.length - head);
            dst.put(buffer, head, n);
            head = (head + n) % buffer.length;
            count -= n;
            total += n;
          }
          if (count == 0) {
            head = 0;
          }
          writable.signal();
          return total;
        }
        if (writerShutDown || writerClosed) {
          return EOF;
        }
        if (timeoutNanos == 0) {
          readable.await();
        } else {
          long left = timeoutNanos - (System.nanoTime() - start);
          if (left <= 0) {
            return TIMED_OUT;
          }
          readable.awaitNanos(left);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return INTERRUPTED;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Writes all of {@code src}, waiting for room until {@code deadline} (a nanoTime; ignored if
   * {@code timed} is false).
   *
   * @return {@link #OK} or a negative status; on failure some bytes may have been written
   */
  int write(ByteBuffer src, boolean timed, long deadline) {
    if (Thread.currentThread().isInterrupted()) {
      return INTERRUPTED;
    }
    lock.lock();
    try {
      while (true) {
        if (writerClosed) {
          return CLOSED;
        }
        if (writerShutDown) {
          return SHUT_DOWN;
        }
        if (readerClosed) {
          return BROKEN;
        }
        if (!src.hasRemaining()) {
          return OK;
        }
        int room = buffer.length - count;
        if (room > 0) {
          while (room > 0 && src.hasRemaining()) {
            int tail = (head + count) % buffer.length;
            int n = Math.min(Math.min(room, src.remaining()), buffer.length - tail);
            src.get(buffer, tail, n);
            count += n;
            room -= n;
          }
          readable.signal();
          continue;
        }
        if (!timed) {
          writable.await();
        } else {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            return TIMED_OUT;
          }
          writable.awaitNanos(left);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return INTERRUPTED;
    } finally {
      lock.unlock();
    }
  }

  /** Half-close of the writing end: the reader gets EOF after the buffered bytes. */
  void shutDownWriter() {
    lock.lock();
    try {
      writerShutDown = true;
      readable.signalAll();
      writable.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** The writing side's connection closed: local writes fail, the reader gets EOF. */
  void closeWriter() {
    lock.lock();
    try {
      writerClosed = true;
      readable.signalAll();
      writable.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** The reading side's connection closed: local reads fail, the peer's writes break. */
  void closeReader() {
    lock.lock();
    try {
      readerClosed = true;
      count = 0;
      readable.signalAll();
      writable.signalAll();
    } finally {
      lock.unlock();
    }
  }
}

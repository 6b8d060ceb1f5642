package io.criu4j.internal.image;

import io.criu4j.MigrationException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A byte budget: {@link #acquire} waits until the bytes fit under the limit, {@link #release}
 * gives them back, {@link #abort} makes every waiting and later acquire fail. Not fair: small
 * requests may pass a large one that waits. Records the peak in use, for tests.
 *
 * <p>Thread-safe.
 */
public final class MemoryBudget {
  private final long limit;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private long used;
  private long peak;
  private MigrationException aborted;

  public MemoryBudget(long limit) {
    if (limit <= 0) {
      throw new IllegalArgumentException("limit must be positive: " + limit);
    }
    this.limit = limit;
  }

  public long limit() {
    return limit;
  }

  /**
   * Takes {@code bytes} (at most the limit), waiting until they fit.
   *
   * @throws MigrationException the abort reason, if the budget was or gets aborted
   * @throws InterruptedException if interrupted while waiting
   */
  public void acquire(long bytes) throws MigrationException, InterruptedException {
    if (bytes < 0 || bytes > limit) {
      throw new IllegalArgumentException("bytes outside 0.." + limit + ": " + bytes);
    }
    lock.lock();
    try {
      while (aborted == null && used + bytes > limit) {
        changed.await();
      }
      if (aborted != null) {
        throw aborted;
      }
      used += bytes;
      peak = Math.max(peak, used);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Takes {@code bytes} if they fit within {@code timeoutNanos}.
   *
   * @return whether the bytes were taken
   * @throws MigrationException the abort reason, if the budget was or gets aborted
   * @throws InterruptedException if interrupted while waiting
   */
  public boolean tryAcquire(long bytes, long timeoutNanos)
      throws MigrationException, InterruptedException {
    if (bytes < 0 || bytes > limit) {
      throw new IllegalArgumentException("bytes outside 0.." + limit + ": " + bytes);
    }
    long deadline = System.nanoTime() + timeoutNanos;
    lock.lock();
    try {
      while (aborted == null && used + bytes > limit) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        changed.awaitNanos(left);
      }
      if (aborted != null) {
        throw aborted;
      }
      used += bytes;
      peak = Math.max(peak, used);
      return true;
    } finally {
      lock.unlock();
    }
  }

  public void release(long bytes) {
    lock.lock();
    try {
      used -= bytes;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Fails every waiting and later {@link #acquire} with {@code reason}. Idempotent. */
  public void abort(MigrationException reason) {
    lock.lock();
    try {
      if (aborted == null) {
        aborted = reason;
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  public long used() {
    lock.lock();
    try {
      return used;
    } finally {
      lock.unlock();
    }
  }

  public long peak() {
    lock.lock();
    try {
      return peak;
    } finally {
      lock.unlock();
    }
  }
}

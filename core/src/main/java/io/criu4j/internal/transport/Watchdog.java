package io.criu4j.internal.transport;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Enforces timeouts on blocking JDK channel operations, which have none of their own
 * ({@code SO_TIMEOUT} does not apply to NIO channels): one daemon thread wakes up when the
 * earliest registered timeout can next expire and lets the overdue owner close its channel,
 * which makes the blocked operation fail with an
 * {@link java.nio.channels.AsynchronousCloseException}.
 *
 * <p>Owners (connections, connect attempts) {@linkplain #register register} themselves while
 * they have a timeout and mark the start of each operation with a volatile write, so a watched
 * read or write costs one {@link System#nanoTime()} and two atomic operations, with no
 * allocation and no system call. The thread is started on the first registration and exits
 * after being idle for a few seconds.
 *
 * <p>Thread-safe.
 */
public final class Watchdog {
  private static final Logger log = LoggerFactory.getLogger(Watchdog.class);
  private static final Watchdog SHARED = new Watchdog("criu4j-transport-watchdog");
  private static final long LINGER_NANOS = TimeUnit.SECONDS.toNanos(5);
  private static final long MAX_SLEEP_NANOS = TimeUnit.SECONDS.toNanos(60);

  /** Something with deadlines, checked by the watchdog thread. */
  public interface Watched {
    /**
     * Fires every timeout that has expired at {@code now} (a {@link System#nanoTime()} value)
     * and returns how many nanoseconds from {@code now} the next check is due:
     * {@link Long#MAX_VALUE} if never (until the owner calls {@link #reschedule()}). An owner
     * with timeout {@code T} and no operation in progress returns {@code T}, because an
     * operation that starts later expires no earlier than that. Must not block.
     */
    long check(long now);
  }

  private final String threadName;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final Set<Watched> watched = Collections.newSetFromMap(new IdentityHashMap<>());
  private long generation;
  private Thread thread;

  private Watchdog(String threadName) {
    this.threadName = threadName;
  }

  /** The JVM-wide watchdog used by the criu4j transports. */
  public static Watchdog shared() {
    return SHARED;
  }

  /** Starts checking {@code w}; registering twice has no further effect. */
  public void register(Watched w) {
    lock.lock();
    try {
      watched.add(w);
      generation++;
      if (thread == null) {
        Thread t = new Thread(this::run, threadName);
        t.setDaemon(true);
        t.setContextClassLoader(null);
        t.start();
        thread = t;
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Stops checking {@code w}. */
  public void unregister(Watched w) {
    lock.lock();
    try {
      watched.remove(w);
    } finally {
      lock.unlock();
    }
  }

  /** Makes the thread re-check everything now, for example after a timeout was shortened. */
  public void reschedule() {
    lock.lock();
    try {
      generation++;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private void run() {
    List<Watched> snapshot = new ArrayList<>();
    while (true) {
      long seen;
      lock.lock();
      try {
        long idleSince = System.nanoTime();
        while (watched.isEmpty()) {
          long left = LINGER_NANOS - (System.nanoTime() - idleSince);
          if (left <= 0) {
            thread = null;
            return;
          }
          awaitNanos(left);
        }
        snapshot.addAll(watched);
        seen = generation;
      } finally {
        lock.unlock();
      }
      long now = System.nanoTime();
      long sleep = MAX_SLEEP_NANOS;
      for (Watched w : snapshot) {
        try {
          sleep = Math.min(sleep, w.check(now));
        } catch (RuntimeException e) {
          log.warn("transport timeout check failed for {}", w, e);
        }
      }
      snapshot.clear();
      lock.lock();
      try {
        if (generation == seen) {
          long left = sleep - (System.nanoTime() - now);
          if (left > 0) {
            awaitNanos(left);
          }
        }
      } finally {
        lock.unlock();
      }
    }
  }

  private void awaitNanos(long nanos) {
    try {
      changed.awaitNanos(nanos);
    } catch (InterruptedException e) {
      // Nobody else owns this thread; an interrupt only means "look again".
      Thread.interrupted();
    }
  }
}

package io.criu4j.internal.posix;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.slf4j.Logger;

/**
 * Drains a child's stdout/stderr pipe on a daemon thread, logging each line at debug level and
 * keeping the last lines for error messages. Owns the read end; it closes it at end of stream.
 * Thread-safe.
 */
public final class OutputLogger {
  private static final int KEEP = 20;
  private final Deque<String> last = new ArrayDeque<>();
  private final Thread thread;

  private OutputLogger(Fd readEnd, Logger log, String prefix) {
    thread = new Thread(() -> drain(readEnd, log, prefix), "criu4j-output-" + prefix);
    thread.setDaemon(true);
  }

  /** Starts draining {@code readEnd}, which it takes ownership of. */
  public static OutputLogger start(Fd readEnd, Logger log, String prefix) {
    OutputLogger o = new OutputLogger(readEnd, log, prefix);
    o.thread.start();
    return o;
  }

  private void drain(Fd readEnd, Logger log, String prefix) {
    Pointer buf = Memory.allocateDirect(Native.runtime(), 4096);
    byte[] bytes = new byte[4096];
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    try (readEnd) {
      while (true) {
        long n = Native.libc().read(readEnd.get(), buf, bytes.length);
        if (n < 0 && Native.lastErrno() == Native.EINTR) {
          continue;
        }
        if (n <= 0) {
          break;
        }
        buf.get(0, bytes, 0, (int) n);
        for (int i = 0; i < n; i++) {
          if (bytes[i] == '\n') {
            emit(line, log, prefix);
          } else if (line.size() < 4096) {
            line.write(bytes[i]);
          }
        }
      }
      emit(line, log, prefix);
    }
  }

  private void emit(ByteArrayOutputStream line, Logger log, String prefix) {
    if (line.size() == 0) {
      return;
    }
    String text = line.toString(StandardCharsets.UTF_8);
    line.reset();
    log.debug("{}: {}", prefix, text);
    synchronized (last) {
      last.addLast(text);
      if (last.size() > KEEP) {
        last.removeFirst();
      }
    }
  }

  /** Waits up to {@code millis} for the child to close its end, then returns the last lines. */
  public List<String> lastLines(long millis) {
    try {
      thread.join(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    synchronized (last) {
      return List.copyOf(last);
    }
  }
}

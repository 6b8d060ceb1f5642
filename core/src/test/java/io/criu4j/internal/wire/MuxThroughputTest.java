package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One large file through the mux over a loopback TCP connection arrives intact. (Speed is
 * measured by {@code scripts/bench-transfer.sh}, a program, not by tests.)
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class MuxThroughputTest {
  private static final Logger log = LoggerFactory.getLogger(MuxThroughputTest.class);
  private static final int BUFFER = 1 << 20;

  @Test
  void sixtyFourMibThroughLoopbackArriveIntact() throws Exception {
    Result mux = throughMux(64L << 20, false);

    assertThat(mux.bytes()).isEqualTo(64L << 20);
    log.info("mux 64 MiB: {}", mux);
  }

  /**
   * One run: bytes moved, wall time, CPU time of the process, and CPU time of each side (the
   * sending application thread plus the sender's connection threads; the receiving application
   * thread plus the receiver's connection threads), all in nanoseconds.
   */
  record Result(long bytes, long nanos, long cpuNanos, long senderCpu, long receiverCpu) {
    double mibPerSecond() {
      return bytes / (1024.0 * 1024.0) / (nanos / 1e9);
    }

    /** CPU seconds per GB (10^9 bytes) on the given side. */
    double cpuPerGb(long sideNanos) {
      return sideNanos / 1e9 / (bytes / 1e9);
    }

    @Override
    public String toString() {
      return String.format(
          "%.0f MiB/s (%.2f s, %.2f CPU s; CPU s/GB sender %.2f, receiver %.2f)",
          mibPerSecond(),
          nanos / 1e9,
          cpuNanos / 1e9,
          cpuPerGb(senderCpu),
          cpuPerGb(receiverCpu));
    }
  }

  /** CPU time of the live threads, by thread id. */
  private static java.util.Map<Long, Long> threadCpu() {
    java.lang.management.ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    java.util.Map<Long, Long> cpu = new java.util.HashMap<>();
    for (long id : mx.getAllThreadIds()) {
      long t = mx.getThreadCpuTime(id);
      if (t >= 0) {
        cpu.put(id, t);
      }
    }
    return cpu;
  }

  /** CPU time used since {@code before} by the threads that {@code side} selects. */
  private static long sideCpu(
      java.util.Map<Long, Long> before,
      java.util.Map<Long, Long> after,
      java.util.function.LongPredicate side) {
    long sum = 0;
    for (var e : after.entrySet()) {
      if (side.test(e.getKey())) {
        sum += e.getValue() - before.getOrDefault(e.getKey(), 0L);
      }
    }
    return sum;
  }

  private static long threadCpuNow() {
    return ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
  }

  private static String threadName(long id) {
    java.lang.management.ThreadInfo info = ManagementFactory.getThreadMXBean().getThreadInfo(id);
    return info == null ? "" : info.getThreadName();
  }

  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
            ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  private static ByteBuffer randomDirect() {
    byte[] bytes = new byte[BUFFER];
    new Random(1).nextBytes(bytes);
    return ByteBuffer.allocateDirect(BUFFER).put(bytes).flip();
  }

  static Result throughMux(long size, boolean transferTo) throws Exception {
    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux = Muxes.connect(channels)) {
      ByteBuffer source = randomDirect();
      long[] receiverThread = {0}; // the receiving thread's CPU time
      var threads0 = threadCpu();
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      CompletableFuture<Long> received =
          MuxConnectionTest.supply(
              () -> {
                long myCpu0 = threadCpuNow();
                InboundFile in = (InboundFile) mux.receiver().accept();
                long total = 0;
                if (transferTo) {
                  total = in.transferTo(new Discard());
                } else {
                  ByteBuffer dst = ByteBuffer.allocateDirect(BUFFER);
                  int n;
                  while ((n = in.read(dst.clear())) >= 0) {
                    in.grant(n);
                    total += n;
                  }
                }
                receiverThread[0] = threadCpuNow() - myCpu0;
                return total; // -1 came after the CRC32C matched
              });
      try (OutboundFile out = mux.sender().openFile("pages-1.img", size, 0)) {
        for (long left = size; left > 0; left -= BUFFER) {
          ByteBuffer b = source.duplicate();
          b.limit((int) Math.min(BUFFER, left));
          out.write(b);
        }
      }
      long total = received.get(240, TimeUnit.SECONDS);
      long nanos = System.nanoTime() - t0;
      long cpu = cpuNanos() - cpu0;
      var threads1 = threadCpu();
      long self = Thread.currentThread().getId();
      if (Boolean.getBoolean("criu4j.bench.threads")) {
        StringBuilder b = new StringBuilder(transferTo ? "transferTo" : "read+grant");
        for (var e : threads1.entrySet()) {
          long used = e.getValue() - threads0.getOrDefault(e.getKey(), 0L);
          if (used > 5_000_000) {
            b.append(String.format(" %s=%.3f", threadName(e.getKey()), used / 1e9));
          }
        }
        System.out.println(b.append(String.format(" receiving-app=%.3f", receiverThread[0] / 1e9)));
      }
      long senderCpu =
          sideCpu(
              threads0,
              threads1,
              id -> id == self || threadName(id).startsWith("criu4j-test-sender-"));
      long receiverCpu =
          sideCpu(
              threads0,
              threads1,
              id -> threadName(id).startsWith("criu4j-test-receiver-"));
      return new Result(total, nanos, cpu, senderCpu, receiverCpu + receiverThread[0]);
    }
  }

  /** A sink that drops what it is given, like writing to a file that is never read. */
  private static final class Discard implements WritableByteChannel {
    @Override
    public int write(ByteBuffer src) {
      int n = src.remaining();
      src.position(src.limit());
      return n;
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }
}

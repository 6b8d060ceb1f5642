package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Throughput of one file through the mux over a loopback TCP connection, against a raw copy
 * over the same kind of connection. The 1 GiB comparison runs with {@code -Dcriu4j.bench=true};
 * the smaller one always runs (it checks integrity, not speed).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class MuxThroughputTest {
  private static final Logger log = LoggerFactory.getLogger(MuxThroughputTest.class);
  private static final int BUFFER = 1 << 20;

  @Test
  void sixtyFourMibThroughLoopbackArriveIntact() throws Exception {
    Result mux = throughMux(64L << 20);

    assertThat(mux.bytes()).isEqualTo(64L << 20);
    log.info("mux 64 MiB: {}", mux);
  }

  @Test
  @EnabledIfSystemProperty(named = "criu4j.bench", matches = "true")
  void oneGibThroughTheMuxComparedWithARawCopy() throws Exception {
    long size = 1L << 30;
    throughMux(256L << 20); // warm up
    rawCopy(256L << 20);
    Result raw = rawCopy(size);
    Result mux = throughMux(size);
    String report =
        String.format(
            "1 GiB over loopback TCP: raw %s; mux %s; mux/raw throughput %.2f",
            raw, mux, mux.mibPerSecond() / raw.mibPerSecond());
    log.info(report);
    System.out.println(report);
  }

  record Result(long bytes, long nanos, long cpuNanos) {
    double mibPerSecond() {
      return bytes / (1024.0 * 1024.0) / (nanos / 1e9);
    }

    @Override
    public String toString() {
      return String.format(
          "%.0f MiB/s (%.2f s, %.2f CPU s)", mibPerSecond(), nanos / 1e9, cpuNanos / 1e9);
    }
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

  static Result throughMux(long size) throws Exception {
    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux = Muxes.connect(channels)) {
      ByteBuffer source = randomDirect();
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      CompletableFuture<Long> received =
          MuxConnectionTest.supply(
              () -> {
                InboundFile in = (InboundFile) mux.receiver().accept();
                ByteBuffer dst = ByteBuffer.allocateDirect(BUFFER);
                long total = 0;
                int n;
                while ((n = in.read(dst.clear())) >= 0) {
                  in.grant(n);
                  total += n;
                }
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
      return new Result(total, System.nanoTime() - t0, cpuNanos() - cpu0);
    }
  }

  static Result rawCopy(long size) throws Exception {
    try (ChannelPair channels = ChannelPair.loopback()) {
      ByteBuffer source = randomDirect();
      ReadableByteChannel in = channels.b.in();
      WritableByteChannel out = channels.a.out();
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      CompletableFuture<Long> received =
          MuxConnectionTest.supply(
              () -> {
                ByteBuffer dst = ByteBuffer.allocateDirect(BUFFER);
                long total = 0;
                while (total < size) {
                  int n = in.read(dst.clear());
                  if (n < 0) {
                    break;
                  }
                  total += n;
                }
                return total;
              });
      for (long left = size; left > 0; left -= BUFFER) {
        ByteBuffer b = source.duplicate();
        b.limit((int) Math.min(BUFFER, left));
        while (b.hasRemaining()) {
          out.write(b);
        }
      }
      long total = received.get(240, TimeUnit.SECONDS);
      return new Result(total, System.nanoTime() - t0, cpuNanos() - cpu0);
    }
  }
}

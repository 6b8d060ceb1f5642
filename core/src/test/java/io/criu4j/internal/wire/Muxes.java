package io.criu4j.internal.wire;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** Test fixtures: configurations and a connected sender/receiver pair. */
final class Muxes {
  private Muxes() {}

  static MuxConfig.Builder senderConfig() {
    return MuxConfig.sender(RawPeer.SESSION)
        .name("test")
        .stallTimeout(Duration.ofSeconds(10))
        .closeTimeout(Duration.ofSeconds(2));
  }

  static MuxConfig.Builder receiverConfig() {
    return MuxConfig.receiver()
        .name("test")
        .stallTimeout(Duration.ofSeconds(10))
        .closeTimeout(Duration.ofSeconds(2));
  }

  /** A sender and a receiver connected through {@code channels}; closing closes both. */
  record Pair(MuxConnection sender, MuxConnection receiver) implements AutoCloseable {
    @Override
    public void close() {
      Thread t = new Thread(receiver::close, "close-receiver");
      t.start();
      sender.close();
      try {
        t.join(TimeUnit.SECONDS.toMillis(20));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  static Pair connect(ChannelPair channels) throws Exception {
    return connect(channels, senderConfig().build(), receiverConfig().build());
  }

  static Pair connect(ChannelPair channels, MuxConfig sender, MuxConfig receiver)
      throws Exception {
    CompletableFuture<MuxConnection> r = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try {
                r.complete(MuxConnection.open(channels.b.in(), channels.b.out(), receiver));
              } catch (Throwable e) {
                r.completeExceptionally(e);
              }
            },
            "open-receiver");
    t.start();
    MuxConnection s = MuxConnection.open(channels.a.in(), channels.a.out(), sender);
    try {
      return new Pair(s, r.get(20, TimeUnit.SECONDS));
    } catch (ExecutionException e) {
      s.close();
      throw (Exception) e.getCause();
    }
  }

  static byte[] randomBytes(Random random, int n) {
    byte[] b = new byte[n];
    random.nextBytes(b);
    return b;
  }

  /** Writes {@code data} in pieces of {@code piece} bytes. */
  static void writeAll(java.nio.channels.WritableByteChannel ch, byte[] data, int piece)
      throws java.io.IOException {
    for (int off = 0; off < data.length; off += piece) {
      ch.write(ByteBuffer.wrap(data, off, Math.min(piece, data.length - off)));
    }
  }
}

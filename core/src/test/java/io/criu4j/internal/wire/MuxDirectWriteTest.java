package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Writes from direct buffers, which the connection sends straight from the caller's buffer while
 * the stream is the only one with data (no copy, no hand-off to the writer thread). The same
 * guarantees hold as for copied writes: fair turns between streams, credit, CRC32C, failures.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MuxDirectWriteTest {
  private static final long SEED = 20240612L;

  @Test
  void directWritesOfEverySizeMixedWithHeapWritesArriveIntact() throws Exception {
    Random random = new Random(SEED);
    byte[] data = Muxes.randomBytes(random, 9 * 1024 * 1024 + 123);
    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux = Muxes.connect(channels)) {
      CompletableFuture<byte[]> received =
          MuxConnectionTest.supply(
              () -> MuxConnectionTest.readAll((InboundFile) mux.receiver().accept()));
      try (OutboundFile out = mux.sender().openFile("pages-1.img", data.length, 0)) {
        int off = 0;
        while (off < data.length) {
          int n =
              Math.min(
                  data.length - off,
                  switch (random.nextInt(4)) {
                    case 0 -> 1 + random.nextInt(64 * 1024); // small: copied
                    case 1 -> 64 * 1024 + random.nextInt(64 * 1024);
                    default -> 1 + random.nextInt(3 * 1024 * 1024); // up to several frames
                  });
          ByteBuffer b =
              random.nextInt(5) == 0 ? ByteBuffer.wrap(data, off, n) : direct(data, off, n);
          int before = b.position();
          assertThat(out.write(b)).isEqualTo(n);
          assertThat(b.position() - before).isEqualTo(n);
          off += n;
        }
      }

      assertThat(received.get(30, TimeUnit.SECONDS)).isEqualTo(data); // -1 after the CRC32C
    }
  }

  @Test
  void smallFileFinishesBeforeAHugeFileWrittenFromDirectBuffers() throws Exception {
    byte[] huge = Muxes.randomBytes(new Random(SEED), 96 * 1024 * 1024);
    byte[] small = Muxes.randomBytes(new Random(SEED + 1), 1024 * 1024);
    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux = Muxes.connect(channels)) {
      StoringReceiver receiver = new StoringReceiver(mux.receiver());
      OutboundFile hugeFile = mux.sender().openFile("huge.img", huge.length, 0);
      CompletableFuture<Void> hugeDone = writeDirectAsync(hugeFile, huge, 1024 * 1024);
      while (hugeFile.written() < 8 * 1024 * 1024) {
        Thread.sleep(1);
      }
      OutboundFile smallFile = mux.sender().openFile("small.img", small.length, 0);
      writeDirectAsync(smallFile, small, 256 * 1024).get(30, TimeUnit.SECONDS);
      hugeDone.get(30, TimeUnit.SECONDS);
      mux.sender().close();
      receiver.awaitDone();

      assertThat(receiver.completionOrder).containsExactly("small.img", "huge.img");
      assertThat(receiver.files.get("huge.img")).isEqualTo(huge);
      assertThat(receiver.files.get("small.img")).isEqualTo(small);
    }
  }

  @Test
  void manyDirectWritersShareTheConnection() throws Exception {
    int files = 6;
    List<byte[]> data = new ArrayList<>();
    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux = Muxes.connect(channels)) {
      StoringReceiver receiver = new StoringReceiver(mux.receiver());
      List<CompletableFuture<Void>> writes = new ArrayList<>();
      for (int i = 0; i < files; i++) {
        byte[] bytes = Muxes.randomBytes(new Random(SEED + i), (i + 1) * 3 * 1024 * 1024 + i);
        data.add(bytes);
        OutboundFile f = mux.sender().openFile("f" + i, bytes.length, 0);
        writes.add(writeDirectAsync(f, bytes, 512 * 1024 + i * 4096));
      }
      for (CompletableFuture<Void> w : writes) {
        w.get(30, TimeUnit.SECONDS);
      }
      mux.sender().close();
      receiver.awaitDone();

      for (int i = 0; i < files; i++) {
        assertThat(receiver.files.get("f" + i)).as("f%d", i).isEqualTo(data.get(i));
      }
    }
  }

  @Test
  void directWritesWithoutCreditBufferUpToTheSendBufferAndResumeWhenGranted() throws Exception {
    int window = 64 * 1024;
    byte[] data = Muxes.randomBytes(new Random(SEED), 4 * 1024 * 1024);
    MuxConfig receiverConfig =
        Muxes.receiverConfig()
            .initialStreamWindow(window)
            .initialConnectionWindow(8 * window)
            .build();
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux =
            Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig)) {
      OutboundFile out = mux.sender().openFile("pages-1.img", data.length, 0);
      CompletableFuture<Void> writing = writeDirectAsync(out, data, 256 * 1024);
      InboundFile in = (InboundFile) mux.receiver().accept();
      ByteArrayOutputStream received = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(1024 * 1024);
      while (received.size() < window) {
        int n = in.read(buf.clear());
        received.write(buf.array(), 0, n);
      }
      Thread.sleep(300);

      assertThat(received.size()).isEqualTo(window);
      assertThat(writing).isNotDone();
      assertThat(mux.receiver().stats().dataBytesReceived()).isEqualTo(window);
      // What the window allowed went out; the rest waits in the send buffer (at most 1 MiB).
      assertThat(out.written()).isBetween((long) window, window + 2L * 1024 * 1024);

      in.grant(window);
      int n;
      while ((n = in.read(buf.clear())) >= 0) {
        received.write(buf.array(), 0, n);
        in.grant(n);
      }
      writing.get(10, TimeUnit.SECONDS);

      assertThat(received.toByteArray()).isEqualTo(data);
    }
  }

  @Test
  void receiverErrorFailsTheSendersDirectWrite() throws Exception {
    MuxConfig receiverConfig =
        Muxes.receiverConfig().initialStreamWindow(4096).initialConnectionWindow(4096).build();
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux =
            Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig)) {
      OutboundFile out = mux.sender().openFile("pages-1.img", 8 << 20, 0);
      CompletableFuture<Void> writing = writeDirectAsync(out, new byte[8 << 20], 1 << 20);
      mux.receiver().accept();
      Thread.sleep(200);
      assertThat(writing).isNotDone();

      mux.receiver().sendError(ErrorCode.INTERNAL, "cache directory is full");

      Throwable failure = MuxConnectionTest.failureOf(writing);
      assertThat(failure).isInstanceOf(WireProtocolException.class);
      assertThat(((WireProtocolException) failure).remote()).isTrue();
      assertThat(failure).hasMessage("peer reported INTERNAL: cache directory is full");
    }
  }

  @Test
  void theSenderNeverExceedsTheCreditWithDirectWrites() throws Exception {
    // A raw receiver grants nothing beyond its HELLO: any DATA beyond the window would be a
    // FLOW_CONTROL error on the mux receiver, so count what arrives on a real one instead.
    int window = 100_000;
    MuxConfig receiverConfig =
        Muxes.receiverConfig()
            .initialStreamWindow(window)
            .initialConnectionWindow(window)
            .build();
    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux =
            Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig)) {
      OutboundFile out = mux.sender().openFile("pages-1.img", 8 << 20, 0);
      CompletableFuture<Void> writing = writeDirectAsync(out, new byte[8 << 20], 3 << 20);
      mux.receiver().accept();
      Thread.sleep(300);

      assertThat(writing).isNotDone();
      assertThat(mux.receiver().stats().dataBytesReceived()).isEqualTo(window);
      assertThat(mux.receiver().failure()).isEmpty();
      mux.sender().sendError(ErrorCode.CANCELLED, "test over");
    }
  }

  private static ByteBuffer direct(byte[] data, int off, int n) {
    ByteBuffer b = ByteBuffer.allocateDirect(n + 16);
    b.position(7); // not at 0, to catch slicing mistakes
    b.put(data, off, n);
    return b.flip().position(7);
  }

  private static CompletableFuture<Void> writeDirectAsync(
      OutboundFile f, byte[] data, int piece) {
    return MuxConnectionTest.supply(
        () -> {
          ByteBuffer b = ByteBuffer.allocateDirect(piece);
          for (int off = 0; off < data.length; off += piece) {
            int n = Math.min(piece, data.length - off);
            b.clear();
            b.put(data, off, n).flip();
            f.write(b);
          }
          f.close();
          return null;
        });
  }
}

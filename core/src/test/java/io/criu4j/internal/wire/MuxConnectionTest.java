package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MuxConnectionTest {
  private static final long SEED = 20240611L;

  @Test
  void manyFilesAndATunnelRoundTripAtTheSameTime() throws Exception {
    Random random = new Random(SEED);
    Map<String, byte[]> sent = new LinkedHashMap<>();
    for (int i = 0; i < 24; i++) {
      int size = i % 6 == 0 ? 0 : random.nextInt(2 * 1024 * 1024);
      sent.put("file-" + i + ".img", Muxes.randomBytes(random, size));
    }
    byte[] tunnelData = Muxes.randomBytes(random, 4 * 1024 * 1024);

    try (ChannelPair channels = ChannelPair.loopback();
        Muxes.Pair mux = Muxes.connect(channels)) {
      StoringReceiver receiver = new StoringReceiver(mux.receiver());
      ExecutorService pool = Executors.newFixedThreadPool(6);
      try {
        Tunnel tunnel = mux.sender().openTunnel("page-server");
        Future<byte[]> echoed = pool.submit(() -> readAll(tunnel));
        Future<?> tunnelWriter =
            pool.submit(
                () -> {
                  Muxes.writeAll(tunnel, tunnelData, 10_000);
                  tunnel.shutdownOutput();
                  return null;
                });
        List<Future<?>> writers = new ArrayList<>();
        List<Map.Entry<String, byte[]>> entries = new ArrayList<>(sent.entrySet());
        for (int w = 0; w < 4; w++) {
          int first = w;
          writers.add(
              pool.submit(
                  () -> {
                    for (int i = first; i < entries.size(); i += 4) {
                      var e = entries.get(i);
                      try (OutboundFile f =
                          mux.sender().openFile(e.getKey(), e.getValue().length, 0600)) {
                        Muxes.writeAll(f, e.getValue(), 1 + random(i) * 7919);
                      }
                    }
                    return null;
                  }));
        }
        for (Future<?> f : writers) {
          f.get();
        }
        ImageEnd end = mux.sender().endImage();
        tunnelWriter.get();
        assertThat(echoed.get()).isEqualTo(tunnelData);
        tunnel.close();

        assertThat(end)
            .isEqualTo(
                new ImageEnd(
                    0, sent.size(), sent.values().stream().mapToLong(b -> b.length).sum()));
      } finally {
        pool.shutdownNow();
      }
      mux.sender().close();
      receiver.awaitDone();

      assertThat(receiver.files.keySet()).isEqualTo(sent.keySet());
      sent.forEach((name, data) -> assertThat(receiver.files.get(name)).as(name).isEqualTo(data));
      assertThat(receiver.images).containsExactly(new ImageEnd(0, 24, totalBytes(sent)));
      assertThat(receiver.tunnelBytes).containsEntry("page-server", (long) tunnelData.length);
    }
  }

  @Test
  void smallFileFinishesBeforeAHugeFileThatStartedWithIt() throws Exception {
    byte[] huge = new byte[96 * 1024 * 1024];
    byte[] small = new byte[1024 * 1024];
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      StoringReceiver receiver = new StoringReceiver(mux.receiver());
      OutboundFile hugeFile = mux.sender().openFile("huge.img", huge.length, 0);
      OutboundFile smallFile = mux.sender().openFile("small.img", small.length, 0);
      CompletableFuture<Void> hugeDone = writeAsync(hugeFile, huge);
      CompletableFuture<Void> smallDone = writeAsync(smallFile, small);
      smallDone.get();
      hugeDone.get();
      mux.sender().close();
      receiver.awaitDone();

      assertThat(receiver.completionOrder).containsExactly("small.img", "huge.img");
    }
  }

  @Test
  void smallFileOpenedWhileAHugeFileIsStreamingIsNotStarved() throws Exception {
    byte[] huge = new byte[96 * 1024 * 1024];
    byte[] small = new byte[512 * 1024];
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      StoringReceiver receiver = new StoringReceiver(mux.receiver());
      OutboundFile hugeFile = mux.sender().openFile("huge.img", huge.length, 0);
      CompletableFuture<Void> hugeDone = writeAsync(hugeFile, huge);
      while (hugeFile.written() < 8 * 1024 * 1024) {
        Thread.sleep(1);
      }
      OutboundFile smallFile = mux.sender().openFile("small.img", small.length, 0);
      writeAsync(smallFile, small).get();
      hugeDone.get();
      mux.sender().close();
      receiver.awaitDone();

      assertThat(receiver.completionOrder).containsExactly("small.img", "huge.img");
    }
  }

  @Test
  void receiverThatGrantsNoCreditBlocksTheSenderAndGrantingResumesIt() throws Exception {
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
      CompletableFuture<Void> writing = writeAsync(out, data);
      InboundFile in = (InboundFile) mux.receiver().accept();
      ByteArrayOutputStream received = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(1024 * 1024);

      // Read everything the window allowed, without granting.
      while (received.size() < window) {
        int n = in.read(buf.clear());
        received.write(buf.array(), 0, n);
      }
      Thread.sleep(500);

      assertThat(received.size()).isEqualTo(window);
      assertThat(writing).isNotDone();
      assertThat(mux.receiver().stats().dataBytesReceived()).isEqualTo(window);

      // Grant as we go: the sender resumes and everything arrives.
      in.grant(window);
      int n;
      while ((n = in.read(buf.clear())) >= 0) {
        received.write(buf.array(), 0, n);
        in.grant(n);
      }
      writing.get(10, TimeUnit.SECONDS);
      out.close();

      assertThat(received.toByteArray()).isEqualTo(data);
    }
  }

  @Test
  void connectionWindowBoundsTheBytesInFlightOverAllStreams() throws Exception {
    int connectionWindow = 128 * 1024;
    MuxConfig receiverConfig =
        Muxes.receiverConfig()
            .initialStreamWindow(1024 * 1024)
            .initialConnectionWindow(connectionWindow)
            .build();
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux =
            Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig)) {
      // Each file is larger than the window plus the sender's buffer, so none can finish.
      int size = 4 * 1024 * 1024;
      List<CompletableFuture<Void>> writes = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        OutboundFile f = mux.sender().openFile("f" + i, size, 0);
        writes.add(writeAsync(f, new byte[size]));
      }
      Thread.sleep(500);

      assertThat(mux.receiver().stats().dataBytesReceived()).isEqualTo(connectionWindow);
      assertThat(writes).noneMatch(CompletableFuture::isDone);
      mux.sender().sendError(ErrorCode.CANCELLED, "test over");
    }
  }

  @Test
  void endImageWaitsForTheReceiversAcknowledgementAndLaterImagesMayReuseNames()
      throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      sendFile(mux.sender(), "inventory.img", new byte[] {1, 2, 3});
      CompletableFuture<ImageEnd> ended = supply(() -> mux.sender().endImage());
      InboundFile file = (InboundFile) mux.receiver().accept();
      ImageEnd end = (ImageEnd) mux.receiver().accept();
      Thread.sleep(200);

      assertThat(file.name()).isEqualTo("inventory.img");
      assertThat(end).isEqualTo(new ImageEnd(0, 1, 3));
      assertThat(ended).isNotDone();

      mux.receiver().acknowledgeImage(end);

      assertThat(ended.get(5, TimeUnit.SECONDS)).isEqualTo(end);
      sendFile(mux.sender(), "inventory.img", new byte[] {4});
      InboundFile again = (InboundFile) mux.receiver().accept();
      assertThat(again.image()).isEqualTo(1);
      assertThat(readAll(again)).containsExactly(4);
    }
  }

  @Test
  void emptyFileRoundTrips() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      mux.sender().openFile("empty.img", 0, 0644).close();
      InboundFile in = (InboundFile) mux.receiver().accept();

      assertThat(in.size()).isZero();
      assertThat(in.mode()).isEqualTo(0644);
      assertThat(in.read(ByteBuffer.allocate(10))).isEqualTo(-1);
    }
  }

  @Test
  void tunnelDirectionsEndIndependently() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      Tunnel local = mux.sender().openTunnel("ps");
      Tunnel remote = (Tunnel) mux.receiver().accept();
      assertThat(remote.name()).isEqualTo("ps");
      assertThat(remote.localOpened()).isFalse();

      local.write(ByteBuffer.wrap(new byte[] {1, 2}));
      local.shutdownOutput();
      assertThat(readAll(remote)).containsExactly(1, 2);

      // The other direction still works after the first ended.
      remote.write(ByteBuffer.wrap(new byte[] {3}));
      ByteBuffer buf = ByteBuffer.allocate(8);
      assertThat(local.read(buf)).isEqualTo(1);
      assertThat(buf.get(0)).isEqualTo((byte) 3);
      assertThatThrownBy(() -> local.write(ByteBuffer.wrap(new byte[] {9})))
          .isInstanceOf(java.nio.channels.ClosedChannelException.class);

      remote.shutdownOutput();
      assertThat(local.read(buf.clear())).isEqualTo(-1);
    }
  }

  @Test
  void tunnelsMayBeOpenedByTheReceiverToo() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      Tunnel lazyPages = mux.receiver().openTunnel("lazy-pages");
      Tunnel atSender = (Tunnel) mux.sender().accept();

      lazyPages.write(ByteBuffer.wrap(new byte[] {7}));
      lazyPages.shutdownOutput();

      assertThat(atSender.streamId() % 2).isZero();
      assertThat(readAll(atSender)).containsExactly(7);
      atSender.close();
    }
  }

  @Test
  void receiverErrorFailsTheSendersBlockedWriteWithTheReceiversReason() throws Exception {
    MuxConfig receiverConfig =
        Muxes.receiverConfig().initialStreamWindow(4096).initialConnectionWindow(4096).build();
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux =
            Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig)) {
      OutboundFile out = mux.sender().openFile("pages-1.img", 8 << 20, 0);
      CompletableFuture<Void> writing = writeAsync(out, new byte[8 << 20]);
      mux.receiver().accept();
      Thread.sleep(200);
      assertThat(writing).isNotDone();

      mux.receiver().sendError(ErrorCode.INTERNAL, "cache directory is full");

      Throwable failure = failureOf(writing);
      assertThat(failure).isInstanceOf(WireProtocolException.class);
      WireProtocolException e = (WireProtocolException) failure;
      assertThat(e.remote()).isTrue();
      assertThat(e.code()).isEqualTo(ErrorCode.INTERNAL);
      assertThat(e.reason()).isEqualTo("cache directory is full");
      assertThat(e).hasMessage("peer reported INTERNAL: cache directory is full");
      assertThatThrownBy(() -> mux.sender().openFile("x", 1, 0))
          .isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("cache directory is full");
    }
  }

  @Test
  void closingWithAFileStillOpenCancelsThePeer() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      OutboundFile out = mux.sender().openFile("core-1.img", 10, 0);
      out.write(ByteBuffer.wrap(new byte[4]));
      InboundFile in = (InboundFile) mux.receiver().accept();

      mux.sender().close();

      assertThatThrownBy(() -> readAll(in))
          .isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("peer reported CANCELLED")
          .hasMessageContaining("file \"core-1.img\" (stream 1)");
    }
  }

  @Test
  void closingAFileShortOfItsSizeAbortsTheConnection() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      OutboundFile out = mux.sender().openFile("core-1.img", 10, 0);
      out.write(ByteBuffer.wrap(new byte[4]));
      InboundFile in = (InboundFile) mux.receiver().accept();

      assertThatThrownBy(out::close)
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("file \"core-1.img\" (stream 1) closed after 4 of its 10 bytes");
      assertThatThrownBy(() -> readAll(in))
          .isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("closed after 4 of its 10 bytes");
    }
  }

  @Test
  void writingMoreThanTheAnnouncedSizeIsRejectedBeforeAnythingIsSent() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      OutboundFile out = mux.sender().openFile("core-1.img", 3, 0);

      assertThatThrownBy(() -> out.write(ByteBuffer.wrap(new byte[4])))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("exceeds its announced size of 3 bytes");
      out.write(ByteBuffer.wrap(new byte[3]));
      out.close();
      assertThat(readAll((InboundFile) mux.receiver().accept())).hasSize(3);
    }
  }

  @Test
  void senderRefusesBadAndDuplicateNamesLocally() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      mux.sender().openFile("a.img", 0, 0).close();

      assertThatThrownBy(() -> mux.sender().openFile("../a.img", 0, 0))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("\"../a.img\"");
      assertThatThrownBy(() -> mux.sender().openFile("a.img", 0, 0))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("file already sent in image 0: \"a.img\"");
      assertThatThrownBy(() -> mux.receiver().openFile("b.img", 0, 0))
          .isInstanceOf(IllegalStateException.class);
    }
  }

  @Test
  void closeIsIdempotentStopsTheThreadsAndClosesTheChannels() throws Exception {
    ChannelPair channels = ChannelPair.pipes();
    Muxes.Pair mux = Muxes.connect(channels);
    sendFile(mux.sender(), "x.img", new byte[100]);
    readAll((InboundFile) mux.receiver().accept());

    mux.close();
    mux.close();
    mux.sender().close();

    assertThat(mux.sender().threadsAlive()).isFalse();
    assertThat(mux.receiver().threadsAlive()).isFalse();
    assertThat(mux.sender().failure()).isEmpty();
    assertThat(mux.receiver().failure()).isEmpty();
    assertThat(mux.sender().buffersHeld()).isZero();
    assertThat(mux.receiver().buffersHeld()).isZero();
    assertThat(channels.a.in().isOpen()).isFalse();
    assertThat(channels.b.out().isOpen()).isFalse();
    assertThatThrownBy(() -> mux.sender().openFile("y", 1, 0))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("connection closed");
  }

  @Test
  void acceptReturnsNullAfterTheSendersGoodbye() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      CompletableFuture<Void> closing = CompletableFuture.runAsync(mux.sender()::close);

      assertThat(mux.receiver().accept()).isNull();
      mux.receiver().close();
      closing.get(5, TimeUnit.SECONDS);
      assertThat(mux.sender().failure()).isEmpty();
    }
  }

  @Test
  void statsCountFramesAndBytesPerDirection() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes();
        Muxes.Pair mux = Muxes.connect(channels)) {
      sendFile(mux.sender(), "x.img", new byte[1000]);
      readAll((InboundFile) mux.receiver().accept());
      mux.close(); // the counters are final once both ends terminated

      MuxStats sent = mux.sender().stats();
      MuxStats received = mux.receiver().stats();
      // HELLO, OPEN_FILE, DATA, END_OF_FILE, GOODBYE (and a PING only if the test was slow)
      assertThat(sent.framesSent()).isGreaterThanOrEqualTo(5);
      assertThat(sent.bytesSent())
          .isGreaterThanOrEqualTo(5 * FrameCodec.HEADER_BYTES + 48 + (14 + 5) + 1000 + 4);
      assertThat(sent.dataBytesSent()).isEqualTo(1000);
      assertThat(received.framesReceived()).isEqualTo(sent.framesSent());
      assertThat(received.bytesReceived()).isEqualTo(sent.bytesSent());
      assertThat(received.dataBytesReceived()).isEqualTo(1000);
      // HELLO, ACCEPT, GOODBYE the other way (WINDOW_UPDATEs only above a quarter window)
      assertThat(sent.framesReceived()).isEqualTo(received.framesSent());
      assertThat(sent.bytesReceived()).isEqualTo(received.bytesSent());
      assertThat(received.framesSent()).isGreaterThanOrEqualTo(3);
    }
  }

  @Test
  void receiverExpectingAnotherSessionRejectsTheSender() throws Exception {
    MuxConfig receiverConfig =
        Muxes.receiverConfig().sessionId(new java.util.UUID(9, 9)).build();
    try (ChannelPair channels = ChannelPair.pipes()) {
      assertThatThrownBy(
              () -> Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig))
          .isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("session id mismatch");
    }
  }

  @Test
  void twoSendersRejectEachOther() throws Exception {
    try (ChannelPair channels = ChannelPair.pipes()) {
      CompletableFuture<MuxConnection> other =
          supply(
              () -> MuxConnection.open(channels.b.in(), channels.b.out(),
                  Muxes.senderConfig().build()));

      assertThatThrownBy(
              () ->
                  MuxConnection.open(
                      channels.a.in(), channels.a.out(), Muxes.senderConfig().build()))
          .isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("both sides are SENDERs");
      assertThat(failureOf(other)).isInstanceOf(WireProtocolException.class);
    }
  }

  // ------------------------------------------------------------------ helpers

  private static int random(int i) {
    return 1 + (i * 31) % 40;
  }

  private static long totalBytes(Map<String, byte[]> files) {
    return files.values().stream().mapToLong(b -> b.length).sum();
  }

  static void sendFile(MuxConnection sender, String name, byte[] data) throws Exception {
    try (OutboundFile f = sender.openFile(name, data.length, 0)) {
      f.write(ByteBuffer.wrap(data));
    }
  }

  /** Reads to the end, granting as it goes. */
  static byte[] readAll(java.nio.channels.ReadableByteChannel ch) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    int n;
    while ((n = ch.read(buf.clear())) >= 0) {
      out.write(buf.array(), 0, n);
      if (ch instanceof InboundFile f) {
        f.grant(n);
      } else if (ch instanceof Tunnel t) {
        t.grant(n);
      }
    }
    return out.toByteArray();
  }

  private static CompletableFuture<Void> writeAsync(OutboundFile f, byte[] data) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try {
                Muxes.writeAll(f, data, 256 * 1024);
                f.close();
                done.complete(null);
              } catch (Throwable e) {
                done.completeExceptionally(e);
              }
            },
            "write-" + f.name());
    t.setDaemon(true);
    t.start();
    return done;
  }

  interface Call<T> {
    T call() throws Exception;
  }

  static <T> CompletableFuture<T> supply(Call<T> call) {
    CompletableFuture<T> result = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try {
                result.complete(call.call());
              } catch (Throwable e) {
                result.completeExceptionally(e);
              }
            });
    t.setDaemon(true);
    t.start();
    return result;
  }

  static Throwable failureOf(CompletableFuture<?> f) throws Exception {
    try {
      f.get(10, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      return e.getCause();
    } catch (TimeoutException e) {
      throw new AssertionError("still blocked after 10 s", e);
    }
    throw new AssertionError("completed without failure");
  }
}

package io.criu4j;

import static io.criu4j.TransferFixture.names;
import static io.criu4j.TransferFixture.stage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.criu4j.internal.image.InProcessPageSink;
import io.criu4j.internal.image.PageSink;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.internal.wire.ErrorCode;
import io.criu4j.internal.wire.Frame;
import io.criu4j.internal.wire.FrameCodec;
import io.criu4j.internal.wire.Role;
import io.criu4j.internal.wire.WireProtocolException;
import io.criu4j.spi.Connection;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Bad input in both directions, at the level of {@link ImageCache} and {@link ImageProxy}: a
 * hostile or broken peer ({@link RawWirePeer}), a broken page stream from "CRIU", a failing page
 * server. Each time the side that detects it fails with a message naming the offence, the other
 * side gets an error frame (not a hang), nothing is written outside the cache directory, and
 * everything is released ({@link NoLeaks}, and no directory left in /dev/shm).
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ImageTransferRejectionTest {
  private Set<String> shmBefore;

  @BeforeEach
  void recordShm() throws Exception {
    shmBefore = new HashSet<>(TransferFixture.shmLeftovers());
  }

  @AfterEach
  void nothingLeftInShm() throws Exception {
    // Only what a proxy or cache creates: other processes may use /dev/shm meanwhile.
    List<String> after = TransferFixture.shmLeftovers();
    after.removeAll(shmBefore);
    assertThat(after).as("entries left in /dev/shm").isEmpty();
  }

  /** A cache (in-process page server) whose sender is a raw peer that did the handshake. */
  private record HostileSender(ImageCache cache, RawWirePeer peer) implements AutoCloseable {
    /**
     * Sends a file the cache may reject: it can end the connection as soon as it sees the
     * offending frame, before the file's other frames arrive, so a failed send is not an error
     * here; {@link #rejection} checks what the cache said.
     */
    void sendFile(int stream, String name, byte[] data, Integer crc) {
      try {
        peer.sendFile(stream, name, data, crc);
      } catch (Exception closedEarly) {
        // checked by rejection()
      }
    }

    static HostileSender start() throws Exception {
      return start(b -> b);
    }

    static HostileSender start(java.util.function.UnaryOperator<ImageCache.Builder> config)
        throws Exception {
      Connection[] c = TransferFixture.connections();
      CompletableFuture<ImageCache> cf = TransferFixture.startCache(
          config.apply(TransferFixture.cacheBuilder(c[1])));
      RawWirePeer peer = new RawWirePeer(c[0]).handshakeAsSender();
      return new HostileSender(TransferFixture.get(cf), peer);
    }

    /** The cache's failure, after it rejected what the peer sent. */
    WireProtocolException rejection(ErrorCode code) {
      Throwable t = catchThrowable(() -> cache.awaitComplete(Duration.ofSeconds(20)));
      assertThat(t).isInstanceOf(WireProtocolException.class);
      WireProtocolException e = (WireProtocolException) t;
      assertThat(e.code()).as("code of %s", e.getMessage()).isEqualTo(code);
      RawWirePeer.Received error = peer.expectError();
      assertThat(error.code()).as("code the sender got: %s", error.reason())
          .isEqualTo(code.code());
      return e;
    }

    @Override
    public void close() {
      peer.close();
      cache.close();
    }
  }

  private static byte[] tunnelHeader(int cmd, int nrPages, long vaddr, long dstId) {
    return ByteBuffer.allocate(24).order(ByteOrder.nativeOrder()).putInt(cmd).putInt(nrPages)
        .putLong(vaddr).putLong(dstId).array();
  }

  // ---------------------------------------------------------------------------- cache side

  @ParameterizedTest(name = "[{index}] {1}")
  @CsvSource(delimiter = '|', value = {
      "a/b.img|contains '/'",
      "..|not a file name",
      "/etc/passwd|absolute path",
      "pages\u0000.img|contains NUL",
  })
  void cacheRejectsFileNamesThatAreNotOneComponent(String name, String offence)
      throws Exception {
    Path parent = Path.of("/dev/shm");
    try (HostileSender h = HostileSender.start()) {
      h.sendFile(1, name, new byte[] {1, 2, 3}, null);

      WireProtocolException e = h.rejection(ErrorCode.BAD_NAME);

      assertThat(e).hasMessageContaining(offence);
      assertThat(names(h.cache().directory())).isEmpty();
      assertThat(parent.resolve("a")).doesNotExist();
    }
  }

  @Test
  void cacheRejectsAFileSentTwice() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.sendFile(1, "core-1.img", new byte[10], null);
      h.sendFile(3, "core-1.img", new byte[10], null);

      WireProtocolException e = h.rejection(ErrorCode.DUPLICATE_FILE);

      assertThat(e).hasMessageContaining("core-1.img").hasMessageContaining("twice");
    }
  }

  @Test
  void cacheRejectsAChecksumMismatchAndNeverStoresTheFile() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.sendFile(1, "mm-1.img", new byte[1000], 0x12345678);

      WireProtocolException e = h.rejection(ErrorCode.CHECKSUM_MISMATCH);

      assertThat(e).hasMessageContaining("mm-1.img");
      assertThat(h.cache().directory().resolve("mm-1.img")).doesNotExist();
    }
  }

  @Test
  void cacheRejectsATruncatedFileAndKeepsNoPartOfIt() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.peer().send(new Frame.OpenFile(1, "pstree.img", 100_000, 0600),
          new Frame.Data(1, ByteBuffer.wrap(new byte[5000])));
      Thread.sleep(100);
      h.peer().close(); // the stream ends inside the file

      Throwable t = catchThrowable(() -> h.cache().awaitComplete(Duration.ofSeconds(20)));

      assertThat(t).isInstanceOf(MigrationException.class)
          .hasMessageContaining("without GOODBYE");
      assertThat(names(h.cache().directory())).isEmpty();
    }
  }

  @Test
  void cacheRejectsASenderOfAnotherProtocolVersion() throws Exception {
    Connection[] c = TransferFixture.connections();
    CompletableFuture<ImageCache> cf = TransferFixture.startCache(
        TransferFixture.cacheBuilder(c[1]));
    try (RawWirePeer peer = new RawWirePeer(c[0])) {
      peer.send(RawWirePeer.hello(2, Role.SENDER, RawWirePeer.SESSION));

      Throwable t = catchThrowable(() -> TransferFixture.get(cf));

      assertThat(t).isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("version 2").hasMessageContaining("version 1");
      assertThat(((WireProtocolException) t).code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION);
      assertThat(peer.expectError().code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION.code());
    }
  }

  @Test
  void cacheFailsWhenTheSenderStalls() throws Exception {
    try (HostileSender h = HostileSender.start(b -> b.stallTimeout(Duration.ofSeconds(1)))) {
      h.peer().stopAnsweringPings();
      h.peer().send(new Frame.OpenFile(1, "core-1.img", 100_000, 0600),
          new Frame.Data(1, ByteBuffer.wrap(new byte[5000])));
      long start = System.nanoTime();

      Throwable t = catchThrowable(() -> h.cache().awaitComplete(Duration.ofSeconds(20)));

      assertThat(t).isInstanceOf(TransportException.class).hasMessageContaining("stalled");
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
      assertThat(h.peer().expectError().code()).isEqualTo(ErrorCode.STALLED.code());
      assertThat(names(h.cache().directory())).isEmpty();
    }
  }

  @Test
  void cacheRejectsAnImageWithoutPageTunnel() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.sendFile(1, "inventory.img", new byte[8], null);
      h.peer().send(new Frame.EndOfImage(false, 0, 1, 8));

      assertThat(h.rejection(ErrorCode.PROTOCOL_ERROR)).hasMessageContaining("page tunnel");
    }
  }

  @Test
  void cacheRejectsASecondTunnel() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.peer().send(new Frame.OpenTunnel(1, "pages"), new Frame.OpenTunnel(3, "more-pages"));

      assertThat(h.rejection(ErrorCode.PROTOCOL_ERROR)).hasMessageContaining("second tunnel");
    }
  }

  @Test
  void cacheRejectsATruncatedPageStream() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      byte[] open = tunnelHeader(4, 0, 0, (1L << 8) | 1);
      byte[] add = tunnelHeader((4 << 16) | 6, 16, 0x10000, (1L << 8) | 1);
      h.peer().send(new Frame.OpenTunnel(1, "pages"),
          new Frame.Data(1, ByteBuffer.wrap(open)), new Frame.Data(1, ByteBuffer.wrap(add)),
          new Frame.Data(1, ByteBuffer.wrap(new byte[4096])), new Frame.EndOfStream(1));

      WireProtocolException e = h.rejection(ErrorCode.PROTOCOL_ERROR);

      assertThat(e).hasMessageContaining("page stream");
    }
  }

  @Test
  void cacheRejectsAGarbledPageStream() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.peer().send(new Frame.OpenTunnel(1, "pages"),
          new Frame.Data(1, ByteBuffer.wrap(tunnelHeader(0x99, 0, 0, 0))));

      assertThat(h.rejection(ErrorCode.PROTOCOL_ERROR)).hasMessageContaining("bad page stream");
    }
  }

  @Test
  void cacheRejectsASecondImage() throws Exception {
    try (HostileSender h = HostileSender.start()) {
      h.peer().send(new Frame.OpenTunnel(1, "pages"));
      h.peer().send(new Frame.Data(1, ByteBuffer.wrap(tunnelHeader(4, 0, 0, (1L << 8) | 1))),
          new Frame.Data(1, ByteBuffer.wrap(tunnelHeader(0x1023, 0, 0, 0))),
          new Frame.EndOfStream(1));
      h.peer().send(new Frame.EndOfImage(false, 0, 0, 0));
      h.cache().awaitComplete(Duration.ofSeconds(10));
      h.sendFile(3, "core-1.img", new byte[4], null);

      RawWirePeer.Received error = h.peer().expectError();
      assertThat(error.code()).isEqualTo(ErrorCode.PROTOCOL_ERROR.code());
      assertThat(error.reason()).contains("one image").contains("core-1.img");
      assertThat(h.cache().directory().resolve("core-1.img")).doesNotExist();
    }
  }

  @Test
  void cacheRefusesANonEmptyDirectoryAndClosesTheConnection() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("/dev/shm"), "criu4j-cache-full-");
    try {
      Files.write(dir.resolve("old.img"), new byte[1]);
      Connection[] c = TransferFixture.connections();
      try (RawWirePeer peer = new RawWirePeer(c[0])) {
        assertThatThrownBy(() -> TransferFixture.cacheBuilder(c[1]).directory(dir).start())
            .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(dir.toString());
        assertThat(c[1].isOpen()).isFalse();
        assertThat(dir.resolve("old.img")).exists();
      }
    } finally {
      TransferFixture.deleteQuietly(dir);
    }
  }

  @Test
  void nameCollidingWithAPageServerImageIsRejectedAndTheProxyHearsOfIt() throws Exception {
    PageSink.Factory writesPages = (images, work) -> {
      try {
        Files.write(images.resolve("pages-1.img"), new byte[4096]);
      } catch (java.io.IOException e) {
        throw new MigrationException("test sink", e);
      }
      return new InProcessPageSink(24, 4096);
    };
    Connection[] c = TransferFixture.connections();
    CompletableFuture<ImageCache> cf = TransferFixture.startCache(
        TransferFixture.cacheBuilder(c[1], writesPages));
    try (ImageProxy proxy = TransferFixture.proxyBuilder(c[0]).start();
        ImageCache cache = TransferFixture.get(cf)) {
      TransferFixture.sendPages(proxy, 1);
      stage(proxy.stagingDir(), "pages-1.img", new byte[100]);

      Throwable t = catchThrowable(proxy::finish);

      assertThat(t).isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("DUPLICATE_FILE").hasMessageContaining("pages-1.img");
      assertThat(((WireProtocolException) t).remote()).isTrue();
      assertThat(Files.readAllBytes(cache.directory().resolve("pages-1.img")))
          .as("the page server's file is untouched").hasSize(4096);
    }
  }

  @Test
  void failingPageServerFailsTheTransferOnBothSides() throws Exception {
    PageSink.Factory failing = (images, work) -> {
      InProcessPageSink real = new InProcessPageSink(24, 4096);
      return new PageSink() { // answers like a page server, then exits with status 1
        @Override
        public int read(ByteBuffer dst) throws java.io.IOException {
          return real.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws java.io.IOException {
          return real.write(src);
        }

        @Override
        public void shutdownOutput() {
          real.shutdownOutput();
        }

        @Override
        public int awaitExit(Duration timeout) throws MigrationException {
          real.awaitExit(timeout);
          return InProcessPageSink.FAILED_STATUS;
        }

        @Override
        public boolean isOpen() {
          return real.isOpen();
        }

        @Override
        public void close() {
          real.close();
        }
      };
    };
    Connection[] c = TransferFixture.connections();
    CompletableFuture<ImageCache> cf = TransferFixture.startCache(
        TransferFixture.cacheBuilder(c[1], failing));
    try (ImageProxy proxy = TransferFixture.proxyBuilder(c[0]).start();
        ImageCache cache = TransferFixture.get(cf)) {
      // "CRIU" may or may not get the CLOSE answer before the failure ends its socket.
      CompletableFuture<Long> criu = TransferFixture.sendPagesAsync(proxy, 10);

      Throwable t = catchThrowable(proxy::finish);

      criu.handle((r, e) -> null).get();
      assertThat(t).isInstanceOf(WireProtocolException.class)
          .hasMessageContaining("page server failed");
      assertThatThrownBy(() -> cache.awaitComplete(Duration.ofSeconds(5)))
          .hasMessageContaining("page server failed");
    }
  }

  // ---------------------------------------------------------------------------- proxy side

  @Test
  void proxyRejectsAReceiverOfAnotherProtocolVersion() throws Exception {
    Connection[] c = TransferFixture.connections();
    try (RawWirePeer peer = new RawWirePeer(c[1])) {
      peer.send(RawWirePeer.hello(7, Role.RECEIVER, new java.util.UUID(0, 0)));

      Throwable t = catchThrowable(() -> TransferFixture.proxyBuilder(c[0]).start());

      assertThat(t).isInstanceOf(WireProtocolException.class).hasMessageContaining("version 7");
      assertThat(peer.expectError().code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION.code());
    }
  }

  @Test
  void proxyReportsTheReceiversError() throws Exception {
    Connection[] c = TransferFixture.connections();
    try (RawWirePeer peer = new RawWirePeer(c[1])) {
      CompletableFuture<ImageProxy> pf = CompletableFuture.supplyAsync(() -> {
        try {
          return TransferFixture.proxyBuilder(c[0]).start();
        } catch (MigrationException e) {
          throw new RuntimeException(e);
        }
      });
      peer.handshakeAsReceiver(1 << 20, 1 << 24);
      try (ImageProxy proxy = TransferFixture.get(pf)) {
        peer.send(new Frame.ErrorFrame(0, ErrorCode.CHECKSUM_MISMATCH.code(),
            "checksum mismatch for file \"core-1.img\""));

        Throwable t = catchThrowable(proxy::finish);

        assertThat(t).isInstanceOf(WireProtocolException.class)
            .hasMessageContaining("CHECKSUM_MISMATCH").hasMessageContaining("core-1.img");
      }
    }
  }

  @Test
  void proxyFailsWhenTheReceiverStallsInsteadOfHanging() throws Exception {
    Connection[] c = TransferFixture.connections();
    try (RawWirePeer peer = new RawWirePeer(c[1])) {
      CompletableFuture<ImageProxy> pf = CompletableFuture.supplyAsync(() -> {
        try {
          return TransferFixture.proxyBuilder(c[0]).stallTimeout(Duration.ofSeconds(1)).start();
        } catch (MigrationException e) {
          throw new RuntimeException(e);
        }
      });
      peer.handshakeAsReceiver(64 * 1024, 1 << 20);
      try (ImageProxy proxy = TransferFixture.get(pf)) {
        peer.stopAnsweringPings(); // and it never grants credit
        stage(proxy.stagingDir(), "big.img", new byte[1 << 20]);
        CompletableFuture<Long> criu = TransferFixture.sendPagesAsync(proxy, 1);
        long start = System.nanoTime();

        Throwable t = catchThrowable(proxy::finish);

        assertThat(t).isInstanceOf(MigrationException.class).hasMessageContaining("stalled");
        assertThat(Duration.ofNanos(System.nanoTime() - start))
            .isLessThan(Duration.ofSeconds(10));
        assertThat(peer.expectError().code()).isEqualTo(ErrorCode.STALLED.code());
        criu.handle((r, e) -> null);
      }
    }
  }

  @Test
  void proxyRejectsABrokenPageStreamFromCriuAndTellsTheCache() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      int fd = p.proxy().configure(CriuOptions.DEFAULTS).pageServer().fd();
      try (UnixSocket criu = UnixSocket.adopt(Fd.duplicate(fd, 3).release())) {
        criu.write(ByteBuffer.allocateDirect(24).order(ByteOrder.nativeOrder())
            .putInt(0x77).putInt(0).putLong(0).putLong(0).flip());

        Throwable t = catchThrowable(p.proxy()::finish);

        assertThat(t).isInstanceOf(ProtocolException.class).hasMessageContaining("0x77");
        assertThatThrownBy(() -> p.cache().awaitComplete(Duration.ofSeconds(5)))
            .isInstanceOf(WireProtocolException.class).hasMessageContaining("page stream");
      }
    }
  }

  @Test
  void proxyRefusesToShipAStagedFileWithABadName() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      stage(p.proxy().stagingDir(), "bad\nname.img", new byte[10]);
      CompletableFuture<Long> criu = TransferFixture.sendPagesAsync(p.proxy(), 1);

      Throwable t = catchThrowable(p.proxy()::finish);

      // "CRIU" is not left waiting for a page-server answer: its socket ended.
      assertThatThrownBy(() -> TransferFixture.get(criu)).isInstanceOf(java.io.IOException.class);

      assertThat(t).isInstanceOf(MigrationException.class).hasMessageContaining("bad name");
      assertThatThrownBy(() -> p.cache().awaitComplete(Duration.ofSeconds(5)))
          .hasMessageContaining("INTERNAL").hasMessageContaining("bad name");
      assertThat(names(p.cache().directory())).isEmpty();
    }
  }

  @Test
  void finishWithoutAPageStreamTimesOutAndNamesTheLikelyCause() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start(
        b -> b.finishTimeout(Duration.ofMillis(300)), b -> b)) {
      Throwable t = catchThrowable(p.proxy()::finish);

      assertThat(t).isInstanceOf(TransportException.class)
          .hasMessageContaining("configure(options)");
      assertThatThrownBy(() -> p.cache().awaitComplete(Duration.ofSeconds(5)))
          .hasMessageContaining("CANCELLED");
    }
  }

  @Test
  void closingTheProxyMidTransferCancelsAtTheCache() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      stage(p.proxy().stagingDir(), "core-1.img", new byte[100]);
      p.proxy().close();

      Throwable t = catchThrowable(() -> p.cache().awaitComplete(Duration.ofSeconds(10)));

      assertThat(t).isInstanceOf(MigrationException.class);
      assertThat(p.proxy().stagingDir()).doesNotExist();
    }
  }

  @Test
  void closingTheCacheMidTransferFailsTheProxy() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      CompletableFuture<Long> criu = TransferFixture.sendPagesAsync(p.proxy(), 100);
      TransferFixture.get(criu);
      p.cache().close();

      assertThatThrownBy(p.proxy()::finish).isInstanceOf(MigrationException.class);
      assertThat(p.cache().directory()).doesNotExist();
    }
  }
}

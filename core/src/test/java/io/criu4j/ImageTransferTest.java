package io.criu4j;

import static io.criu4j.TransferFixture.names;
import static io.criu4j.TransferFixture.sendPagesAsync;
import static io.criu4j.TransferFixture.stage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.internal.image.CacheHooks;
import io.criu4j.internal.image.InProcessPageSink;
import io.criu4j.internal.image.PageSink;
import io.criu4j.internal.image.SocketChannels;
import io.criu4j.internal.image.SyntheticPageClient;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.spi.Connection;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link ImageProxy} to {@link ImageCache} over the in-memory transport, with a fake CRIU on the
 * proxy's page socket and an in-process page server behind the cache: what arrives, when, the
 * counters, the memory bound, and that everything is released.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ImageTransferTest {
  private final Random random = new Random(42);
  private Set<String> shmBefore;

  @BeforeEach
  void recordShm() throws Exception {
    shmBefore = new HashSet<>(TransferFixture.shmLeftovers());
  }

  @AfterEach
  void nothingLeftInShm() throws Exception {
    List<String> after = TransferFixture.shmLeftovers();
    after.removeAll(shmBefore);
    assertThat(after).as("directories left in /dev/shm").isEmpty();
  }

  private byte[] bytes(int n) {
    byte[] b = new byte[n];
    random.nextBytes(b);
    return b;
  }

  @Test
  void transfersFilesAndPagesAndBothSidesAgreeOnTheTotals() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      Map<String, byte[]> files = new LinkedHashMap<>();
      files.put("empty.img", new byte[0]);
      files.put("big.img", bytes(3 << 20));
      for (int i = 0; i < 40; i++) {
        files.put("core-" + i + ".img", bytes(random.nextInt(100_000)));
      }
      CompletableFuture<Long> criu = sendPagesAsync(p.proxy(), 2000);
      for (Map.Entry<String, byte[]> e : files.entrySet()) {
        stage(p.proxy().stagingDir(), e.getKey(), e.getValue());
      }
      TransferFixture.get(criu);

      TransferReport sent = p.proxy().finish();
      TransferReport received = p.cache().awaitComplete(Duration.ofSeconds(10));

      long total = files.values().stream().mapToLong(b -> b.length).sum();
      assertThat(sent.files()).isEqualTo(files.size());
      assertThat(sent.fileBytes()).isEqualTo(total);
      assertThat(sent.pages()).isEqualTo(2000);
      assertThat(sent.pageBytes()).isEqualTo(2000L * 4096);
      assertThat(received.files()).isEqualTo(sent.files());
      assertThat(received.fileBytes()).isEqualTo(sent.fileBytes());
      assertThat(received.pages()).isEqualTo(sent.pages());
      assertThat(sent.bytesPerSecond()).isPositive();
      assertThat(names(p.proxy().stagingDir())).as("staging emptied as files are sent").isEmpty();
      assertThat(names(p.cache().directory())).containsExactlyInAnyOrderElementsOf(
          files.keySet());
      for (Map.Entry<String, byte[]> e : files.entrySet()) {
        assertThat(Files.readAllBytes(p.cache().directory().resolve(e.getKey())))
            .as(e.getKey()).isEqualTo(e.getValue());
      }
      assertThat(p.cache().peakHeldBytes()).isLessThanOrEqualTo(256L << 20);
    }
  }

  @Test
  void shipsEachFileAsSoonAsCriuClosesIt() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      stage(p.proxy().stagingDir(), "early.img", bytes(10_000));
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (p.cache().progress().files() < 1 && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertThat(p.cache().progress().files()).as("stored before finish()").isEqualTo(1);
      assertThat(p.proxy().progress().files()).isEqualTo(1);
      assertThat(p.proxy().progress().fileBytes()).isEqualTo(10_000);
      assertThat(names(p.proxy().stagingDir())).isEmpty();

      TransferFixture.sendPages(p.proxy(), 10);
      p.proxy().finish();
      assertThat(p.cache().awaitComplete(Duration.ofSeconds(10)).files()).isEqualTo(1);
    }
  }

  @Test
  void holdsNoMoreThanTheMemoryLimitAndStreamsLargerFiles() throws Exception {
    long limit = 256 * 1024;
    try (TransferFixture.Pair p = TransferFixture.Pair.start(b -> b.senderThreads(8),
        b -> b.memoryLimit(limit))) {
      Map<String, byte[]> files = new LinkedHashMap<>();
      for (int i = 0; i < 30; i++) {
        files.put("f-" + i, bytes(100_000));
      }
      files.put("larger-than-limit", bytes(1 << 20));
      CompletableFuture<Long> criu = sendPagesAsync(p.proxy(), 300);
      for (Map.Entry<String, byte[]> e : files.entrySet()) {
        stage(p.proxy().stagingDir(), e.getKey(), e.getValue());
      }
      TransferFixture.get(criu);
      p.proxy().finish();
      TransferReport r = p.cache().awaitComplete(Duration.ofSeconds(10));

      assertThat(r.files()).isEqualTo(files.size());
      assertThat(p.cache().peakHeldBytes()).isPositive().isLessThanOrEqualTo(limit);
      assertThat(names(p.cache().directory())).containsExactlyInAnyOrderElementsOf(
          files.keySet());
      assertThat(Files.readAllBytes(p.cache().directory().resolve("larger-than-limit")))
          .isEqualTo(files.get("larger-than-limit"));
    }
  }

  @Test
  void closeRemovesTheCacheDirectoryAndTheStagingDirectory() throws Exception {
    Path cacheDir;
    Path staging;
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      stage(p.proxy().stagingDir(), "inventory.img", bytes(100));
      TransferFixture.sendPages(p.proxy(), 1);
      p.proxy().finish();
      p.cache().awaitComplete(Duration.ofSeconds(10));
      cacheDir = p.cache().directory();
      staging = p.proxy().stagingDir();
      assertThat(cacheDir.resolve("inventory.img")).exists();
    }
    assertThat(cacheDir).doesNotExist();
    assertThat(staging.getParent()).doesNotExist();
  }

  @Test
  void configureHandsCriuTheSocketAndAWorkDirOutsideStaging() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      CriuOptions o = p.proxy().configure(CriuOptions.builder().pid(42).build());
      assertThat(o.pid()).isEqualTo(42);
      assertThat(o.pageServer().hasFd()).isTrue();
      assertThat(o.workDir()).isNotNull().exists();
      assertThat(o.workDir().startsWith(p.proxy().stagingDir())).isFalse();
      assertThat(p.proxy().stagingDir().startsWith(Path.of("/dev/shm"))).isTrue();
      TransferFixture.sendPages(p.proxy(), 1);
      p.proxy().finish();
    }
  }

  @Test
  void progressCountsPagesWhileTheyFlow() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      TransferFixture.sendPages(p.proxy(), 500);
      assertThat(p.proxy().progress().pages()).isEqualTo(500);
      p.proxy().finish();
      assertThat(p.cache().awaitComplete(Duration.ofSeconds(10)).pageBytes())
          .isEqualTo(500L * 4096);
    }
  }

  @Test
  void finishTwiceIsMisuseAndCloseIsIdempotent() throws Exception {
    TransferFixture.Pair p = TransferFixture.Pair.start();
    try {
      TransferFixture.sendPages(p.proxy(), 1);
      p.proxy().finish();
      assertThatThrownBy(() -> p.proxy().finish()).isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("already");
    } finally {
      p.close();
      p.close();
      p.proxy().close();
      p.cache().close();
    }
    assertThatThrownBy(() -> p.proxy().finish()).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void cacheUsesAGivenEmptyDirectoryAndRemovesIt() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("/dev/shm"), "criu4j-cache-given-");
    try {
      Connection[] c = TransferFixture.connections();
      CompletableFuture<ImageCache> cf = TransferFixture.startCache(
          TransferFixture.cacheBuilder(c[1]).directory(dir));
      try (ImageProxy proxy = TransferFixture.proxyBuilder(c[0]).start();
          ImageCache cache = TransferFixture.get(cf)) {
        assertThat(cache.directory()).isEqualTo(dir);
        stage(proxy.stagingDir(), "a", bytes(5));
        TransferFixture.sendPages(proxy, 1);
        proxy.finish();
        cache.awaitComplete(Duration.ofSeconds(10));
        assertThat(dir.resolve("a")).exists();
      }
      assertThat(dir).doesNotExist();
    } finally {
      TransferFixture.deleteQuietly(dir);
    }
  }

  /**
   * Over a plain TCP or Unix connection the proxy splices page data from CRIU's socket into the
   * connection; what arrives at the page server is byte for byte what CRIU sent.
   */
  @ParameterizedTest(name = "unix={0}")
  @ValueSource(booleans = {false, true})
  void pageDataSplicedIntoASocketConnectionArrivesByteForByte(boolean unix, @TempDir Path dir)
      throws Exception {
    CRC32 atSink = new CRC32();
    AtomicLong sinkBytes = new AtomicLong();
    PageSink.Factory sinks = (images, work) -> new CheckingSink(atSink, sinkBytes);
    Connection[] c = TransferFixture.socketConnections(unix, dir);
    try (TransferFixture.Pair p = TransferFixture.Pair.start(c, b -> b,
        b -> CacheHooks.pageSink(b, sinks))) {
      CRC32 fromCriu = new CRC32();
      long streamBytes = sendCheckedPages(p.proxy(), 3000, 100, fromCriu);
      stage(p.proxy().stagingDir(), "core-1.img", bytes(70_000));

      TransferReport sent = p.proxy().finish();
      TransferReport received = p.cache().awaitComplete(Duration.ofSeconds(10));

      assertThat(p.proxy().splicesPages()).as("page data spliced").isTrue();
      assertThat(sent.pages()).isEqualTo(3000);
      assertThat(received.pages()).isEqualTo(3000);
      assertThat(received.files()).isEqualTo(1);
      assertThat(sinkBytes.get()).isEqualTo(streamBytes);
      assertThat(atSink.getValue()).as("CRC32 of the stream at the page server")
          .isEqualTo(fromCriu.getValue());
    }
  }

  @Test
  void overAnInMemoryConnectionPageDataIsCopiedNotSpliced() throws Exception {
    try (TransferFixture.Pair p = TransferFixture.Pair.start()) {
      TransferFixture.get(sendPagesAsync(p.proxy(), 500));

      TransferReport sent = p.proxy().finish();

      assertThat(p.proxy().splicesPages()).isFalse();
      assertThat(sent.pages()).isEqualTo(500);
      assertThat(p.cache().awaitComplete(Duration.ofSeconds(10)).pages()).isEqualTo(500);
    }
  }

  /** Plays CRIU with random page data, adding every byte it writes to {@code crc}. */
  private static long sendCheckedPages(ImageProxy proxy, long pages, int perRequest, CRC32 crc)
      throws Exception {
    int fd = proxy.configure(CriuOptions.DEFAULTS).pageServer().fd();
    try (UnixSocket criu = UnixSocket.adopt(Fd.duplicate(fd, 3).release())) {
      SocketChannels channel = SocketChannels.of(criu);
      ByteChannel checked = new ByteChannel() {
        @Override
        public int write(ByteBuffer src) throws java.io.IOException {
          crc.update(src.duplicate());
          return channel.write(src);
        }

        @Override
        public int read(ByteBuffer dst) throws java.io.IOException {
          return channel.read(dst);
        }

        @Override
        public boolean isOpen() {
          return true;
        }

        @Override
        public void close() {}
      };
      new SyntheticPageClient(TransferFixture.HEADER, TransferFixture.PAGE)
          .run(checked, 1, pages, perRequest);
      return new SyntheticPageClient(TransferFixture.HEADER, TransferFixture.PAGE)
          .streamBytes(pages, perRequest);
    }
  }

  /** A page server that also checksums every byte it gets. */
  private static final class CheckingSink implements PageSink {
    private final InProcessPageSink delegate =
        new InProcessPageSink(TransferFixture.HEADER, TransferFixture.PAGE);
    private final CRC32 crc;
    private final AtomicLong bytes;

    CheckingSink(CRC32 crc, AtomicLong bytes) {
      this.crc = crc;
      this.bytes = bytes;
    }

    @Override
    public int write(ByteBuffer src) throws java.io.IOException {
      synchronized (crc) {
        crc.update(src.duplicate());
      }
      bytes.addAndGet(src.remaining());
      return delegate.write(src);
    }

    @Override
    public int read(ByteBuffer dst) throws java.io.IOException {
      return delegate.read(dst);
    }

    @Override
    public void shutdownOutput() {
      delegate.shutdownOutput();
    }

    @Override
    public int awaitExit(Duration timeout) throws MigrationException {
      return delegate.awaitExit(timeout);
    }

    @Override
    public boolean isOpen() {
      return delegate.isOpen();
    }

    @Override
    public void close() {
      delegate.close();
    }
  }

  @Test
  void inProcessPageSinkAnswersLikeAPageServer() throws Exception {
    InProcessPageSink sink = new InProcessPageSink(24, 4096);
    try (sink) {
      java.nio.ByteBuffer reply = java.nio.ByteBuffer.allocate(16);
      // OPEN2 then CLOSE, 24-byte headers in host order
      java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(48)
          .order(java.nio.ByteOrder.nativeOrder());
      h.putInt(4).putInt(0).putLong(0).putLong((1L << 8) | 1);
      h.putInt(0x1023).putInt(0).putLong(0).putLong(0).flip();
      sink.write(h);
      while (reply.position() < 5) {
        sink.read(reply);
      }
      sink.shutdownOutput();
      assertThat(sink.awaitExit(Duration.ofSeconds(1))).isZero();
      assertThat(sink.read(reply)).isEqualTo(-1);
    }
  }
}

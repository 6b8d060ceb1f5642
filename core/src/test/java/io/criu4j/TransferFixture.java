package io.criu4j;

import io.criu4j.internal.image.CacheHooks;
import io.criu4j.internal.image.InProcessPageSink;
import io.criu4j.internal.image.PageSink;
import io.criu4j.internal.image.SocketChannels;
import io.criu4j.internal.image.SyntheticPageClient;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.FileTree;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.internal.transport.NioConnection;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.PeerIdentity;
import io.criu4j.spi.Transports;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Test fixtures for {@link ImageProxy} and {@link ImageCache} without CRIU: connected in-memory
 * transport connections, caches whose page server is an {@link InProcessPageSink}, and a fake
 * CRIU dump client that writes a synthetic page-server stream into the proxy's {@code ps.fd}.
 */
final class TransferFixture {
  static final Duration STALL = Duration.ofSeconds(5);
  static final int HEADER = 24;
  static final int PAGE = 4096;
  private static final AtomicLong NAMES = new AtomicLong();

  private TransferFixture() {}

  /** Two connected in-memory connections: [0] for the proxy, [1] for the cache. */
  static Connection[] connections() throws IOException {
    URI uri = URI.create("mem://image-transfer-" + NAMES.incrementAndGet());
    try (Listener listener = Transports.inMemory().listen(uri)) {
      Connection client = Transports.inMemory().connect(uri);
      Connection server = listener.accept(Duration.ofSeconds(5));
      return new Connection[] {client, server};
    }
  }

  /**
   * Two connected socket connections, as the TCP and Unix transports make them (over loopback
   * TCP, or a Unix socket in {@code dir}): [0] for the proxy, [1] for the cache.
   */
  static Connection[] socketConnections(boolean unix, Path dir) throws IOException {
    java.nio.channels.ServerSocketChannel server = unix
        ? java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)
        : java.nio.channels.ServerSocketChannel.open();
    try (server) {
      server.bind(unix ? java.net.UnixDomainSocketAddress.of(dir.resolve("cache.sock"))
          : new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0));
      java.nio.channels.SocketChannel client =
          java.nio.channels.SocketChannel.open(server.getLocalAddress());
      java.nio.channels.SocketChannel accepted = server.accept();
      return new Connection[] {
          NioConnection.of(client, "proxy side", PeerIdentity.of("test:cache")),
          NioConnection.of(accepted, "cache side", PeerIdentity.of("test:proxy"))};
    }
  }

  static ImageCache.Builder cacheBuilder(Connection c) {
    return cacheBuilder(c, InProcessPageSink.factory(HEADER, PAGE));
  }

  static ImageCache.Builder cacheBuilder(Connection c, PageSink.Factory sinks) {
    return CacheHooks.pageSink(ImageCache.builder(c).stallTimeout(STALL), sinks);
  }

  static ImageProxy.Builder proxyBuilder(Connection c) {
    return ImageProxy.builder(c).criuVersion(CriuVersion.of(4, 1, 1)).stallTimeout(STALL)
        .finishTimeout(Duration.ofSeconds(10));
  }

  /** Starts a cache in the background (its start() waits for the proxy's handshake). */
  static CompletableFuture<ImageCache> startCache(ImageCache.Builder b) {
    CompletableFuture<ImageCache> f = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        f.complete(b.start());
      } catch (Throwable e) {
        f.completeExceptionally(e);
      }
    }, "start-cache");
    t.setDaemon(true);
    t.start();
    return f;
  }

  static <T> T get(CompletableFuture<T> f) throws Exception {
    try {
      return f.get(20, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception x) {
        throw x;
      }
      throw e;
    }
  }

  /** A proxy and a cache connected in memory. Closing closes both. */
  record Pair(ImageProxy proxy, ImageCache cache) implements AutoCloseable {
    static Pair start() throws Exception {
      return start(b -> b, b -> b);
    }

    static Pair start(java.util.function.UnaryOperator<ImageProxy.Builder> proxy,
        java.util.function.UnaryOperator<ImageCache.Builder> cache) throws Exception {
      return start(connections(), proxy, cache);
    }

    static Pair start(Connection[] c, java.util.function.UnaryOperator<ImageProxy.Builder> proxy,
        java.util.function.UnaryOperator<ImageCache.Builder> cache) throws Exception {
      CompletableFuture<ImageCache> cf = startCache(cache.apply(cacheBuilder(c[1])));
      ImageProxy p;
      try {
        p = proxy.apply(proxyBuilder(c[0])).start();
      } catch (Exception e) {
        try {
          get(cf).close();
        } catch (Exception ignored) {
          // the cache failed too
        }
        throw e;
      }
      return new Pair(p, get(cf));
    }

    @Override
    public void close() {
      Thread t = new Thread(cache::close, "close-cache");
      t.start();
      proxy.close();
      try {
        t.join(30_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Plays CRIU's dump on the proxy's page socket: a copy of {@code ps.fd}, as CRIU gets, used
   * for one synthetic page-server session and then closed.
   */
  static long sendPages(ImageProxy proxy, long pages) throws IOException {
    int fd = proxy.configure(CriuOptions.DEFAULTS).pageServer().fd();
    try (UnixSocket criu = UnixSocket.adopt(Fd.duplicate(fd, 3).release())) {
      return new SyntheticPageClient(HEADER, PAGE).run(SocketChannels.of(criu), 1, pages, 64);
    }
  }

  /** Plays CRIU in the background; the future completes when the session ended. */
  static CompletableFuture<Long> sendPagesAsync(ImageProxy proxy, long pages) {
    CompletableFuture<Long> f = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        f.complete(sendPages(proxy, pages));
      } catch (Throwable e) {
        f.completeExceptionally(e);
      }
    }, "fake-criu-pages");
    t.setDaemon(true);
    t.start();
    return f;
  }

  /** Writes a file as CRIU does: create, write, close. */
  static void stage(Path dir, String name, byte[] data) throws IOException {
    Files.write(dir.resolve(name), data);
  }

  static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      List<String> names = new ArrayList<>();
      s.forEach(p -> names.add(p.getFileName().toString()));
      names.sort(null);
      return names;
    }
  }

  /** Entries under /dev/shm whose names start with criu4j-proxy- / criu4j-cache-. */
  static List<String> shmLeftovers() throws IOException {
    List<String> out = new ArrayList<>();
    for (String n : names(Path.of("/dev/shm"))) {
      if (n.startsWith("criu4j-proxy-") || n.startsWith("criu4j-cache-")
          || n.startsWith(".criu4j-cache-work-")) {
        out.add(n);
      }
    }
    return out;
  }

  static void deleteQuietly(Path dir) {
    if (Files.exists(dir)) {
      FileTree.delete(dir);
    }
  }
}

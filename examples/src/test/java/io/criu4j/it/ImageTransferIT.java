package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.ImageCache;
import io.criu4j.ImageProxy;
import io.criu4j.Notifier;
import io.criu4j.RestoreResult;
import io.criu4j.TransferReport;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import io.criu4j.transport.tcp.TcpTransport;
import io.criu4j.transport.unix.UnixTransport;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A real process dumped over RPC through {@link ImageProxy}, a real transport and
 * {@link ImageCache}, and restored from the cache directory: it keeps counting from where it was
 * dumped. Pages travel as CRIU's page-server stream into a destination page server; the other
 * images are shipped from the staging directory as CRIU closes them. The cache ends up with the
 * same image files, of the same sizes, as a plain local dump.
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ImageTransferIT {
  private static final int MEM_MIB = 64;
  private static final Duration PROGRESS = Duration.ofSeconds(10);

  private final List<AutoCloseable> cleanup = new ArrayList<>();

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  private <T extends AutoCloseable> T closeLater(T resource) {
    cleanup.add(resource);
    return resource;
  }

  private Payload startPayload() {
    Payload payload = closeLater(Payload.builder().memMib(MEM_MIB).threads(2).children(1)
        .intervalMillis(10).start());
    payload.awaitCounterAbove(payload.counter() + 2, PROGRESS);
    return payload;
  }

  /** Source and destination ends of one connection of {@code transport}. */
  private Connection[] connect(Transport transport, URI address) throws Exception {
    try (Listener listener = transport.listen(address)) {
      Connection source = closeLater(transport.connect(listener.address()));
      Connection destination = closeLater(listener.accept(Duration.ofSeconds(10)));
      return new Connection[] {source, destination};
    }
  }

  /** What one migration through proxy and cache produced. */
  private record Migrated(TransferReport sent, TransferReport received, Map<String, Long> files,
      long atDump) {}

  private Migrated migrate(Criu criu, Transport transport, URI address, TestReporter reporter)
      throws Exception {
    return migrate(criu, startPayload(), transport, address, reporter);
  }

  private Migrated migrate(Criu criu, Payload payload, Transport transport, URI address,
      TestReporter reporter) throws Exception {
    Connection[] c = connect(transport, address);
    CompletableFuture<ImageCache> starting = CompletableFuture.supplyAsync(() -> {
      try {
        return ImageCache.builder(c[1]).criu(criu).start();
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
    ImageProxy proxy = closeLater(ImageProxy.builder(c[0]).criuVersion(criu.version()).start());
    ImageCache cache = closeLater(get(starting));

    AtomicReference<TransferReport> sent = new AtomicReference<>();
    long start = System.nanoTime();
    criu.dump(proxy.stagingDir(), proxy.configure(CriuOptions.builder().pid(payload.pid())
        .build()), new Notifier() {
          @Override
          public void postDump() throws Exception {
            sent.set(proxy.finish()); // the destination holds the complete set now
          }
        });
    long dumpMillis = (System.nanoTime() - start) / 1_000_000;
    long atDump = payload.counter();
    assertThat(payload.isAlive()).isFalse();
    TransferReport received = cache.awaitComplete(Duration.ofSeconds(10));
    reporter.publishEntry(transport.scheme() + " transfer", "dump " + dumpMillis + " ms; sent "
        + sent.get() + "; received " + received);

    assertThat(sent.get().files()).isEqualTo(received.files()).isPositive();
    assertThat(sent.get().fileBytes()).isEqualTo(received.fileBytes());
    assertThat(sent.get().pages()).isEqualTo(received.pages())
        .isGreaterThan((long) MEM_MIB * 256);
    assertThat(names(proxy.stagingDir())).as("staging after finish").isEmpty();
    Map<String, Long> files = sizes(cache.directory());

    RestoreResult restore = criu.restore(cache.directory(), CriuOptions.builder()
        .workDir(closeLater(TmpfsDir.create("criu4j-it-restore-work-")).path()).build());
    payload.registerRestored(restore.pid());
    assertThat(Payload.isRunning(restore.pid())).isTrue();
    long after = payload.awaitCounterAbove(atDump + 20, PROGRESS);
    assertThat(after).isGreaterThan(atDump);
    assertThat(Payload.isRunning(restore.pid())).isTrue();
    return new Migrated(sent.get(), received, files, atDump);
  }

  @Test
  void payloadDumpedThroughProxyOverTcpRestoresFromTheCacheAndKeepsCounting(Criu criu,
      TestReporter reporter) throws Exception {
    migrate(criu, TcpTransport.create(), URI.create("tcp://127.0.0.1:0"), reporter);
  }

  @Test
  void payloadDumpedThroughProxyOverUnixRestoresFromTheCacheAndKeepsCounting(Criu criu,
      TestReporter reporter) throws Exception {
    Path socketDir = closeLater(TmpfsDir.create("criu4j-it-sock-")).path();
    migrate(criu, UnixTransport.create(),
        URI.create("unix://" + socketDir.resolve("transfer.sock")), reporter);
  }

  @Test
  void cacheHoldsTheSameImageFilesAsALocalDump(Criu criu, TestReporter reporter)
      throws Exception {
    // The same process, dumped locally (left running) right before it is migrated.
    Payload payload = startPayload();
    Path localDir = closeLater(TmpfsDir.create("criu4j-it-local-")).path();
    Path localWork = closeLater(TmpfsDir.create("criu4j-it-local-work-")).path();
    criu.dump(localDir, CriuOptions.builder().pid(payload.pid()).leaveRunning(true)
        .workDir(localWork).build());
    Map<String, Long> expected = sizes(localDir);

    Migrated m = migrate(criu, payload, TcpTransport.create(), URI.create("tcp://127.0.0.1:0"),
        reporter);

    reporter.publishEntry("local dump", expected.toString());
    reporter.publishEntry("cache", m.files().toString());
    // The destination page server numbers its pages files from its own counter (CRIU 4.1.1:
    // pages-65537.img where a local dump writes pages-1.img; pagemap-N.img points at them), so
    // pages files are compared by count and total size, every other file by name and size.
    assertThat(withoutPages(m.files()).keySet()).isEqualTo(withoutPages(expected).keySet());
    assertThat(pagesFiles(m.files())).hasSameSizeAs(pagesFiles(expected)).isNotEmpty();
    long localPages = pagesFiles(expected).values().stream().mapToLong(Long::longValue).sum()
        / 4096;
    long cachePages = pagesFiles(m.files()).values().stream().mapToLong(Long::longValue).sum()
        / 4096;
    assertThat(cachePages).isEqualTo(m.received().pages());
    // The payload ran on between the two dumps: a few pages of stack and heap may differ.
    assertThat(cachePages).isCloseTo(localPages, org.assertj.core.data.Offset.offset(32L));
    Map<String, Long> differences = new TreeMap<>();
    for (Map.Entry<String, Long> e : withoutPages(expected).entrySet()) {
      long diff = m.files().get(e.getKey()) - e.getValue();
      if (diff != 0) {
        differences.put(e.getKey(), diff);
      }
    }
    reporter.publishEntry("size differences (cache - local)", differences.toString());
    System.out.println("image sizes: local " + expected + ", cache " + m.files()
        + ", differences " + differences);
    for (Map.Entry<String, Long> d : differences.entrySet()) {
      // pagemap-N.img: the pages id is a varint (65537 takes 2 bytes more than 1), and the
      // process may have split its memory into a few more or fewer pagemap entries meanwhile.
      long tolerance = d.getKey().startsWith("pagemap-") ? 64 : 16;
      assertThat(Math.abs(d.getValue())).as("size difference of %s", d.getKey())
          .isLessThanOrEqualTo(tolerance);
    }
  }

  private static Map<String, Long> pagesFiles(Map<String, Long> files) {
    Map<String, Long> out = new TreeMap<>(files);
    out.keySet().removeIf(n -> !n.startsWith("pages-"));
    return out;
  }

  private static Map<String, Long> withoutPages(Map<String, Long> files) {
    Map<String, Long> out = new TreeMap<>(files);
    out.keySet().removeIf(n -> n.startsWith("pages-"));
    return out;
  }

  private static <T> T get(CompletableFuture<T> f) throws Exception {
    try {
      return f.get(30, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause() instanceof RuntimeException r && r.getCause() != null
          ? r.getCause() : e.getCause();
      throw c instanceof Exception x ? x : e;
    }
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static Map<String, Long> sizes(Path dir) throws IOException {
    Map<String, Long> out = new TreeMap<>();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        if (Files.isRegularFile(p)) {
          out.put(p.getFileName().toString(), Files.size(p));
        }
      }
    }
    return out;
  }
}

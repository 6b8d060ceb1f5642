package io.criu4j.testing;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.testing.transport.StreamPattern;
import io.criu4j.testing.transport.Streams;
import io.criu4j.testing.transport.Streams.Checksum;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The contract every {@link Transport} keeps, as executable specifications. To check a transport,
 * extend this class and implement {@link #transport()} and {@link #newListenUri()}:
 *
 * <pre>{@code
 * class TcpTransportTest extends TransportContractTest {
 *   protected Transport transport() { return TcpTransport.create(); }
 *   protected URI newListenUri() { return URI.create("tcp://127.0.0.1:0"); }
 * }
 * }</pre>
 *
 * <p>Optional hooks: {@link #malformedUris()} adds transport-specific invalid addresses, and
 * {@link #bulkTransferBytes()} sizes the bulk-transfer test (2 GiB by default).
 *
 * <p>The tests need no root and no CRIU. Every test has a timeout; every listener, connection
 * and thread a test opens is closed after it.
 */
@Timeout(value = 20, unit = SECONDS)
public abstract class TransportContractTest {
  private static final Logger log = LoggerFactory.getLogger(TransportContractTest.class);
  private static final long SEED = 0x5EED;
  private static final int CHUNK = 256 * 1024;
  private static final long MORE_THAN_ANY_SOCKET_BUFFER = 64L << 20;
  private static final Duration SHORT = Duration.ofMillis(250);
  private static final Duration PATIENCE = Duration.ofSeconds(10);

  private final Deque<AutoCloseable> resources = new ArrayDeque<>();
  private ExecutorService threads;

  /** The transport under test. */
  protected abstract Transport transport();

  /**
   * A fresh address to listen on, different on every call (or letting the system choose, like
   * {@code tcp://127.0.0.1:0}).
   */
  protected abstract URI newListenUri();

  /** How many bytes {@link #aBulkTransferOfGibibytesArrivesComplete()} sends: 2 GiB. */
  protected long bulkTransferBytes() {
    return 2L << 30;
  }

  /**
   * Addresses of this transport's scheme that are malformed, in addition to the generic ones
   * (wrong scheme, query string) the contract checks anyway.
   */
  protected List<URI> malformedUris() {
    return List.of();
  }

  // ---------------------------------------------------------------------------------------------
  // Addresses

  @Test
  void aListenerReportsAConnectableAddressOfTheTransportsScheme() throws Exception {
    Listener listener = listen();

    assertThat(listener.address().getScheme()).isEqualTo(transport().scheme());
    assertThat(listener.isOpen()).isTrue();
    Connection client = track(transport().connect(listener.address(), PATIENCE));
    Connection server = track(listener.accept(PATIENCE));
    assertThat(client.isOpen()).isTrue();
    assertThat(server.isOpen()).isTrue();
  }

  @Test
  void bothEndsKnowTheirPeersAddress() throws Exception {
    Pair pair = connectPair();

    assertThat(pair.client.peer().address()).isNotBlank();
    assertThat(pair.server.peer().address()).isNotBlank();
  }

  @Test
  void connectingToAnAddressNobodyListensOnFailsWithTransportExceptionNamingIt() throws Exception {
    Listener listener = listen();
    URI address = listener.address();
    listener.close();

    assertThatThrownBy(() -> track(transport().connect(address, PATIENCE)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining(address.toString());
  }

  @Test
  void listeningOnAnAddressInUseFailsWithTransportExceptionNamingIt() throws Exception {
    Listener listener = listen();

    assertThatThrownBy(() -> track(transport().listen(listener.address())))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining(listener.address().toString());
    assertThat(listener.isOpen()).isTrue();
  }

  @Test
  void malformedAddressesAreRejectedWithIllegalArgumentExceptionNamingThem() {
    List<URI> malformed = new ArrayList<>(malformedUris());
    malformed.add(URI.create("bogus://somewhere:1"));
    malformed.add(URI.create(newListenUri() + "?option=1"));

    for (URI uri : malformed) {
      assertThatThrownBy(() -> track(transport().listen(uri)))
          .as("listen(%s)", uri)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining(uri.toString());
      assertThatThrownBy(() -> track(transport().connect(uri, PATIENCE)))
          .as("connect(%s)", uri)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining(uri.toString());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  @Test
  void bytesArriveInOrderWhateverTheSizesOfWritesAndReads() throws Exception {
    Pair pair = connectPair();
    long total = 16L << 20;
    Future<Void> writer = inBackground(() -> {
      Random sizes = new Random(1);
      ByteBuffer direct = ByteBuffer.allocateDirect(200_000);
      ByteBuffer heap = ByteBuffer.allocate(200_000);
      for (long position = 0; position < total; ) {
        ByteBuffer buffer = sizes.nextBoolean() ? direct : heap;
        buffer.clear().limit((int) Math.min(1 + sizes.nextInt(200_000), total - position));
        StreamPattern.fill(buffer, SEED, position);
        buffer.flip();
        position += pair.client.write(buffer);
        assertThat(buffer.hasRemaining()).as("write leaves nothing behind").isFalse();
      }
      pair.client.shutdownOutput();
      return null;
    });

    Random sizes = new Random(2);
    ByteBuffer buffer = ByteBuffer.allocateDirect(150_000);
    long position = 0;
    while (true) {
      buffer.clear().limit(1 + sizes.nextInt(150_000));
      int n = pair.server.read(buffer);
      if (n < 0) {
        break;
      }
      assertThat(n).isPositive();
      buffer.flip();
      assertThat(StreamPattern.firstMismatch(buffer, SEED, position)).isEqualTo(-1);
      position += n;
    }
    assertThat(position).isEqualTo(total);
    writer.get();
  }

  @Test
  void aGatheringWriteSendsAllBuffersInOrder() throws Exception {
    Pair pair = connectPair();
    ByteBuffer[] parts = new ByteBuffer[5];
    long total = 0;
    for (int i = 0; i < parts.length; i++) {
      int size = i == 2 ? 0 : 300_000 * i + 1;
      parts[i] = i % 2 == 0 ? ByteBuffer.allocateDirect(size) : ByteBuffer.allocate(size);
      StreamPattern.fill(parts[i], SEED, total);
      parts[i].flip();
      total += size;
    }
    long expected = total;

    Future<Long> written = inBackground(() -> {
      long n = pair.client.write(parts, 0, 3) + pair.client.write(parts, 3, 2)
          + pair.client.write(new ByteBuffer[0]);
      pair.client.shutdownOutput();
      return n;
    });

    assertThat(Streams.readPattern(pair.server, SEED, Long.MAX_VALUE, CHUNK)).isEqualTo(expected);
    assertThat(written.get()).isEqualTo(expected);
    assertThat(parts).noneMatch(ByteBuffer::hasRemaining);
  }

  @Test
  @Timeout(value = 60, unit = SECONDS)
  void aBulkTransferOfGibibytesArrivesComplete() throws Exception {
    Pair pair = connectPair();
    long total = bulkTransferBytes();
    int blockSize = 1 << 20;
    ByteBuffer block = ByteBuffer.allocateDirect(blockSize);
    Random random = new Random(3);
    while (block.hasRemaining()) {
      block.putLong(random.nextLong());
    }

    Future<Checksum> sent = inBackground(() -> {
      CRC32C crc = new CRC32C();
      long blockNumber = 0;
      for (long position = 0; position < total; position += block.limit(), blockNumber++) {
        block.clear().limit((int) Math.min(blockSize, total - position));
        block.putLong(0, blockNumber); // makes every block different, so reordering shows
        crc.update(block);
        block.flip();
        pair.client.write(block);
      }
      pair.client.shutdownOutput();
      return new Checksum(total, (int) crc.getValue());
    });
    long start = System.nanoTime();
    Checksum received = Streams.checksumToEnd(pair.server, blockSize);
    long nanos = System.nanoTime() - start;

    assertThat(received).isEqualTo(sent.get());
    log.info("{}: {} MiB in {} ms ({} GiB/s)", getClass().getSimpleName(), total >> 20,
        nanos / 1_000_000, String.format("%.2f", total / (nanos / 1e9) / (1L << 30)));
  }

  @Test
  void sixteenConcurrentConnectionsEachCarryTheirOwnData() throws Exception {
    int connections = 16;
    long length = 4L << 20;
    Listener listener = listen();
    List<Future<Void>> servers = new ArrayList<>();
    for (int i = 0; i < connections; i++) {
      servers.add(inBackground(() -> {
        try (Connection server = listener.accept(PATIENCE)) {
          Checksum checksum = Streams.checksumToEnd(server, 64 * 1024);
          ByteBuffer reply = ByteBuffer.allocate(12)
              .putLong(checksum.length()).putInt(checksum.crc32c()).flip();
          server.write(reply);
          server.shutdownOutput();
        }
        return null;
      }));
    }
    List<Future<Void>> clients = new ArrayList<>();
    for (int i = 0; i < connections; i++) {
      long seed = 1000 + i;
      clients.add(inBackground(() -> {
        try (Connection client = transport().connect(listener.address(), PATIENCE)) {
          Streams.writePattern(client, seed, length, 64 * 1024);
          client.shutdownOutput();
          ByteBuffer reply = ByteBuffer.allocate(12);
          Streams.readFully(client, reply);
          reply.flip();
          CRC32C expected = new CRC32C();
          ByteBuffer data = ByteBuffer.allocate((int) length);
          StreamPattern.fill(data, seed, 0);
          expected.update(data.flip());
          assertThat(new Checksum(reply.getLong(), reply.getInt()))
              .as("what the server received from client %d", seed)
              .isEqualTo(new Checksum(length, (int) expected.getValue()));
        }
        return null;
      }));
    }

    for (Future<Void> client : clients) {
      client.get();
    }
    for (Future<Void> server : servers) {
      server.get();
    }
  }

  @Test
  void aWriterBlocksWhileThePeerDoesNotReadAndResumesWithoutLosingBytes() throws Exception {
    Pair pair = connectPair();
    long total = MORE_THAN_ANY_SOCKET_BUFFER;
    AtomicLong written = new AtomicLong();
    Future<Void> writer = inBackground(() -> {
      ByteBuffer buffer = ByteBuffer.allocateDirect(64 * 1024);
      for (long position = 0; position < total; ) {
        buffer.clear();
        StreamPattern.fill(buffer, SEED, position);
        buffer.flip();
        position += pair.client.write(buffer);
        written.set(position);
      }
      return null;
    });

    long stalledAt = awaitNoProgress(written, Duration.ofMillis(300));
    assertThat(stalledAt).as("bytes written before the writer blocked").isLessThan(total);
    assertThat(writer.isDone()).as("writer done although nobody reads").isFalse();

    long read = Streams.readPattern(pair.server, SEED, total, CHUNK);
    assertThat(read).isEqualTo(total);
    writer.get(PATIENCE.toSeconds(), SECONDS);
    assertThat(written.get()).isEqualTo(total);
  }

  // ---------------------------------------------------------------------------------------------
  // Half-close

  @Test
  void shutdownOutputGivesThePeerEndOfStreamWhileTheOtherDirectionStaysOpen() throws Exception {
    Pair pair = connectPair();

    Streams.writeUtf8(pair.client, "request");
    pair.client.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(pair.server)).isEqualTo("request");
    assertThat(pair.server.read(ByteBuffer.allocate(1))).as("EOF again").isEqualTo(-1);

    Streams.writeUtf8(pair.server, "response");
    pair.server.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(pair.client)).isEqualTo("response");
  }

  @Test
  void theAcceptingSideCanHalfCloseFirst() throws Exception {
    Pair pair = connectPair();

    pair.server.shutdownOutput();
    assertThat(pair.client.read(ByteBuffer.allocate(16))).isEqualTo(-1);

    Future<Long> received = inBackground(
        () -> Streams.readPattern(pair.server, SEED, Long.MAX_VALUE, CHUNK));
    Streams.writePattern(pair.client, SEED, 8L << 20, CHUNK);
    pair.client.close();
    assertThat(received.get()).isEqualTo(8L << 20);
  }

  @Test
  void writingAfterShutdownOutputFailsButShuttingDownTwiceDoesNot() throws Exception {
    Pair pair = connectPair();
    pair.client.shutdownOutput();

    assertThatCode(pair.client::shutdownOutput).doesNotThrowAnyException();
    assertThatThrownBy(() -> pair.client.write(ByteBuffer.allocate(1)))
        .isInstanceOf(TransportException.class);
    assertThat(pair.client.isOpen()).isTrue();
  }

  // ---------------------------------------------------------------------------------------------
  // The peer goes away

  @Test
  void whenThePeerVanishesMidStreamTheReaderGetsTheDataThenEndOfStreamOrAnError()
      throws Exception {
    Pair pair = connectPair();
    long sent = 3L << 20;
    Future<Long> reader = inBackground(() -> {
      try {
        return Streams.readPattern(pair.server, SEED, Long.MAX_VALUE, CHUNK);
      } catch (TransportException e) {
        return -1L; // a reset is allowed as well as EOF
      }
    });

    Streams.writePattern(pair.client, SEED, sent, CHUNK);
    pair.client.close();

    long received = reader.get(PATIENCE.toSeconds(), SECONDS);
    assertThat(received).isIn(-1L, sent);
  }

  @Test
  void whenThePeerVanishesABlockedReaderIsReleased() throws Exception {
    Pair pair = connectPair();
    Future<Integer> reader = inBackground(() -> {
      try {
        return pair.server.read(ByteBuffer.allocate(16));
      } catch (TransportException e) {
        return -2;
      }
    });
    pause();

    pair.client.close();

    assertThat(reader.get(PATIENCE.toSeconds(), SECONDS)).isIn(-1, -2);
  }

  @Test
  void whenThePeerVanishesMidStreamTheWriterFails() throws Exception {
    Pair pair = connectPair();
    Future<Void> writer = inBackground(() -> {
      Streams.writePattern(pair.client, SEED, Long.MAX_VALUE, CHUNK);
      return null;
    });
    Streams.readFully(pair.server, ByteBuffer.allocateDirect(1 << 20));

    pair.server.close();

    assertThatThrownBy(() -> writer.get(PATIENCE.toSeconds(), SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(TransportException.class);
  }

  // ---------------------------------------------------------------------------------------------
  // Closing

  @Test
  void closingIsIdempotent() throws Exception {
    Pair pair = connectPair();

    pair.client.close();
    pair.client.close();
    pair.server.close();
    pair.server.close();
    pair.listener.close();
    pair.listener.close();

    assertThat(pair.client.isOpen()).isFalse();
    assertThat(pair.server.isOpen()).isFalse();
    assertThat(pair.listener.isOpen()).isFalse();
  }

  @Test
  void everyOperationOnAClosedConnectionFailsWithTransportException() throws Exception {
    Pair pair = connectPair();
    pair.client.close();

    assertThatThrownBy(() -> pair.client.read(ByteBuffer.allocate(1)))
        .isInstanceOf(TransportException.class);
    assertThatThrownBy(() -> pair.client.write(ByteBuffer.allocate(1)))
        .isInstanceOf(TransportException.class);
    assertThatThrownBy(() -> pair.client.write(new ByteBuffer[] {ByteBuffer.allocate(1)}))
        .isInstanceOf(TransportException.class);
    assertThatThrownBy(pair.client::shutdownOutput).isInstanceOf(TransportException.class);
  }

  @Test
  void acceptingOnAClosedListenerFailsWithTransportException() throws Exception {
    Listener listener = listen();
    listener.close();

    assertThatThrownBy(listener::accept).isInstanceOf(TransportException.class);
    assertThatThrownBy(() -> listener.accept(SHORT)).isInstanceOf(TransportException.class);
  }

  @Test
  void closingAConnectionReleasesAReaderBlockedInAnotherThread() throws Exception {
    Pair pair = connectPair();
    Future<Integer> reader = inBackground(() -> pair.server.read(ByteBuffer.allocate(16)));
    pause();

    pair.server.close();

    assertThatThrownBy(() -> reader.get(PATIENCE.toSeconds(), SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(TransportException.class);
  }

  @Test
  void closingAConnectionReleasesAWriterBlockedInAnotherThread() throws Exception {
    Pair pair = connectPair();
    AtomicLong written = new AtomicLong();
    Future<Void> writer = inBackground(() -> {
      ByteBuffer buffer = ByteBuffer.allocateDirect(64 * 1024);
      while (true) {
        buffer.clear();
        pair.client.write(buffer);
        written.addAndGet(buffer.capacity());
      }
    });
    awaitNoProgress(written, Duration.ofMillis(200));

    pair.client.close();

    assertThatThrownBy(() -> writer.get(PATIENCE.toSeconds(), SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(TransportException.class);
  }

  @Test
  void closingAListenerReleasesAnAcceptBlockedInAnotherThread() throws Exception {
    Listener listener = listen();
    Future<Connection> accepter = inBackground(listener::accept);
    pause();

    listener.close();

    assertThatThrownBy(() -> accepter.get(PATIENCE.toSeconds(), SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(TransportException.class);
  }

  @Test
  void interruptingABlockedReaderClosesTheConnection() throws Exception {
    Pair pair = connectPair();
    AtomicReference<Thread> readerThread = new AtomicReference<>();
    Future<Boolean> reader = inBackground(() -> {
      readerThread.set(Thread.currentThread());
      try {
        pair.server.read(ByteBuffer.allocate(16));
        return false;
      } catch (TransportException e) {
        return Thread.currentThread().isInterrupted();
      }
    });
    pause();

    readerThread.get().interrupt();

    assertThat(reader.get(PATIENCE.toSeconds(), SECONDS))
        .as("read failed and the interrupt status is kept").isTrue();
    assertThat(pair.server.isOpen()).isFalse();
  }

  // ---------------------------------------------------------------------------------------------
  // Timeouts

  @Test
  void acceptTimesOutWithEtimedoutAndTheListenerStaysUsable() throws Exception {
    Listener listener = listen();

    long start = System.nanoTime();
    assertThatThrownBy(() -> listener.accept(SHORT))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ETIMEDOUT"))
        .hasMessageContaining(listener.address().toString());
    assertElapsedAtLeast(start, SHORT);

    assertThat(listener.isOpen()).isTrue();
    track(transport().connect(listener.address(), PATIENCE));
    assertThat(track(listener.accept(PATIENCE)).isOpen()).isTrue();
  }

  @Test
  void connectTimesOutWithEtimedoutWhileTheListenersBacklogIsFull() throws Exception {
    Listener listener = listen();
    TransportException timeout = null;
    long start = 0;
    for (int attempt = 0; attempt < 10_000 && timeout == null; attempt++) {
      start = System.nanoTime();
      try {
        track(transport().connect(listener.address(), SHORT));
      } catch (TransportException e) {
        timeout = e;
      }
    }

    assertThat(timeout).as("a connect beyond the backlog").isNotNull();
    assertThat(timeout.errnoName()).as("errno of %s", timeout).isEqualTo("ETIMEDOUT");
    assertThat(timeout).hasMessageContaining(listener.address().toString());
    assertElapsedAtLeast(start, SHORT);
  }

  @Test
  void aReadThatGetsNoDataTimesOutWithEtimedoutAndClosesTheConnection() throws Exception {
    Pair pair = connectPair();
    pair.server.setReadTimeout(SHORT);

    long start = System.nanoTime();
    assertThatThrownBy(() -> pair.server.read(ByteBuffer.allocate(16)))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ETIMEDOUT"));
    assertElapsedAtLeast(start, SHORT);

    assertThat(pair.server.isOpen()).isFalse();
    assertThatThrownBy(() -> pair.server.write(ByteBuffer.allocate(1)))
        .isInstanceOf(TransportException.class);
  }

  @Test
  void aShortenedReadTimeoutAppliesToTheNextRead() throws Exception {
    Pair pair = connectPair();
    pair.server.setReadTimeout(Duration.ofMinutes(5));
    pair.server.setReadTimeout(Duration.ZERO);
    pair.server.setReadTimeout(Duration.ofMinutes(1));
    pair.server.setReadTimeout(SHORT);

    long start = System.nanoTime();
    assertThatThrownBy(() -> pair.server.read(ByteBuffer.allocate(16)))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ETIMEDOUT"));
    assertElapsedAtLeast(start, SHORT);
    assertThat(System.nanoTime() - start).isLessThan(PATIENCE.toNanos());
  }

  @Test
  void aSlowButSteadyPeerNeverTriggersTheReadTimeout() throws Exception {
    Pair pair = connectPair();
    pair.server.setReadTimeout(Duration.ofMillis(500));
    Future<Void> trickle = inBackground(() -> {
      for (int i = 0; i < 10; i++) {
        Thread.sleep(100);
        pair.client.write(ByteBuffer.wrap(new byte[] {(byte) i}));
      }
      pair.client.shutdownOutput();
      return null;
    });

    assertThat(Streams.readUtf8ToEnd(pair.server)).hasSize(10);
    trickle.get();
    assertThat(pair.server.isOpen()).isTrue();
  }

  @Test
  void aWriteThatCannotCompleteTimesOutWithEtimedoutAndClosesTheConnection() throws Exception {
    Pair pair = connectPair();
    pair.client.setWriteTimeout(SHORT);

    ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
    long start = System.nanoTime();
    TransportException timeout = null;
    for (long written = 0; written < MORE_THAN_ANY_SOCKET_BUFFER && timeout == null; ) {
      buffer.clear();
      start = System.nanoTime();
      try {
        written += pair.client.write(buffer);
      } catch (TransportException e) {
        timeout = e;
      }
    }

    assertThat(timeout).as("a write nobody reads").isNotNull();
    assertThat(timeout.errnoName()).as("errno of %s", timeout).isEqualTo("ETIMEDOUT");
    assertElapsedAtLeast(start, SHORT);
    assertThat(pair.client.isOpen()).isFalse();
  }

  @Test
  void timeoutsMustNotBeNegative() throws Exception {
    Pair pair = connectPair();
    Duration negative = Duration.ofMillis(-1);

    assertThatThrownBy(() -> pair.client.setReadTimeout(negative))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(negative.toString());
    assertThatThrownBy(() -> pair.client.setWriteTimeout(negative))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(negative.toString());
    assertThatThrownBy(() -> pair.listener.accept(negative))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(negative.toString());
    assertThatThrownBy(() -> track(transport().connect(pair.listener.address(), negative)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(negative.toString());
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  /** A connected pair and the listener that made it, all closed after the test. */
  protected record Pair(Connection client, Connection server, Listener listener) {}

  /** Listens on a fresh address; the listener is closed after the test. */
  protected final Listener listen() throws IOException {
    return track(transport().listen(newListenUri()));
  }

  /** Connects a client to a fresh listener and accepts it; all are closed after the test. */
  protected final Pair connectPair() throws IOException {
    Listener listener = listen();
    Connection client = track(transport().connect(listener.address(), PATIENCE));
    Connection server = track(listener.accept(PATIENCE));
    return new Pair(client, server, listener);
  }

  /** Closes {@code resource} after the test (in reverse order of tracking). */
  protected final <T extends AutoCloseable> T track(T resource) {
    synchronized (resources) {
      resources.push(resource);
    }
    return resource;
  }

  /** Runs {@code task} on a test thread that is stopped after the test. */
  protected final <T> Future<T> inBackground(Callable<T> task) {
    return threads.submit(task);
  }

  @BeforeEach
  void startThreads() {
    AtomicInteger count = new AtomicInteger();
    ThreadFactory factory = r -> {
      Thread t = new Thread(r, getClass().getSimpleName() + "-" + count.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
    threads = Executors.newCachedThreadPool(factory);
  }

  @AfterEach
  void closeEverything() throws Exception {
    List<AutoCloseable> toClose;
    synchronized (resources) {
      toClose = new ArrayList<>(resources);
      resources.clear();
    }
    for (AutoCloseable resource : toClose) {
      resource.close();
    }
    threads.shutdownNow();
    if (!threads.awaitTermination(5, SECONDS)) {
      fail("test threads still running 5 s after closing every connection");
    }
  }

  /** Gives a background thread time to block. */
  private static void pause() throws InterruptedException {
    Thread.sleep(150);
  }

  /** Waits until {@code counter} has not changed for {@code quiet}; returns its value then. */
  private static long awaitNoProgress(AtomicLong counter, Duration quiet)
      throws InterruptedException {
    long deadline = System.nanoTime() + PATIENCE.toNanos();
    long last = counter.get();
    long lastChange = System.nanoTime();
    while (System.nanoTime() < deadline) {
      Thread.sleep(20);
      long now = counter.get();
      if (now != last) {
        last = now;
        lastChange = System.nanoTime();
      } else if (System.nanoTime() - lastChange >= quiet.toNanos()) {
        return now;
      }
    }
    throw new AssertionError("still making progress after " + PATIENCE + ": " + last);
  }

  private static void assertElapsedAtLeast(long start, Duration minimum) {
    long elapsed = System.nanoTime() - start;
    // Allow for the millisecond rounding of timed waits.
    assertThat(TimeUnit.NANOSECONDS.toMillis(elapsed))
        .as("milliseconds until the timeout fired")
        .isGreaterThanOrEqualTo(minimum.toMillis() - 1);
  }
}

package io.criu4j.internal.migrate;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.MigrationException;
import io.criu4j.NoLeaks;
import io.criu4j.internal.migrate.LazyPageRelay.Cause;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transports;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Two relays back to back, as on the source and the destination of a post-copy: each relays
 * between a loopback TCP socket (whose far end the test holds in CRIU's place) and one end of an
 * in-memory transport connection. Side A plays the source (it waits a fence before resetting
 * CRIU's socket), side B the destination.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
@DisplayName("The post-copy page relay")
class LazyPageRelayTest {
  private static final Duration WAIT = Duration.ofSeconds(20);

  private final List<String> order = new CopyOnWriteArrayList<>();
  private final List<AutoCloseable> toClose = new CopyOnWriteArrayList<>();

  @AfterEach
  void closeEverything() throws Exception {
    for (AutoCloseable c : toClose) {
      c.close();
    }
  }

  // ------------------------------------------------------------------------------ fixture

  /** A side that records what the relay asked of it, in the shared {@link #order}. */
  private final class TestSide implements LazyPageRelay.Side {
    private final String name;
    private final Duration fence;
    volatile boolean endsWell = true;
    volatile Duration stopTakes = Duration.ZERO;
    final AtomicInteger stops = new AtomicInteger();
    final List<Cause> fencesAsked = new CopyOnWriteArrayList<>();
    volatile long stoppedNanos;

    TestSide(String name, Duration fence) {
      this.name = name;
      this.fence = fence;
    }

    @Override
    public boolean localEnded() {
      order.add(name + " local ended");
      return endsWell;
    }

    @Override
    public void stopLocalCopy(String why) {
      stops.incrementAndGet();
      sleep(stopTakes);
      stoppedNanos = System.nanoTime();
      order.add(name + " stopped its copy");
    }

    @Override
    public Duration fence(Cause cause) {
      fencesAsked.add(cause);
      return fence;
    }
  }

  /** One relay with its local socket pair and its end of the connection. */
  private record End(LazyPageRelay relay, TestSide side, SocketChannel far, Connection conn) {}

  private End a;
  private End b;

  /** Starts A and B, their connection ends joined in memory. */
  private void connect(TestSide sideA, TestSide sideB) throws Exception {
    Listener l = Transports.inMemory().listen(URI.create("mem://lazy-relay-" + UUID.randomUUID()));
    Connection connA;
    Connection connB;
    try {
      connA = Transports.inMemory().connect(l.address(), Duration.ofSeconds(5));
      toClose.add(connA);
      connB = l.accept(Duration.ofSeconds(5));
      toClose.add(connB);
    } finally {
      l.close();
    }
    a = start("A", sideA, connA);
    b = start("B", sideB, connB);
  }

  private End start(String label, TestSide side, Connection conn) throws IOException {
    SocketChannel far;
    SocketChannel near;
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      far = SocketChannel.open(server.getLocalAddress());
      toClose.add(far);
      near = server.accept();
      toClose.add(near);
    }
    LazyPageRelay relay = new LazyPageRelay("test-" + label, side);
    toClose.add(relay);
    relay.start(near, conn);
    return new End(relay, side, far, conn);
  }

  /** How a far end's reading stopped: at the end of the stream or with an error. */
  private record Outcome(byte[] bytes, IOException error, long endNanos) {
    boolean sawEof() {
      return error == null;
    }
  }

  /** Reads {@code far} until the end of the stream or an error, after {@code delay}. */
  private static CompletableFuture<Outcome> readAll(SocketChannel far, Duration delay) {
    CompletableFuture<Outcome> f = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      sleep(delay);
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
      try {
        while (far.read(buf.clear()) >= 0) {
          got.write(buf.array(), 0, buf.position());
        }
        f.complete(new Outcome(got.toByteArray(), null, System.nanoTime()));
      } catch (IOException e) {
        f.complete(new Outcome(got.toByteArray(), e, System.nanoTime()));
      }
    }, "far-reader");
    t.setDaemon(true);
    t.start();
    return f;
  }

  private static CompletableFuture<Outcome> readAll(SocketChannel far) {
    return readAll(far, Duration.ZERO);
  }

  /** Writes {@code data} to {@code far} on a thread of its own, then shuts its output down. */
  private static CompletableFuture<Void> writeAllAndEnd(SocketChannel far, byte[] data) {
    return CompletableFuture.runAsync(() -> {
      try {
        ByteBuffer b = ByteBuffer.wrap(data);
        while (b.hasRemaining()) {
          far.write(b);
        }
        far.shutdownOutput();
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
  }

  private static byte[] randomBytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static String sha256(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
  }

  private static <T> T await(CompletableFuture<T> f) throws Exception {
    return f.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The failure {@code done} completed with. */
  private static Throwable failureOf(CompletableFuture<Void> done) throws Exception {
    try {
      await(done);
    } catch (ExecutionException e) {
      return e.getCause();
    }
    throw new AssertionError("done() completed normally");
  }

  private static void sleep(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static long millisBetween(long fromNanos, long toNanos) {
    return TimeUnit.NANOSECONDS.toMillis(toNanos - fromNanos);
  }

  // ------------------------------------------------------------------------ a clean end

  @Test
  void bytesFlowBothWaysUnchangedAndTheEndIsClean() throws Exception {
    connect(new TestSide("A", Duration.ofMillis(300)), new TestSide("B", Duration.ZERO));
    byte[] up = randomBytes(3 * 1024 * 1024 + 17, 1);
    byte[] down = randomBytes(5 * 1024 * 1024 + 3, 2);
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    CompletableFuture<Void> writeA = writeAllAndEnd(a.far(), up);
    CompletableFuture<Void> writeB = writeAllAndEnd(b.far(), down);

    await(writeA);
    await(writeB);
    Outcome atB = await(readB);
    Outcome atA = await(readA);
    assertThat(atB.sawEof()).as("B's far end sees the end, not %s", atB.error()).isTrue();
    assertThat(atA.sawEof()).as("A's far end sees the end, not %s", atA.error()).isTrue();
    assertThat(atB.bytes()).hasSize(up.length);
    assertThat(sha256(atB.bytes())).isEqualTo(sha256(up));
    assertThat(atA.bytes()).hasSize(down.length);
    assertThat(sha256(atA.bytes())).isEqualTo(sha256(down));
    await(a.relay().done());
    await(b.relay().done());
    assertThat(a.relay().endReceived()).isTrue();
    assertThat(b.relay().endReceived()).isTrue();
    assertThat(a.relay().bytesOut()).isEqualTo(up.length);
    assertThat(a.relay().bytesIn()).isEqualTo(down.length);
    assertThat(b.relay().bytesOut()).isEqualTo(down.length);
    assertThat(b.relay().bytesIn()).isEqualTo(up.length);
    assertThat(a.side().stops).hasValue(0);
    assertThat(b.side().stops).hasValue(0);
    assertThat(a.side().fencesAsked).isEmpty();
  }

  @Test
  void theEndComesOnlyOnceBothLocalSidesEndedWell() throws Exception {
    connect(new TestSide("A", Duration.ofMillis(300)), new TestSide("B", Duration.ZERO));
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    a.far().shutdownOutput();
    Outcome atB = await(readB);

    // A's END reached B, which ended its local socket's output (EOF, no reset) ...
    assertThat(atB.sawEof()).as("B's far end sees the end, not %s", atB.error()).isTrue();
    assertThat(b.relay().endReceived()).isTrue();
    // ... but the relay is not done while B's own local side goes on.
    sleep(Duration.ofMillis(200));
    assertThat(a.relay().done()).isNotDone();
    assertThat(b.relay().done()).isNotDone();
    assertThat(a.relay().endReceived()).isFalse();
    assertThat(readA).isNotDone();

    b.far().shutdownOutput();

    await(a.relay().done());
    await(b.relay().done());
    Outcome atA = await(readA);
    assertThat(atA.sawEof()).as("A's far end sees the end, not %s", atA.error()).isTrue();
    assertThat(order).containsExactly("A local ended", "B local ended");
  }

  @Test
  void aCleanEndDeliversEverythingEvenToALocalSideThatReadsLate() throws Exception {
    connect(new TestSide("A", Duration.ofMillis(300)), new TestSide("B", Duration.ZERO));
    byte[] down = randomBytes(4 * 1024 * 1024, 3);
    // A's far end has said all it had to say, and reads what comes only after a while: the
    // bytes still wait in the sockets' buffers when both ends were exchanged.
    a.far().shutdownOutput();
    CompletableFuture<Outcome> readA = readAll(a.far(), Duration.ofMillis(1500));
    CompletableFuture<Outcome> readB = readAll(b.far());

    await(writeAllAndEnd(b.far(), down));

    Outcome atA = await(readA);
    assertThat(atA.sawEof()).as("A's far end sees the end, not %s", atA.error()).isTrue();
    assertThat(atA.bytes()).hasSize(down.length);
    assertThat(sha256(atA.bytes())).isEqualTo(sha256(down));
    assertThat(await(readB).sawEof()).isTrue();
    await(a.relay().done());
    await(b.relay().done());
  }

  // ------------------------------------------------------------------------- failures

  @Test
  void aLocalSideThatEndsBadlyFailsBothRelaysAndResetsTheOtherLocalSocket() throws Exception {
    TestSide sideB = new TestSide("B", Duration.ZERO);
    sideB.endsWell = false;
    sideB.stopTakes = Duration.ofMillis(200);
    connect(new TestSide("A", Duration.ofMillis(300)), sideB);
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    b.far().shutdownOutput();

    Outcome atA = await(readA);
    assertThat(atA.error()).as("A's far end is reset, it does not see an end")
        .isNotNull().hasMessageContaining("Connection reset");
    assertThat(failureOf(a.relay().done())).isInstanceOf(MigrationException.class)
        .hasMessageContaining("peer failed");
    assertThat(failureOf(b.relay().done())).isInstanceOf(MigrationException.class)
        .hasMessageContaining("did not end well");
    // B stopped its copy before A heard of the failure.
    assertThat(order).containsExactly("B local ended", "B stopped its copy", "A stopped its copy");
    assertThat(sideB.fencesAsked).containsExactly(Cause.LOCAL);
    assertThat(await(readB).error()).as("B's far end is reset too").isNotNull();
    assertThat(a.relay().endReceived()).isFalse();
  }

  @Test
  void aConnectionThatEndsWithoutEndOrFailFailsBothAndTheSourceWaitsItsFence()
      throws Exception {
    Duration fence = Duration.ofMillis(300);
    connect(new TestSide("A", fence), new TestSide("B", Duration.ZERO));
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    long cut = System.nanoTime();
    b.conn().close();

    Outcome atB = await(readB);
    Outcome atA = await(readA);
    assertThat(failureOf(a.relay().done())).isInstanceOf(MigrationException.class);
    assertThat(failureOf(b.relay().done())).isInstanceOf(MigrationException.class);
    assertThat(a.side().fencesAsked).containsExactly(Cause.CONNECTION);
    assertThat(b.side().fencesAsked).containsExactly(Cause.CONNECTION);
    assertThat(a.side().stops).hasValue(1);
    assertThat(b.side().stops).hasValue(1);
    assertThat(atA.error()).as("A's far end is reset").isNotNull()
        .hasMessageContaining("Connection reset");
    assertThat(atB.error()).as("B's far end is reset").isNotNull()
        .hasMessageContaining("Connection reset");
    assertThat(millisBetween(cut, atA.endNanos())).as("ms from the cut to A's reset")
        .isGreaterThanOrEqualTo(fence.toMillis());
  }

  @Test
  void aFailFromThePeerIsActedOnWithoutWaitingAFence() throws Exception {
    Duration fence = Duration.ofSeconds(3);
    TestSide sideB = new TestSide("B", Duration.ZERO);
    sideB.endsWell = false;
    connect(new TestSide("A", fence), sideB);
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    long start = System.nanoTime();
    b.far().shutdownOutput();

    Outcome atA = await(readA);
    assertThat(atA.error()).isNotNull().hasMessageContaining("Connection reset");
    assertThat(millisBetween(start, atA.endNanos()))
        .as("ms until A reset its local socket after the peer's FAIL")
        .isLessThan(fence.toMillis() / 2);
    assertThat(failureOf(a.relay().done())).hasMessageContaining("peer failed");
    await(readB);
  }

  @Test
  void aLocalFailureWaitsUntilThePeerStoppedItsCopyButNoLongerThanThat() throws Exception {
    Duration fence = Duration.ofSeconds(5);
    TestSide sideB = new TestSide("B", Duration.ZERO);
    sideB.stopTakes = Duration.ofMillis(300);
    connect(new TestSide("A", fence), sideB);
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    long start = System.nanoTime();
    a.relay().fail("post-copy timed out", Cause.ABORT);

    Outcome atA = await(readA);
    assertThat(atA.error()).isNotNull().hasMessageContaining("Connection reset");
    assertThat(sideB.stoppedNanos).as("B stopped its copy before A's local socket was reset")
        .isNotZero().isLessThan(atA.endNanos());
    assertThat(millisBetween(start, atA.endNanos())).as("ms until A reset its local socket")
        .isLessThan(fence.toMillis() / 2);
    assertThat(failureOf(a.relay().done())).hasMessageContaining("post-copy timed out");
    assertThat(failureOf(b.relay().done())).hasMessageContaining("peer failed");
    assertThat(order).containsExactly("A stopped its copy", "B stopped its copy");
    await(readB);
  }

  @Test
  void aFailureIsAnnouncedEvenWhileTheConnectionIsStalled() throws Exception {
    Duration fence = Duration.ofMillis(300);
    connect(new TestSide("A", fence), new TestSide("B", Duration.ZERO));
    CompletableFuture<Outcome> readA = readAll(a.far());
    // B's far end reads nothing: B blocks writing to it, the connection fills up, and A's
    // sending thread blocks inside a write to the connection.
    CompletableFuture<Void> writeA = writeAllAndEnd(a.far(), new byte[64 * 1024 * 1024]);
    long sent;
    do {
      sent = a.relay().bytesOut();
      sleep(Duration.ofMillis(300));
    } while (a.relay().bytesOut() != sent);

    CompletableFuture<Void> failing =
        CompletableFuture.runAsync(() -> a.relay().fail("post-copy timed out", Cause.ABORT));

    await(failing);
    Outcome atA = await(readA);
    assertThat(atA.error()).isNotNull().hasMessageContaining("Connection reset");
    assertThat(failureOf(a.relay().done())).hasMessageContaining("post-copy timed out");
    assertThat(a.side().stops).hasValue(1);
    b.relay().close();
    assertThat(writeA).failsWithin(WAIT);
  }

  // -------------------------------------------------------------------------- closing

  @Test
  void closeStopsTheLocalCopyOnceAndTellsThePeer() throws Exception {
    connect(new TestSide("A", Duration.ofMillis(300)), new TestSide("B", Duration.ZERO));
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());

    a.relay().close();
    a.relay().close();

    assertThat(failureOf(a.relay().done())).hasMessageContaining("closed");
    assertThat(failureOf(b.relay().done())).hasMessageContaining("peer failed");
    assertThat(a.side().stops).hasValue(1);
    assertThat(b.side().stops).hasValue(1);
    assertThat(await(readA).error()).isNotNull().hasMessageContaining("Connection reset");
    assertThat(await(readB).error()).isNotNull().hasMessageContaining("Connection reset");
    b.relay().close();
    assertThat(b.side().stops).hasValue(1);
  }

  @Test
  void closeWhileAnotherThreadWaitsItsFenceWaitsForItInsteadOfResettingEarly()
      throws Exception {
    Duration fence = Duration.ofSeconds(1);
    connect(new TestSide("A", fence), new TestSide("B", Duration.ZERO));
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());
    long cut = System.nanoTime();
    b.conn().close();
    while (a.side().fencesAsked.isEmpty()) {
      sleep(Duration.ofMillis(5));
    }

    a.relay().close();

    long closed = System.nanoTime();
    Outcome atA = await(readA);
    assertThat(atA.error()).isNotNull().hasMessageContaining("Connection reset");
    assertThat(millisBetween(cut, atA.endNanos())).as("ms from the cut to A's reset")
        .isGreaterThanOrEqualTo(fence.toMillis());
    assertThat(millisBetween(cut, closed)).as("ms from the cut until close() returned")
        .isGreaterThanOrEqualTo(fence.toMillis());
    assertThat(failureOf(a.relay().done())).hasMessageNotContaining("closed");
    assertThat(a.side().stops).hasValue(1);
    await(readB);
  }

  @Test
  void afterACleanEndCloseAndLateFailuresChangeNothing() throws Exception {
    connect(new TestSide("A", Duration.ofMillis(300)), new TestSide("B", Duration.ZERO));
    CompletableFuture<Outcome> readA = readAll(a.far());
    CompletableFuture<Outcome> readB = readAll(b.far());
    a.far().shutdownOutput();
    b.far().shutdownOutput();
    await(a.relay().done());
    await(b.relay().done());

    a.relay().close();
    a.relay().fail("late", Cause.LOCAL);
    b.relay().close();
    b.relay().close();

    assertThat(a.relay().done()).isCompleted();
    assertThat(b.relay().done()).isCompleted();
    assertThat(a.side().stops).hasValue(0);
    assertThat(b.side().stops).hasValue(0);
    assertThat(a.side().fencesAsked).isEmpty();
    assertThat(await(readA).sawEof()).isTrue();
    assertThat(await(readB).sawEof()).isTrue();
  }
}

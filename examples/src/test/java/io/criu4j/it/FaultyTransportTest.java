package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The fault-injecting transport the migration tests rely on does what it claims. */
@Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FaultyTransportTest {
  private final Transport mem = Transports.inMemory();
  private Listener listener;

  @BeforeEach
  void listen() throws Exception {
    listener = mem.listen(URI.create("mem://faulty-" + UUID.randomUUID()));
  }

  @AfterEach
  void close() {
    listener.close();
  }

  /** Reads everything the peer receives until the end of the stream or a failure. */
  private CompletableFuture<byte[]> drain(Connection c) {
    return CompletableFuture.supplyAsync(() -> {
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(4096);
      try {
        while (c.read(buf.clear()) >= 0) {
          got.write(buf.array(), 0, buf.position());
        }
      } catch (TransportException endedByReset) {
        // the cut: what arrived so far is the answer
      }
      return got.toByteArray();
    });
  }

  @Test
  void cutDeliversExactlyTheThresholdThenFailsTheWriter() throws Exception {
    FaultyTransport faulty = FaultyTransport.cutAfter(mem, 10_000,
        FaultyTransport.Fault.CUT_ONE);
    try (Connection c = faulty.connect(listener.address());
        Connection peer = listener.accept(Duration.ofSeconds(5))) {
      CompletableFuture<byte[]> received = drain(peer);
      c.write(ByteBuffer.wrap(new byte[6_000]));
      assertThat(faulty.triggered()).isFalse();
      assertThatThrownBy(() -> c.write(new ByteBuffer[] {ByteBuffer.wrap(new byte[3_000]),
          ByteBuffer.wrap(new byte[3_000])})).isInstanceOf(TransportException.class)
          .hasMessageContaining("injected fault");
      assertThat(faulty.triggered()).isTrue();
      assertThat(c.isOpen()).isFalse();
      assertThat(received.get(5, TimeUnit.SECONDS)).hasSize(10_000);
      assertThat(faulty.bytesWritten()).isEqualTo(10_000);
    }
  }

  @Test
  void cutAllClosesEveryConnectionAndRefusesNewOnes() throws Exception {
    FaultyTransport faulty = FaultyTransport.cutAfter(mem, 100, FaultyTransport.Fault.CUT_ALL);
    try (Connection control = faulty.connect(listener.address());
        Connection controlPeer = listener.accept(Duration.ofSeconds(5));
        Connection data = faulty.connect(listener.address());
        Connection dataPeer = listener.accept(Duration.ofSeconds(5))) {
      assertThatThrownBy(() -> data.write(ByteBuffer.wrap(new byte[200])))
          .isInstanceOf(TransportException.class);
      assertThat(control.isOpen()).isFalse();
      assertThatThrownBy(() -> control.write(ByteBuffer.wrap(new byte[1])))
          .isInstanceOf(TransportException.class);
      assertThatThrownBy(() -> faulty.connect(listener.address()))
          .isInstanceOf(TransportException.class);
      assertThat(faulty.connectionsOpened()).isEqualTo(2);
    }
  }

  @Test
  void cutAllNowReportsHowManyConnectionsWereStillOpen() throws Exception {
    FaultyTransport faulty = FaultyTransport.passThrough(mem);
    try (Connection closed = faulty.connect(listener.address());
        Connection closedPeer = listener.accept(Duration.ofSeconds(5));
        Connection open = faulty.connect(listener.address());
        Connection openPeer = listener.accept(Duration.ofSeconds(5))) {
      closed.close();
      assertThat(faulty.cutAll()).isEqualTo(1);
      assertThat(open.isOpen()).isFalse();
    }
  }

  @Test
  void refuseNewFailsLaterConnectsAndLeavesOpenConnectionsAlone() throws Exception {
    FaultyTransport faulty = FaultyTransport.passThrough(mem);
    try (Connection c = faulty.connect(listener.address());
        Connection peer = listener.accept(Duration.ofSeconds(5))) {
      faulty.refuseNew();
      assertThatThrownBy(() -> faulty.connect(listener.address()))
          .isInstanceOf(TransportException.class).hasMessageContaining("injected fault");
      c.write(ByteBuffer.wrap(new byte[] {42}));
      ByteBuffer got = ByteBuffer.allocate(1);
      assertThat(peer.read(got)).isEqualTo(1);
      assertThat(got.get(0)).isEqualTo((byte) 42);
    }
  }

  @Test
  void holdBlocksTheWriterUntilReleased() throws Exception {
    FaultyTransport faulty = FaultyTransport.holdAfter(mem, 1_000);
    try (Connection c = faulty.connect(listener.address());
        Connection peer = listener.accept(Duration.ofSeconds(5))) {
      CompletableFuture<byte[]> received = drain(peer);
      CompletableFuture<Integer> writing = CompletableFuture.supplyAsync(() -> {
        try {
          return c.write(ByteBuffer.wrap(new byte[5_000]));
        } catch (TransportException e) {
          throw new IllegalStateException(e);
        }
      });
      assertThat(faulty.awaitTriggered(Duration.ofSeconds(5))).isTrue();
      Thread.sleep(200);
      assertThat(writing).isNotDone();
      faulty.release();
      assertThat(writing.get(5, TimeUnit.SECONDS)).isEqualTo(5_000);
      c.shutdownOutput();
      assertThat(received.get(5, TimeUnit.SECONDS)).hasSize(5_000);
    }
  }

  @Test
  void closingAHeldConnectionFailsTheHeldWriter() throws Exception {
    FaultyTransport faulty = FaultyTransport.holdAfter(mem, 0);
    try (Connection c = faulty.connect(listener.address());
        Connection peer = listener.accept(Duration.ofSeconds(5))) {
      CompletableFuture<Integer> writing = CompletableFuture.supplyAsync(() -> {
        try {
          return c.write(ByteBuffer.wrap(new byte[10]));
        } catch (TransportException e) {
          throw new IllegalStateException(e);
        }
      });
      assertThat(faulty.awaitTriggered(Duration.ofSeconds(5))).isTrue();
      c.close();
      assertThatThrownBy(() -> writing.get(5, TimeUnit.SECONDS))
          .hasRootCauseInstanceOf(TransportException.class)
          .hasStackTraceContaining("closed while held");
    }
  }
}

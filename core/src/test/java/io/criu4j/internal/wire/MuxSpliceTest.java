package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.NoLeaks;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.SplicePipe;
import io.criu4j.internal.posix.UnixSocket;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Spliced writes on a tunnel ({@link Tunnel#writeSpliced}): bytes held in a pipe go into the
 * connection's socket without a copy, framed and credited like any other write, in order with
 * copied writes, taking turns with other streams. Connections that are not plain sockets cannot
 * splice and say so.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MuxSpliceTest {
  private static final long SEED = 20240701L;

  @TempDir Path dir;

  /** A source socket feeding a pipe, as CRIU's page socket feeds the proxy. */
  private static final class Source implements AutoCloseable {
    final UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_STREAM);
    final SplicePipe pipe = SplicePipe.open(1024 * 1024);

    Source() throws Exception {
      pair.first().setBufferSizes(1024 * 1024, 0);
    }

    /** Puts {@code data[off, off + n)} into the pipe (n at most 512 KiB). */
    void load(byte[] data, int off, int n) throws Exception {
      ByteBuffer b = ByteBuffer.allocateDirect(n).put(data, off, n).flip();
      while (b.hasRemaining()) {
        pair.first().write(b);
      }
      int got = 0;
      while (got < n) {
        got += pipe.fillFrom(pair.second().fd().get(), Math.min(n - got, pipe.free()), true);
      }
    }

    @Override
    public void close() {
      pipe.close();
      pair.close();
    }
  }

  /** Reads a tunnel to its end on a background thread, granting as it goes. */
  private static CompletableFuture<byte[]> receiveTunnel(MuxConnection receiver) {
    return MuxConnectionTest.supply(
        () -> MuxConnectionTest.readAll((Tunnel) receiver.accept()));
  }

  @ParameterizedTest(name = "unix={0}")
  @ValueSource(booleans = {false, true})
  void splicedAndCopiedWritesArriveInOrderAcrossFramesAndCreditWaits(boolean unix)
      throws Exception {
    Random random = new Random(SEED);
    byte[] data = Muxes.randomBytes(random, 6 * 1024 * 1024 + 77);
    // Small frames and a small window: spliced writes span frames and wait for credit.
    MuxConfig receiverConfig = Muxes.receiverConfig().maxFramePayload(16 * 1024)
        .initialStreamWindow(96 * 1024).initialConnectionWindow(128 * 1024).build();
    try (ChannelPair channels = ChannelPair.connections(unix, dir);
        Muxes.Pair mux = Muxes.connect(channels, Muxes.senderConfig().build(), receiverConfig);
        Source source = new Source()) {
      Tunnel tunnel = mux.sender().openTunnel("pages");
      CompletableFuture<byte[]> received = receiveTunnel(mux.receiver());
      assertThat(tunnel.canSplice()).isTrue();

      int off = 0;
      int spliced = 0;
      while (off < data.length) {
        int n = Math.min(data.length - off, 1 + random.nextInt(512 * 1024));
        if (random.nextInt(3) == 0) {
          tunnel.write(ByteBuffer.wrap(data, off, n));
        } else {
          int p = Math.min(n - 1, random.nextInt(MuxConnection.SPLICE_PREFIX_MAX + 1));
          ByteBuffer prefix = ByteBuffer.wrap(data, off, p);
          source.load(data, off + p, n - p);
          while (source.pipe.buffered() > 0) {
            int sent = tunnel.writeSpliced(prefix, source.pipe, source.pipe.buffered());
            assertThat(sent).isPositive();
            assertThat(prefix.hasRemaining()).isFalse();
          }
          spliced += n - p;
        }
        off += n;
      }
      tunnel.shutdownOutput();

      byte[] got = received.get(30, TimeUnit.SECONDS);
      assertThat(got.length).isEqualTo(data.length);
      assertThat(got).isEqualTo(data);
      assertThat(spliced).isGreaterThan(data.length / 3);
      assertThat(mux.sender().stats().dataBytesSent()).isEqualTo(data.length);
      tunnel.close();
    }
  }

  @ParameterizedTest(name = "unix={0}")
  @ValueSource(booleans = {false, true})
  void aFileFinishesWhileATunnelSplicesWithoutPause(boolean unix) throws Exception {
    byte[] pages = Muxes.randomBytes(new Random(SEED), 48 * 1024 * 1024);
    byte[] file = Muxes.randomBytes(new Random(SEED + 1), 2 * 1024 * 1024);
    try (ChannelPair channels = ChannelPair.connections(unix, dir);
        Muxes.Pair mux = Muxes.connect(channels);
        Source source = new Source()) {
      Tunnel tunnel = mux.sender().openTunnel("pages");
      AtomicLong tunnelBytes = new AtomicLong();
      CompletableFuture<byte[]> receivedPages = MuxConnectionTest.supply(() -> {
        Tunnel t = (Tunnel) mux.receiver().accept();
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        t.transferTo(new java.nio.channels.WritableByteChannel() {
          @Override
          public int write(ByteBuffer src) {
            int n = src.remaining();
            byte[] b = new byte[n];
            src.get(b);
            out.write(b, 0, n);
            tunnelBytes.addAndGet(n);
            return n;
          }

          @Override
          public boolean isOpen() {
            return true;
          }

          @Override
          public void close() {}
        });
        return out.toByteArray();
      });
      CompletableFuture<Void> splicer = MuxConnectionTest.supply(() -> {
        for (int off = 0; off < pages.length; off += 512 * 1024) {
          source.load(pages, off, 512 * 1024);
          while (source.pipe.buffered() > 0) {
            tunnel.writeSpliced(ByteBuffer.allocate(0), source.pipe, source.pipe.buffered());
          }
        }
        tunnel.shutdownOutput();
        return null;
      });
      while (tunnelBytes.get() == 0) {
        Thread.sleep(1);
      }

      MuxConnectionTest.sendFile(mux.sender(), "core-1.img", file);
      InboundFile in = (InboundFile) mux.receiver().accept();
      byte[] gotFile = MuxConnectionTest.readAll(in);
      long pagesWhenFileDone = tunnelBytes.get();

      assertThat(gotFile).isEqualTo(file);
      assertThat(pagesWhenFileDone).as("tunnel bytes received when the file was complete")
          .isLessThan(pages.length);
      splicer.get(30, TimeUnit.SECONDS);
      assertThat(receivedPages.get(30, TimeUnit.SECONDS)).isEqualTo(pages);
      tunnel.close();
    }
  }

  @Test
  void connectionsThatAreNotPlainSocketsCannotSplice() throws Exception {
    for (ChannelPair channels : new ChannelPair[] {ChannelPair.pipes(), ChannelPair.loopback()}) {
      try (channels;
          Muxes.Pair mux = Muxes.connect(channels);
          Source source = new Source()) {
        Tunnel tunnel = mux.sender().openTunnel("pages");
        CompletableFuture<byte[]> received = receiveTunnel(mux.receiver());
        source.load(new byte[] {1, 2, 3}, 0, 3);

        assertThat(tunnel.canSplice()).isFalse();
        assertThatThrownBy(() -> tunnel.writeSpliced(ByteBuffer.allocate(0), source.pipe, 3))
            .isInstanceOf(IllegalStateException.class)
            .hasMessageContaining("socket connection");

        // The way out: copy the pipe's bytes and write them.
        ByteBuffer copy = ByteBuffer.allocateDirect(3);
        source.pipe.read(copy);
        tunnel.write(copy.flip());
        tunnel.shutdownOutput();
        assertThat(received.get(10, TimeUnit.SECONDS)).containsExactly(1, 2, 3);
        tunnel.close();
      }
    }
  }

  @Test
  void splicedWritesRejectATooLongPrefixOrMoreBytesThanThePipeHolds() throws Exception {
    try (ChannelPair channels = ChannelPair.connections(true, dir);
        Muxes.Pair mux = Muxes.connect(channels);
        Source source = new Source()) {
      Tunnel tunnel = mux.sender().openTunnel("pages");
      CompletableFuture<byte[]> received = receiveTunnel(mux.receiver());
      source.load(new byte[10], 0, 10);

      assertThatThrownBy(() -> tunnel.writeSpliced(
          ByteBuffer.allocate(MuxConnection.SPLICE_PREFIX_MAX + 1), source.pipe, 10))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("prefix");
      assertThatThrownBy(() -> tunnel.writeSpliced(ByteBuffer.allocate(0), source.pipe, 11))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1..10");

      assertThat(tunnel.writeSpliced(ByteBuffer.wrap(new byte[] {9}), source.pipe, 10))
          .isEqualTo(10);
      tunnel.shutdownOutput();
      byte[] expected = new byte[11];
      expected[0] = 9;
      assertThat(received.get(10, TimeUnit.SECONDS)).isEqualTo(expected);
      assertThat(Arrays.equals(expected, new byte[11])).isFalse();
      tunnel.close();
    }
  }
}

package io.criu4j.internal.posix;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.MigrationException;
import io.criu4j.NoLeaks;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link SplicePipe} and {@link SocketFd}: bytes move from one stream socket through the pipe
 * into another without passing through Java, and a duplicate socket descriptor can be closed
 * safely while a write on it is blocked.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SplicePipeTest {
  private UnixSocket.Pair source;
  private UnixSocket.Pair target;
  private SplicePipe pipe;

  @BeforeEach
  void open() throws Exception {
    source = UnixSocket.pair(Native.SOCK_STREAM);
    target = UnixSocket.pair(Native.SOCK_STREAM);
    pipe = SplicePipe.open(1024 * 1024);
  }

  @AfterEach
  void close() {
    pipe.close();
    source.close();
    target.close();
  }

  private static byte[] random(int n) {
    byte[] b = new byte[n];
    new Random(n).nextBytes(b);
    return b;
  }

  private static void writeAll(UnixSocket s, byte[] data) throws MigrationException {
    ByteBuffer b = ByteBuffer.allocateDirect(data.length).put(data).flip();
    while (b.hasRemaining()) {
      s.write(b);
    }
  }

  private static byte[] readExactly(UnixSocket s, int n) throws MigrationException {
    ByteBuffer b = ByteBuffer.allocateDirect(n);
    while (b.hasRemaining()) {
      assertThat(s.read(b)).isPositive();
    }
    byte[] out = new byte[n];
    b.flip().get(out);
    return out;
  }

  @Test
  void capacityIsWhatTheKernelGrantedAndAtLeastTheDefault() {
    assertThat(pipe.capacity()).isGreaterThanOrEqualTo(64 * 1024);
    assertThat(pipe.buffered()).isZero();
    assertThat(pipe.free()).isEqualTo(pipe.capacity());
  }

  @Test
  void bytesFromOneSocketArriveInAnotherUnchangedAndCounted() throws Exception {
    byte[] data = random(100_000);
    writeAll(source.first(), data);

    int got = pipe.fillFrom(source.second().fd().get(), data.length, true);
    while (got < data.length) {
      got += pipe.fillFrom(source.second().fd().get(), data.length - got, true);
    }
    assertThat(pipe.buffered()).isEqualTo(data.length);
    try (SocketFd out = SocketFd.duplicate(target.first().fd().get())) {
      out.send(ByteBuffer.allocateDirect(3).put(new byte[] {1, 2, 3}).flip(), true);
      out.splice(pipe, 60_000, true);
      out.splice(pipe, data.length - 60_000, false);
    }

    assertThat(pipe.buffered()).isZero();
    assertThat(readExactly(target.second(), 3)).containsExactly(1, 2, 3);
    assertThat(readExactly(target.second(), data.length)).isEqualTo(data);
  }

  @Test
  void aFillWithoutWaitingReturnsZeroWhenNothingIsThereAndMinusOneAtTheEnd() throws Exception {
    int fd = source.second().fd().get();
    assertThat(pipe.fillFrom(fd, 10, false)).isZero();
    writeAll(source.first(), new byte[] {7});
    assertThat(pipe.fillFrom(fd, 10, true)).isEqualTo(1);
    source.first().shutdownOutput();
    assertThat(pipe.fillFrom(fd, 10, true)).isEqualTo(-1);
    assertThat(pipe.fillFrom(fd, 10, false)).isEqualTo(-1);
  }

  @Test
  void heldBytesCanBeCopiedOutWhereTheTargetIsNoSocket() throws Exception {
    byte[] data = random(5000);
    writeAll(source.first(), data);
    int got = 0;
    while (got < data.length) {
      got += pipe.fillFrom(source.second().fd().get(), data.length - got, true);
    }
    ByteBuffer dst = ByteBuffer.allocateDirect(8192);
    assertThat(pipe.read(dst.limit(1000))).isEqualTo(1000);
    assertThat(pipe.read(dst.limit(8192))).isEqualTo(4000);
    assertThat(pipe.read(dst)).isZero();
    byte[] out = new byte[5000];
    dst.flip().get(out);
    assertThat(out).isEqualTo(data);
  }

  @Test
  void misuseNamesTheBadCount() throws Exception {
    assertThatThrownBy(() -> pipe.fillFrom(source.second().fd().get(), 0, true))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(": 0");
    assertThatThrownBy(() -> pipe.fillFrom(source.second().fd().get(), pipe.capacity() + 1, true))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> pipe.drainTo(target.first().fd().get(), 1, false))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0..0");
    assertThatThrownBy(() -> pipe.read(ByteBuffer.allocate(4)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("direct");
  }

  @Test
  void closingTheDuplicateEndsASpliceBlockedOnAFullSocketAndThenRefusesWrites()
      throws Exception {
    target.first().setBufferSizes(4096, 0);
    SocketFd out = SocketFd.duplicate(target.first().fd().get());
    byte[] data = random(pipe.capacity() / 2);
    CompletableFuture<Void> feeder = CompletableFuture.runAsync(() -> {
      try {
        writeAll(source.first(), data);
      } catch (MigrationException e) {
        throw new RuntimeException(e);
      }
    });
    int got = 0;
    while (got < data.length) {
      got += pipe.fillFrom(source.second().fd().get(), data.length - got, true);
    }
    feeder.get(10, TimeUnit.SECONDS);
    int held = got;
    // Nobody reads target.second(): the splice fills the socket and blocks.
    CompletableFuture<Throwable> blocked = CompletableFuture.supplyAsync(() -> {
      try {
        out.splice(pipe, held, false);
        return null;
      } catch (Exception e) {
        return e;
      }
    });
    Thread.sleep(200);
    assertThat(blocked).isNotDone();

    out.close();

    assertThat(blocked.get(10, TimeUnit.SECONDS)).isInstanceOf(MigrationException.class)
        .hasMessageContaining("EPIPE");
    assertThatThrownBy(() -> out.send(ByteBuffer.allocateDirect(1), false))
        .isInstanceOf(ClosedChannelException.class);
    out.close(); // idempotent
    byte[] head = readExactly(target.second(), 16);
    assertThat(head).isEqualTo(Arrays.copyOf(data, 16)); // what got through is in order
  }
}

package io.criu4j.internal.posix;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.MigrationException;
import io.criu4j.NoLeaks;
import io.criu4j.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** {@link UnixSocket} over a real {@code socketpair(2)}. */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class UnixSocketTest {
  private UnixSocket.Pair pair;
  private UnixSocket a;
  private UnixSocket b;

  @BeforeEach
  void openPair() throws Exception {
    pair = UnixSocket.pair(Native.SOCK_SEQPACKET);
    a = pair.first();
    b = pair.second();
  }

  @AfterEach
  void closePair() {
    pair.close();
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void bothEndsAreCloseOnExec() throws Exception {
    assertThat(a.fd().isCloseOnExec()).isTrue();
    assertThat(b.fd().isCloseOnExec()).isTrue();
  }

  @Test
  void seqpacketKeepsMessageBoundaries() throws Exception {
    a.send(bytes("one"));
    a.send(bytes("two, longer"));
    a.send(bytes("3"));

    assertThat(b.receive(1024).data()).isEqualTo(bytes("one"));
    assertThat(b.receive(1024).data()).isEqualTo(bytes("two, longer"));
    assertThat(b.receive(1024).data()).isEqualTo(bytes("3"));
  }

  @Test
  void packetOf200KiloBytesIsReceivedWhole() throws Exception {
    // Default SO_SNDBUF of a socketpair is 208 KiB: a 200 KB packet fits, and must not come
    // back cut at some read-buffer size.
    byte[] big = new byte[200_000];
    new Random(42).nextBytes(big);

    a.send(big);
    UnixSocket.Packet packet = b.receive(1 << 20);

    assertThat(packet.data()).hasSize(200_000).isEqualTo(big);
    assertThat(packet.fds()).isEmpty();
  }

  @Test
  void packetOverTheLimitIsConsumedAndReportedAndTheNextOneStillArrives() throws Exception {
    a.send(new byte[70_000]);
    a.send(bytes("next"));

    assertThatThrownBy(() -> b.receive(64 * 1024)).isInstanceOf(ProtocolException.class)
        .hasMessageContainingAll("70000", "65536");
    assertThat(b.receive(64 * 1024).data()).isEqualTo(bytes("next"));
  }

  @Test
  void descriptorsTravelWithScmRightsAndStillWork() throws Exception {
    try (Pipe pipe = Pipe.open()) {
      a.send(bytes("here is a pipe"), pipe.writeEnd().get(), pipe.readEnd().get());
      UnixSocket.Packet packet = b.receive(1024);

      assertThat(packet.data()).isEqualTo(bytes("here is a pipe"));
      assertThat(packet.fds()).hasSize(2);
      try (Fd writeEnd = packet.fds().get(0); Fd readEnd = packet.fds().get(1)) {
        assertThat(writeEnd.get()).isNotEqualTo(pipe.writeEnd().get());
        assertThat(writeEnd.isCloseOnExec()).as("received with MSG_CMSG_CLOEXEC").isTrue();
        write(writeEnd, "through the received end");
        assertThat(read(pipe.readEnd(), 64)).isEqualTo("through the received end");
        write(pipe.writeEnd(), "and back");
        assertThat(read(readEnd, 64)).isEqualTo("and back");
      }
    }
  }

  @Test
  void closedPeerReadsAsEndOfStream() throws Exception {
    a.send(bytes("last words"));
    a.close();

    assertThat(b.receive(1024).data()).isEqualTo(bytes("last words"));
    assertThat(b.receive(1024)).isNull();
    assertThat(b.awaitReadable(0)).as("readable at end of stream").isTrue();
  }

  @Test
  void awaitReadableTimesOutWhenNothingArrives() throws Exception {
    long start = System.nanoTime();
    boolean readable = b.awaitReadable(200);
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertThat(readable).isFalse();
    assertThat(millis).isBetween(190L, 5_000L);
    a.send(bytes("now"));
    assertThat(b.awaitReadable(5_000)).isTrue();
  }

  @Test
  void shutdownWakesAThreadBlockedInReceive() throws Exception {
    CompletableFuture<UnixSocket.Packet> blocked = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try {
        blocked.complete(b.receive(1024));
      } catch (Throwable e) {
        blocked.completeExceptionally(e);
      }
    });
    reader.start();
    Thread.sleep(100);

    b.shutdown();

    assertThat(blocked.get(10, TimeUnit.SECONDS)).isNull();
    reader.join();
  }

  @Test
  void sendToAClosedPeerFailsWithEpipeInsteadOfASignal() throws Exception {
    b.close();

    MigrationException e = catchThrowableOfType(
        MigrationException.class, () -> a.send(bytes("anyone?")));

    assertThat(e.errnoName()).isEqualTo("EPIPE");
    assertThat(e).hasMessageContainingAll("sendmsg", "EPIPE", "Broken pipe");
  }

  @Test
  void streamSocketsReadAndWriteBytes() throws Exception {
    try (UnixSocket.Pair stream = UnixSocket.pair(Native.SOCK_STREAM)) {
      ByteBuffer heap = ByteBuffer.wrap(bytes("heap "));
      ByteBuffer direct = ByteBuffer.allocateDirect(6).put(bytes("direct")).flip();
      assertThat(stream.first().write(heap)).isEqualTo(5);
      assertThat(stream.first().write(direct)).isEqualTo(6);
      stream.first().shutdownOutput();

      ByteBuffer in = ByteBuffer.allocate(64);
      while (stream.second().read(in) >= 0) {
        // until end of stream
      }
      assertThat(new String(in.array(), 0, in.position(), StandardCharsets.UTF_8))
          .isEqualTo("heap direct");
    }
  }

  @Test
  void directBuffersAreReadAndWrittenAtTheirPosition() throws Exception {
    try (UnixSocket.Pair stream = UnixSocket.pair(Native.SOCK_STREAM)) {
      ByteBuffer out = ByteBuffer.allocateDirect(32).put(bytes("skip|payload|tail")).flip();
      out.position(5).limit(12);
      assertThat(stream.first().write(out)).isEqualTo(7);
      assertThat(out.position()).isEqualTo(12);

      ByteBuffer in = ByteBuffer.allocateDirect(32);
      in.position(3);
      assertThat(stream.second().read(in)).isEqualTo(7);
      assertThat(in.position()).isEqualTo(10);
      byte[] got = new byte[10];
      in.flip().get(got);
      assertThat(got).isEqualTo(bytes("\0\0\0payload"));
    }
  }

  @Test
  void closeIsIdempotent() {
    a.close();
    a.close();
    a.shutdown();

    assertThat(a.fd().isOpen()).isFalse();
  }

  @Test
  void adoptedDescriptorIsOwnedAndClosedByTheSocket() throws Exception {
    int fd = Fd.duplicate(b.fd().get(), 3).release();

    UnixSocket adopted = UnixSocket.adopt(fd);
    a.send(bytes("to the copy"));
    assertThat(adopted.receive(64).data()).isEqualTo(bytes("to the copy"));
    adopted.close();

    assertThat(Native.libc().fcntl(fd, Native.F_GETFD, 0)).as("closed").isEqualTo(-1);
  }

  private static void write(Fd fd, String text) throws MigrationException {
    byte[] data = bytes(text);
    Pointer buf = Memory.allocateDirect(Native.runtime(), data.length);
    buf.put(0, data, 0, data.length);
    Native.check("write", () -> Native.libc().write(fd.get(), buf, data.length));
  }

  private static String read(Fd fd, int max) throws MigrationException {
    Pointer buf = Memory.allocateDirect(Native.runtime(), max);
    int n = (int) Native.check("read", () -> Native.libc().read(fd.get(), buf, max));
    byte[] data = new byte[n];
    buf.get(0, data, 0, n);
    return new String(data, StandardCharsets.UTF_8);
  }
}

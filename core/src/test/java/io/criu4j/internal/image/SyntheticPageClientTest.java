package io.criu4j.internal.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.ProtocolException;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.UnixSocket;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The synthetic page-server client ending a session in which it sent no pages. */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
@DisplayName("SyntheticPageClient.closeEmpty")
class SyntheticPageClientTest {

  /** What the server end received: the first header, and the bytes that followed it. */
  private record Received(ByteBuffer header, long bytesAfter) {}

  /**
   * Plays a page server on {@code server}: reads one header of {@code headerSize} bytes,
   * answers {@code status} (a native-order int32), then counts what arrives until the end.
   */
  private static CompletableFuture<Received> serve(UnixSocket server, int headerSize,
      int status) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        ByteBuffer header = ByteBuffer.allocateDirect(headerSize).order(ByteOrder.nativeOrder());
        while (header.hasRemaining()) {
          if (server.read(header) < 0) {
            throw new EOFException("the client ended inside the header");
          }
        }
        server.write(ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder())
            .putInt(status).flip());
        ByteBuffer rest = ByteBuffer.allocateDirect(4096);
        long after = 0;
        int n;
        while ((n = server.read(rest.clear())) >= 0) {
          after += n;
        }
        return new Received(header.flip(), after);
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
  }

  @ParameterizedTest(name = "header of {0} bytes")
  @ValueSource(ints = {PageStreamParser.HEADER_SIZE_V1, PageStreamParser.HEADER_SIZE_V2})
  void sendsOnlyOneCloseHeaderAndReturnsOnTheZeroAnswer(int headerSize) throws Exception {
    Received got;
    try (UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_STREAM)) {
      CompletableFuture<Received> server = serve(pair.second(), headerSize, 0);

      new SyntheticPageClient(headerSize, 4096).closeEmpty(SocketChannels.of(pair.first()));

      pair.first().shutdownOutput();
      got = server.get(10, TimeUnit.SECONDS);
    }
    ByteBuffer h = got.header();
    assertThat(h.getInt(0)).as("command").isEqualTo(PageStreamParser.PS_IOV_CLOSE)
        .isEqualTo(0x1023);
    for (int i = 4; i < headerSize; i++) {
      assertThat(h.get(i)).as("header byte %d (pages, address, image id)", i).isZero();
    }
    assertThat(got.bytesAfter()).as("bytes sent after the header").isZero();
  }

  @Test
  void aNonZeroAnswerIsAProtocolError() throws Exception {
    try (UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_STREAM)) {
      CompletableFuture<Received> server = serve(pair.second(), 24, 5);

      assertThatThrownBy(() -> new SyntheticPageClient(24, 4096)
          .closeEmpty(SocketChannels.of(pair.first())))
          .isInstanceOf(ProtocolException.class).hasMessageContaining("PS_IOV_CLOSE")
          .hasMessageContaining("status 5");

      pair.first().shutdownOutput();
      assertThat(server.get(10, TimeUnit.SECONDS).bytesAfter()).isZero();
    }
  }

  @Test
  void aServerThatEndsWithoutAnsweringIsAnEndOfFile() throws Exception {
    try (UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_STREAM)) {
      pair.second().shutdownOutput();

      assertThatThrownBy(() -> new SyntheticPageClient(32, 4096)
          .closeEmpty(SocketChannels.of(pair.first())))
          .isInstanceOf(EOFException.class).hasMessageContaining("0 of 4 bytes");
    }
  }
}

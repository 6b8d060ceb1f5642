package io.criu4j.internal.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.NoLeaks;
import io.criu4j.internal.posix.SocketFd;
import io.criu4j.spi.PeerIdentity;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The socket descriptor behind JDK channels ({@link ChannelFds}) and the duplicate a
 * {@link NioConnection} hands out for spliced writes.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ChannelFdsTest {
  @TempDir Path dir;

  private SocketChannel[] connected(boolean unix) throws Exception {
    try (ServerSocketChannel server = unix ? ServerSocketChannel.open(StandardProtocolFamily.UNIX)
        : ServerSocketChannel.open()) {
      server.bind(unix ? UnixDomainSocketAddress.of(dir.resolve("s.sock"))
          : new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      SocketChannel client = SocketChannel.open(server.getLocalAddress());
      return new SocketChannel[] {client, server.accept()};
    }
  }

  @ParameterizedTest(name = "unix={0}")
  @ValueSource(booleans = {false, true})
  void findsTheDescriptorOfBothEndsAndBytesSentThroughItArrive(boolean unix) throws Exception {
    SocketChannel[] c = connected(unix);
    try (NioConnection client = NioConnection.of(c[0], "client", PeerIdentity.of("test:a"));
        NioConnection server = NioConnection.of(c[1], "server", PeerIdentity.of("test:b"))) {
      assertThat(ChannelFds.of(c[0])).isPresent();
      assertThat(ChannelFds.of(c[1])).isPresent();
      assertThat(ChannelFds.of(c[0])).isNotEqualTo(ChannelFds.of(c[1]));

      SocketFd fd = client.spliceFd();
      assertThat(fd).isNotNull().isSameAs(client.spliceFd());
      fd.send(ByteBuffer.allocateDirect(4).put(new byte[] {1, 2, 3, 4}).flip(), false);
      ByteBuffer got = ByteBuffer.allocate(4);
      while (got.hasRemaining()) {
        server.read(got);
      }
      assertThat(got.array()).containsExactly(1, 2, 3, 4);
    }
  }

  @Test
  void aClosedConnectionHasNoDescriptorToSpliceInto() throws Exception {
    SocketChannel[] c = connected(false);
    NioConnection client = NioConnection.of(c[0], "client", PeerIdentity.of("test:a"));
    client.close();
    c[1].close();

    assertThat(client.spliceFd()).isNull();
    assertThat(ChannelFds.of(c[0])).isEmpty();
  }

  @Test
  void closingTheConnectionClosesItsDuplicateSoThePeerSeesTheEnd() throws Exception {
    SocketChannel[] c = connected(true);
    try (SocketChannel peer = c[1]) {
      NioConnection client = NioConnection.of(c[0], "client", PeerIdentity.of("test:a"));
      assertThat(client.spliceFd()).isNotNull();

      client.close();

      assertThat(peer.read(ByteBuffer.allocate(1))).isEqualTo(-1);
    }
  }
}

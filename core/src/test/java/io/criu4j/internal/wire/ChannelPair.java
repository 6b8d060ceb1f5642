package io.criu4j.internal.wire;

import io.criu4j.internal.transport.NioConnection;
import io.criu4j.spi.PeerIdentity;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.Pipe;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;

/** Two connected ends for tests: in-process pipes or a loopback TCP connection. */
final class ChannelPair implements AutoCloseable {
  /** One end: where it reads and where it writes. */
  record End(ReadableByteChannel in, WritableByteChannel out) {}

  final End a;
  final End b;

  private ChannelPair(End a, End b) {
    this.a = a;
    this.b = b;
  }

  /** Two {@link Pipe}s, one per direction. */
  static ChannelPair pipes() throws IOException {
    Pipe aToB = Pipe.open();
    Pipe bToA = Pipe.open();
    return new ChannelPair(
        new End(bToA.source(), aToB.sink()), new End(aToB.source(), bToA.sink()));
  }

  /** A loopback TCP connection; each end uses its socket channel for both directions. */
  static ChannelPair loopback() throws IOException {
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      SocketChannel client = SocketChannel.open(server.getLocalAddress());
      SocketChannel accepted = server.accept();
      client.socket().setTcpNoDelay(true);
      accepted.socket().setTcpNoDelay(true);
      return new ChannelPair(new End(client, client), new End(accepted, accepted));
    }
  }

  /**
   * A connected pair of transport {@link NioConnection}s, over loopback TCP or a Unix socket in
   * {@code dir}: the connections the TCP and Unix transports make, which allow spliced writes.
   */
  static ChannelPair connections(boolean unix, java.nio.file.Path dir) throws IOException {
    ServerSocketChannel server = unix
        ? ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)
        : ServerSocketChannel.open();
    try (server) {
      if (unix) {
        server.bind(java.net.UnixDomainSocketAddress.of(dir.resolve("mux.sock")));
      } else {
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      }
      SocketChannel client = unix
          ? SocketChannel.open(java.net.StandardProtocolFamily.UNIX)
          : SocketChannel.open();
      client.connect(server.getLocalAddress());
      SocketChannel accepted = server.accept();
      NioConnection a = NioConnection.of(client, "client", PeerIdentity.of("test:server"));
      NioConnection b = NioConnection.of(accepted, "server", PeerIdentity.of("test:client"));
      return new ChannelPair(new End(a, a), new End(b, b));
    }
  }

  @Override
  public void close() {
    for (var c : new java.nio.channels.Channel[] {a.in, a.out, b.in, b.out}) {
      try {
        c.close();
      } catch (IOException ignored) {
        // test cleanup
      }
    }
  }
}

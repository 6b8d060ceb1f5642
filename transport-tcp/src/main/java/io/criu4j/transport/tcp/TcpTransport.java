package io.criu4j.transport.tcp;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.NioConnection;
import io.criu4j.internal.transport.NioListener;
import io.criu4j.internal.transport.NioSockets;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.PeerIdentity;
import io.criu4j.spi.Transport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.nio.channels.NetworkChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The TCP {@link Transport}: addresses {@code tcp://host:port} (IPv6 hosts in brackets, such as
 * {@code tcp://[::1]:4000}), connections on JDK NIO {@link SocketChannel}s in blocking mode.
 * Listening on port 0 lets the system choose a port, which {@link Listener#address()} reports;
 * listening on {@code 0.0.0.0} or {@code [::]} accepts on every interface.
 *
 * <pre>{@code
 * Transport tcp = TcpTransport.create();
 * try (Listener listener = tcp.listen(URI.create("tcp://0.0.0.0:4000"));
 *     Connection connection = listener.accept()) { ... }
 * }</pre>
 *
 * <p>Connections read and write straight through to the socket channel; use direct buffers of
 * a few hundred KiB or more for bulk data. Defaults: {@code TCP_NODELAY} on (frames are sent at
 * once; bulk writes are large anyway), {@code SO_KEEPALIVE} on, a listen backlog of 50, and
 * socket buffer sizes left to the operating system. On Linux that is deliberate: an explicit
 * {@code SO_RCVBUF}/{@code SO_SNDBUF} turns off buffer auto-tuning (which grows buffers up to
 * {@code net.ipv4.tcp_rmem}/{@code tcp_wmem}, several MiB) and is capped at
 * {@code net.core.rmem_max}/{@code wmem_max}, often only 208 KiB; set them only after raising
 * those limits, for links whose bandwidth-delay product auto-tuning does not cover.
 *
 * <p>Timeouts behave as described at {@link Connection}: the connect timeout covers the TCP
 * handshake but not the name lookup of the host.
 *
 * <p><b>Security.</b> Plain TCP neither authenticates the peer nor encrypts: anyone who can reach
 * a listener can send it data, and anyone on the path can read or change it. Use
 * {@link TlsTransport} ({@code tls://}) between hosts; this transport is an explicit opt-in for
 * trusted networks and tests, and says so at WARN level on every {@code listen} and on the first
 * {@code connect}.
 *
 * <p>Immutable and thread-safe. Holds no resources; the listeners and connections it returns
 * belong to the caller.
 *
 * @since 0.1
 */
public final class TcpTransport implements Transport {
  /** The URI scheme, {@value}. */
  public static final String SCHEME = "tcp";

  private static final Logger log = LoggerFactory.getLogger(TcpTransport.class);
  private static final TcpTransport DEFAULT = new Builder().build();
  private static final AtomicBoolean warnedAboutConnect = new AtomicBoolean();

  private final boolean tcpNoDelay;
  private final boolean keepAlive;
  private final int sendBufferSize;
  private final int receiveBufferSize;
  private final int backlog;

  private TcpTransport(Builder builder) {
    this.tcpNoDelay = builder.tcpNoDelay;
    this.keepAlive = builder.keepAlive;
    this.sendBufferSize = builder.sendBufferSize;
    this.receiveBufferSize = builder.receiveBufferSize;
    this.backlog = builder.backlog;
  }

  /** A TCP transport with the default settings described above. */
  public static TcpTransport create() {
    return DEFAULT;
  }

  /** A builder starting from the default settings. */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from this transport's settings. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  @Override
  public String scheme() {
    return SCHEME;
  }

  @Override
  public Listener listen(URI address) throws TransportException {
    InetSocketAddress local = resolve(TcpAddresses.parse(address, true), address);
    ServerSocketChannel server = null;
    try {
      server = ServerSocketChannel.open();
      if (receiveBufferSize > 0) {
        // Set before bind, so accepted sockets inherit it and the window scale fits it.
        server.setOption(StandardSocketOptions.SO_RCVBUF, receiveBufferSize);
      }
      server.bind(local, backlog);
      String bound = TcpAddresses.format((InetSocketAddress) server.getLocalAddress());
      NioListener listener = NioListener.open(server, URI.create(bound),
          channel -> accepted(channel, bound), () -> { });
      log.warn("listening on {} with plain TCP: peers are not authenticated and data is not "
          + "encrypted; use a tls:// address unless every host that can reach it is trusted",
          bound);
      return listener;
    } catch (IOException e) {
      if (server != null) {
        NioSockets.closeQuietly(server);
      }
      throw new TransportException("cannot listen on " + address + ": " + e.getMessage(),
          Errnos.of(e), e);
    }
  }

  private Connection accepted(SocketChannel channel, String listenerAddress) throws IOException {
    configure(channel);
    String remote = TcpAddresses.format((InetSocketAddress) channel.getRemoteAddress());
    return NioConnection.of(channel, listenerAddress + " <- " + remote, PeerIdentity.of(remote));
  }

  @Override
  public Connection connect(URI address, Duration timeout) throws TransportException {
    InetSocketAddress unresolved = TcpAddresses.parse(address, false);
    long timeoutNanos = Timeouts.toNanos("timeout", timeout);
    InetSocketAddress remote = resolve(unresolved, address);
    SocketChannel channel;
    try {
      channel = SocketChannel.open();
    } catch (IOException e) {
      throw new TransportException(
          "cannot connect to " + address + ": " + e.getMessage(), Errnos.of(e), e);
    }
    try {
      configure(channel);
    } catch (IOException e) {
      NioSockets.closeQuietly(channel);
      throw new TransportException(
          "cannot connect to " + address + ": " + e.getMessage(), Errnos.of(e), e);
    }
    NioSockets.connect(channel, remote, address, timeoutNanos);
    if (!warnedAboutConnect.getAndSet(true)) {
      log.warn("connecting to {} with plain TCP: the peer is not authenticated and data is not "
          + "encrypted; use a tls:// address unless the network is trusted (warned once)",
          address);
    }
    try {
      String local = TcpAddresses.format((InetSocketAddress) channel.getLocalAddress());
      return NioConnection.of(channel, local + " -> " + address,
          PeerIdentity.of(TcpAddresses.format(remote)));
    } catch (IOException | RuntimeException e) {
      NioSockets.closeQuietly(channel);
      throw new TransportException(
          "cannot connect to " + address + ": " + e.getMessage(), Errnos.of(asIo(e)), e);
    }
  }

  private static IOException asIo(Exception e) {
    return e instanceof IOException io ? io : new IOException(e);
  }

  private static InetSocketAddress resolve(InetSocketAddress unresolved, URI address)
      throws TransportException {
    InetSocketAddress resolved =
        new InetSocketAddress(unresolved.getHostString(), unresolved.getPort());
    if (resolved.isUnresolved()) {
      throw new TransportException(
          "cannot resolve host '" + unresolved.getHostString() + "' of " + address);
    }
    return resolved;
  }

  private void configure(NetworkChannel channel) throws IOException {
    channel.setOption(StandardSocketOptions.TCP_NODELAY, tcpNoDelay);
    channel.setOption(StandardSocketOptions.SO_KEEPALIVE, keepAlive);
    if (sendBufferSize > 0) {
      channel.setOption(StandardSocketOptions.SO_SNDBUF, sendBufferSize);
    }
    if (receiveBufferSize > 0) {
      channel.setOption(StandardSocketOptions.SO_RCVBUF, receiveBufferSize);
    }
  }

  @Override
  public String toString() {
    return "TcpTransport{tcpNoDelay=" + tcpNoDelay + ", keepAlive=" + keepAlive
        + ", sendBufferSize=" + sendBufferSize + ", receiveBufferSize=" + receiveBufferSize
        + ", backlog=" + backlog + "}";
  }

  /**
   * Settings of a {@link TcpTransport}. Not thread-safe; {@link #build()} makes an immutable
   * transport.
   *
   * @since 0.1
   */
  public static final class Builder {
    private boolean tcpNoDelay = true;
    private boolean keepAlive = true;
    private int sendBufferSize;
    private int receiveBufferSize;
    private int backlog = 50;

    private Builder() {}

    private Builder(TcpTransport transport) {
      this.tcpNoDelay = transport.tcpNoDelay;
      this.keepAlive = transport.keepAlive;
      this.sendBufferSize = transport.sendBufferSize;
      this.receiveBufferSize = transport.receiveBufferSize;
      this.backlog = transport.backlog;
    }

    /** {@code TCP_NODELAY} (disables Nagle's algorithm); default {@code true}. */
    public Builder tcpNoDelay(boolean tcpNoDelay) {
      this.tcpNoDelay = tcpNoDelay;
      return this;
    }

    /** {@code SO_KEEPALIVE}; default {@code true}. */
    public Builder keepAlive(boolean keepAlive) {
      this.keepAlive = keepAlive;
      return this;
    }

    /**
     * {@code SO_SNDBUF} in bytes, or 0 (the default) to let the operating system size and
     * auto-tune it. See the class documentation before setting it.
     */
    public Builder sendBufferSize(int bytes) {
      this.sendBufferSize = checkBufferSize("sendBufferSize", bytes);
      return this;
    }

    /**
     * {@code SO_RCVBUF} in bytes, or 0 (the default) to let the operating system size and
     * auto-tune it. See the class documentation before setting it.
     */
    public Builder receiveBufferSize(int bytes) {
      this.receiveBufferSize = checkBufferSize("receiveBufferSize", bytes);
      return this;
    }

    /** How many connections a listener queues before they are accepted; default 50. */
    public Builder backlog(int backlog) {
      if (backlog < 1) {
        throw new IllegalArgumentException("backlog < 1: " + backlog);
      }
      this.backlog = backlog;
      return this;
    }

    /** An immutable transport with these settings. */
    public TcpTransport build() {
      return new TcpTransport(this);
    }

    private static int checkBufferSize(String name, int bytes) {
      if (bytes < 0) {
        throw new IllegalArgumentException(name + " < 0: " + bytes);
      }
      return bytes;
    }
  }
}

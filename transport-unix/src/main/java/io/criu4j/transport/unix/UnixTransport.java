package io.criu4j.transport.unix;

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
import java.net.BindException;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.Collections;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Unix-domain {@link Transport}: addresses {@code unix:///absolute/path} naming a socket
 * file, connections on JDK 16+ Unix-domain {@link SocketChannel}s (stream sockets) in blocking
 * mode. For a migration agent on the same host, or for tests without networking.
 *
 * <pre>{@code
 * Transport unix = UnixTransport.create();
 * try (Listener listener = unix.listen(UnixTransport.uriOf(Path.of("/run/criu4j/agent.sock")));
 *     Connection connection = listener.accept()) {
 *   PeerCredentials peer = connection.peer().credentials().orElseThrow();
 *   ...
 * }
 * }</pre>
 *
 * <p><b>Socket files.</b> {@link #listen} creates the socket file; the parent directory must
 * exist, and its permissions decide who may connect. If the path already exists:
 * <ul>
 *   <li>a file that is not a socket is never replaced: listening fails with a
 *       {@link TransportException} (errno {@code EEXIST});
 *   <li>a socket with a live listener is not taken over: listening fails (errno
 *       {@code EADDRINUSE}). Deciding that costs one connect to it, which that listener sees as a
 *       connection that closes at once;
 *   <li>a stale socket (nobody listening, for example after a crash) is removed and replaced.
 * </ul>
 * Closing the listener removes its socket file, unless the file was replaced by another one
 * meanwhile.
 *
 * <p><b>Peer check.</b> By default both ends talk only to processes running as root or as the
 * same effective user id as this process, checked with {@code SO_PEERCRED}: a listener closes
 * any other peer's connection before reading a byte from it, logs it at WARN, and goes on
 * accepting; {@code connect} refuses a listener of another user with a {@link TransportException}
 * (errno {@code EACCES}). {@link Builder#allowedPeerUids} changes the set,
 * {@link Builder#allowAnyPeer()} turns the check off.
 *
 * <p><b>Peer identity.</b> Both ends get the other process's {@linkplain
 * io.criu4j.spi.PeerCredentials credentials} (uid and gid from {@code SO_PEERCRED}, as the
 * kernel recorded them at connect, respectively listen, time). The pid is not reported: the JDK
 * does not expose it. The address is the listener's URI on the connecting side and
 * {@code unix:unnamed} on the accepting side (connecting sockets have no name).
 *
 * <p>Timeouts behave as described at {@link Connection}; a connect waits only while the
 * listener's backlog is full.
 *
 * <p>Immutable and thread-safe. Holds no resources; the listeners and connections it returns
 * belong to the caller.
 *
 * @since 0.1
 */
public final class UnixTransport implements Transport {
  /** The URI scheme, {@value}. */
  public static final String SCHEME = "unix";

  private static final Logger log = LoggerFactory.getLogger(UnixTransport.class);
  private static final UnixTransport DEFAULT = new Builder().build();
  private static final long PROBE_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(1);
  private static final int S_IFMT = 0170000;
  private static final int S_IFSOCK = 0140000;

  /** errno for a peer that is not allowed. */
  private static final int EACCES = 13;

  /** Default {@code SO_SNDBUF}/{@code SO_RCVBUF}: the usual Linux {@code net.core.wmem_max}. */
  static final int DEFAULT_BUFFER_SIZE = 4 * 1024 * 1024;

  private final int backlog;
  private final int bufferSize;
  /** The peer uids let through; null: any peer. */
  private final Set<Integer> allowedPeerUids;

  private UnixTransport(Builder builder) {
    this.backlog = builder.backlog;
    this.bufferSize = builder.bufferSize;
    this.allowedPeerUids = builder.anyPeer ? null
        : builder.allowedPeerUids != null ? builder.allowedPeerUids : defaultAllowedUids();
  }

  private static Set<Integer> defaultAllowedUids() {
    Set<Integer> uids = new TreeSet<>();
    uids.add(0);
    PeerCredentialsReader.effectiveUid().ifPresent(uids::add);
    return Collections.unmodifiableSet(uids);
  }

  /**
   * The peer uids this transport lets through, or empty if it lets any peer through (see
   * {@link Builder#allowAnyPeer()}).
   */
  public Optional<Set<Integer>> allowedPeerUids() {
    return Optional.ofNullable(allowedPeerUids);
  }

  /**
   * A Unix transport with default settings (backlog 50, 4 MiB socket buffers, peers: root and
   * this process's uid).
   */
  public static UnixTransport create() {
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

  /**
   * The address of a socket file, such as {@code unix:///run/criu4j/agent.sock}.
   *
   * @throws IllegalArgumentException if {@code socketFile} is not absolute
   */
  public static URI uriOf(Path socketFile) {
    return UnixAddresses.format(socketFile);
  }

  @Override
  public String scheme() {
    return SCHEME;
  }

  @Override
  public Listener listen(URI address) throws TransportException {
    Path path = UnixAddresses.parse(address);
    URI canonical = UnixAddresses.format(path);
    ServerSocketChannel server = bind(path, address);
    Object fileKey;
    try {
      fileKey = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
          .fileKey();
    } catch (IOException e) {
      NioSockets.closeQuietly(server);
      throw new TransportException("cannot listen on " + address + ": the socket file "
          + "vanished after bind: " + e.getMessage(), Errnos.of(e), e);
    }
    AtomicLong accepted = new AtomicLong();
    try {
      NioListener listener = NioListener.open(server, canonical,
          channel -> accepted(channel, canonical + "#" + accepted.incrementAndGet()),
          () -> removeSocketFile(path, fileKey));
      log.debug("listening on {} (peers allowed: {})", canonical,
          allowedPeerUids == null ? "any" : "uids " + allowedPeerUids);
      return allowedPeerUids == null ? listener : new PeerCheckingListener(listener);
    } catch (IOException e) {
      throw new TransportException(
          "cannot listen on " + address + ": " + e.getMessage(), Errnos.of(e), e);
    }
  }

  private ServerSocketChannel bind(Path path, URI address) throws TransportException {
    for (int attempt = 0; ; attempt++) {
      ServerSocketChannel server = null;
      try {
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path), backlog);
        return server;
      } catch (BindException e) {
        NioSockets.closeQuietly(server);
        if (attempt > 0 || !Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
          throw new TransportException("cannot listen on " + address + ": " + e.getMessage(),
              Errnos.of(e), e);
        }
        replaceStaleSocket(path, address, e);
      } catch (IOException e) {
        if (server != null) {
          NioSockets.closeQuietly(server);
        }
        throw new TransportException(
            "cannot listen on " + address + ": " + e.getMessage(), Errnos.of(e), e);
      }
    }
  }

  /** Removes {@code path} if it is a socket nobody listens on; throws otherwise. */
  private static void replaceStaleSocket(Path path, URI address, BindException cause)
      throws TransportException {
    if (!isSocket(path)) {
      throw new TransportException("cannot listen on " + address + ": " + path
          + " exists and is not a socket; refusing to replace it", Errnos.EEXIST, cause);
    }
    if (isLive(path, address)) {
      throw new TransportException("cannot listen on " + address
          + ": address already in use (another listener owns the socket)", Errnos.EADDRINUSE,
          cause);
    }
    try {
      Files.deleteIfExists(path);
      log.info("removed stale socket file {}", path);
    } catch (IOException e) {
      throw new TransportException("cannot listen on " + address
          + ": cannot remove the stale socket file: " + e.getMessage(), Errnos.of(e), e);
    }
  }

  private static boolean isSocket(Path path) throws TransportException {
    try {
      Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
      return ((Integer) mode & S_IFMT) == S_IFSOCK;
    } catch (UnsupportedOperationException | IllegalArgumentException e) {
      try {
        return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
            .isOther();
      } catch (IOException io) {
        return false;
      }
    } catch (NoSuchFileException e) {
      return true; // gone meanwhile: nothing to protect, let the next bind decide
    } catch (IOException e) {
      throw new TransportException(
          "cannot inspect " + path + " for " + "listening on it: " + e.getMessage(),
          Errnos.of(e), e);
    }
  }

  private static boolean isLive(Path path, URI address) {
    SocketChannel probe;
    try {
      probe = SocketChannel.open(StandardProtocolFamily.UNIX);
    } catch (IOException e) {
      return true; // cannot tell: do not take the address over
    }
    try {
      NioSockets.connect(probe, UnixDomainSocketAddress.of(path), address, PROBE_TIMEOUT_NANOS);
      NioSockets.closeQuietly(probe);
      return true;
    } catch (TransportException e) {
      // Refused: nobody listens. A timeout means a full backlog, so someone does.
      return e.errno() != Errnos.ECONNREFUSED && e.errno() != Errnos.ENOENT;
    }
  }

  private static void removeSocketFile(Path path, Object fileKey) {
    try {
      BasicFileAttributes now =
          Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (fileKey != null && !fileKey.equals(now.fileKey())) {
        log.debug("not removing {}: it was replaced by another file", path);
        return;
      }
      Files.deleteIfExists(path);
    } catch (NoSuchFileException e) {
      // already gone
    } catch (IOException e) {
      log.warn("cannot remove socket file {}", path, e);
    }
  }

  private Connection accepted(SocketChannel channel, String name) throws IOException {
    configureBuffers(channel);
    String remote = describe(channel.getRemoteAddress());
    PeerIdentity peer = PeerIdentity.of(remote);
    peer = withCredentials(peer, channel);
    String refusal = refusal(peer);
    if (refusal != null) {
      // Nothing was read from the peer; the listener closes the channel.
      log.warn("refused a connection on {}: {}", name, refusal);
      throw new PeerRefusedException(refusal);
    }
    return NioConnection.of(channel, name + " <- " + peer, peer);
  }

  /** Why {@code peer} is not allowed, or null if it is. */
  private String refusal(PeerIdentity peer) {
    if (allowedPeerUids == null) {
      return null;
    }
    if (peer.credentials().isEmpty()) {
      return "the peer's credentials are unknown (allowed uids: " + allowedPeerUids + ")";
    }
    int uid = peer.credentials().get().uid();
    if (allowedPeerUids.contains(uid)) {
      return null;
    }
    return "peer uid " + uid + " is not allowed (allowed uids: " + allowedPeerUids + ")";
  }

  @Override
  public Connection connect(URI address, Duration timeout) throws TransportException {
    Path path = UnixAddresses.parse(address);
    long timeoutNanos = Timeouts.toNanos("timeout", timeout);
    URI canonical = UnixAddresses.format(path);
    SocketChannel channel;
    try {
      channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    } catch (IOException e) {
      throw new TransportException(
          "cannot connect to " + address + ": " + e.getMessage(), Errnos.of(e), e);
    }
    NioSockets.connect(channel, UnixDomainSocketAddress.of(path), address, timeoutNanos);
    try {
      configureBuffers(channel);
      PeerIdentity peer = withCredentials(PeerIdentity.of(canonical.toString()), channel);
      String refusal = refusal(peer);
      if (refusal != null) {
        NioSockets.closeQuietly(channel);
        throw new TransportException("refusing to talk to the listener at " + address + ": "
            + refusal.replace("peer uid", "listener uid"), EACCES, null);
      }
      return NioConnection.of(channel, canonical + " (connected)", peer);
    } catch (IOException | RuntimeException e) {
      if (e instanceof TransportException refused) {
        throw refused;
      }
      NioSockets.closeQuietly(channel);
      throw new TransportException("cannot connect to " + address + ": " + e.getMessage(),
          e instanceof IOException io ? Errnos.of(io) : 0, e);
    }
  }

  /**
   * Sets both socket buffers. A Unix stream socket has no buffer auto-tuning: with the default
   * (about 208 KiB) a large write wakes the reader many times and each side waits on the other.
   * The kernel caps the values at {@code net.core.wmem_max}/{@code rmem_max}; that is fine.
   */
  private void configureBuffers(SocketChannel channel) throws IOException {
    if (bufferSize == 0) {
      return;
    }
    channel.setOption(StandardSocketOptions.SO_SNDBUF, bufferSize);
    channel.setOption(StandardSocketOptions.SO_RCVBUF, bufferSize);
    if (log.isTraceEnabled()) {
      log.trace("socket buffers: SO_SNDBUF {} SO_RCVBUF {} (asked for {})",
          channel.getOption(StandardSocketOptions.SO_SNDBUF),
          channel.getOption(StandardSocketOptions.SO_RCVBUF), bufferSize);
    }
  }

  private static PeerIdentity withCredentials(PeerIdentity peer, SocketChannel channel)
      throws IOException {
    return PeerCredentialsReader.read(channel).map(peer::withCredentials).orElse(peer);
  }

  private static String describe(java.net.SocketAddress address) {
    if (address instanceof UnixDomainSocketAddress unix
        && !unix.getPath().toString().isEmpty()) {
      return UnixAddresses.format(unix.getPath().toAbsolutePath()).toString();
    }
    return "unix:unnamed";
  }

  @Override
  public String toString() {
    return "UnixTransport{backlog=" + backlog + ", bufferSize=" + bufferSize
        + ", allowedPeerUids="
        + (allowedPeerUids == null ? "any" : allowedPeerUids) + "}";
  }

  /** A peer that the uid check turned away; never leaves this class. */
  private static final class PeerRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    PeerRefusedException(String message) {
      super(message);
    }
  }

  /**
   * A listener that skips connections the uid check refused (already logged and closed) and
   * goes on waiting for the next one, within the caller's timeout.
   */
  private static final class PeerCheckingListener implements Listener {
    private final Listener delegate;

    PeerCheckingListener(Listener delegate) {
      this.delegate = delegate;
    }

    @Override
    public URI address() {
      return delegate.address();
    }

    @Override
    public Connection accept() throws TransportException {
      return accept(Duration.ZERO);
    }

    @Override
    public Connection accept(Duration timeout) throws TransportException {
      long timeoutNanos = Timeouts.toNanos("timeout", timeout);
      long start = System.nanoTime();
      while (true) {
        Duration left = Duration.ZERO;
        if (timeoutNanos != 0) {
          long leftNanos = timeoutNanos - (System.nanoTime() - start);
          if (leftNanos <= 0) {
            throw new TransportException("no connection to " + address() + " within "
                + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
          }
          left = Duration.ofNanos(leftNanos);
        }
        try {
          return delegate.accept(left);
        } catch (TransportException e) {
          if (e.errno() == Errnos.ETIMEDOUT && timeoutNanos != 0) {
            throw new TransportException("no connection to " + address() + " within "
                + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
          }
          if (!(e.getCause() instanceof PeerRefusedException)) {
            throw e;
          }
        }
      }
    }

    @Override
    public boolean isOpen() {
      return delegate.isOpen();
    }

    @Override
    public void close() {
      delegate.close();
    }

    @Override
    public String toString() {
      return delegate.toString();
    }
  }

  /**
   * Settings of a {@link UnixTransport}. Not thread-safe; {@link #build()} makes an immutable
   * transport.
   *
   * @since 0.1
   */
  public static final class Builder {
    private int backlog = 50;
    private int bufferSize = DEFAULT_BUFFER_SIZE;
    private Set<Integer> allowedPeerUids;
    private boolean anyPeer;

    private Builder() {}

    private Builder(UnixTransport transport) {
      this.backlog = transport.backlog;
      this.bufferSize = transport.bufferSize;
      this.allowedPeerUids = transport.allowedPeerUids;
      this.anyPeer = transport.allowedPeerUids == null;
    }

    /**
     * The user ids of the peers this transport talks to, checked with {@code SO_PEERCRED}: a
     * listener closes a connection from any other uid before reading from it (and logs it at
     * WARN), and {@code connect} refuses a listener run by any other uid. Replaces the default,
     * root and the effective uid of this process.
     *
     * @throws IllegalArgumentException if {@code uids} is empty or holds a negative id
     */
    public Builder allowedPeerUids(int... uids) {
      if (uids.length == 0) {
        throw new IllegalArgumentException("allowedPeerUids is empty; to allow any peer, "
            + "call allowAnyPeer()");
      }
      Set<Integer> set = new TreeSet<>();
      for (int uid : uids) {
        if (uid < 0) {
          throw new IllegalArgumentException("negative uid in allowedPeerUids: " + uid);
        }
        set.add(uid);
      }
      this.allowedPeerUids = Collections.unmodifiableSet(set);
      this.anyPeer = false;
      return this;
    }

    /**
     * Turns the uid check off: any process that can open the socket file may connect, so the
     * file's directory permissions are the only protection. Not recommended.
     */
    public Builder allowAnyPeer() {
      this.anyPeer = true;
      this.allowedPeerUids = null;
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

    /**
     * {@code SO_SNDBUF} and {@code SO_RCVBUF} of each connection in bytes (both ends set their
     * own), or 0 for the operating system's default (about 208 KiB). Default 4 MiB; Linux caps
     * it at {@code net.core.wmem_max} and {@code rmem_max}. Large buffers let one large write
     * pass with few wake-ups of the reader; each connection can then hold up to this much
     * unread data in kernel memory.
     *
     * @throws IllegalArgumentException if {@code bytes} is negative
     */
    public Builder bufferSize(int bytes) {
      if (bytes < 0) {
        throw new IllegalArgumentException("bufferSize < 0: " + bytes);
      }
      this.bufferSize = bytes;
      return this;
    }

    /** An immutable transport with these settings. */
    public UnixTransport build() {
      return new UnixTransport(this);
    }
  }
}

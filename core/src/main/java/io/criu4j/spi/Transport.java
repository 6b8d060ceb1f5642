package io.criu4j.spi;

import io.criu4j.TransportException;
import java.net.URI;
import java.time.Duration;

/**
 * A way to open byte-stream connections between two endpoints named by URIs of one scheme, such
 * as {@code tcp://host:port}. The destination {@linkplain #listen listens}, the source
 * {@linkplain #connect connects}, and both sides then exchange bytes through a {@link Connection}.
 *
 * <p>Obtain a transport from its explicit factory (for example {@code TcpTransport.create()}) or
 * by scheme through {@link Transports#forUri(URI)}. For tests, {@link Transports#inMemory()}
 * connects endpoints inside one JVM, and {@code io.criu4j.testing.TransportContractTest} (core
 * test-jar) checks that an implementation keeps the contract below.
 *
 * <p><b>Addresses.</b> A URI that this transport cannot use, because its scheme is not
 * {@link #scheme()} or it is malformed for the scheme, is rejected with an
 * {@link IllegalArgumentException} whose message contains the URI. Failures that depend on the
 * world (nobody listening, address in use, unknown host) are {@link TransportException}s whose
 * message also names the URI.
 *
 * <p><b>Timeouts.</b> Every timeout is a {@link Duration}; {@link Duration#ZERO} means "no
 * timeout" and negative durations are rejected with {@link IllegalArgumentException}. A timeout
 * is reported as a {@link TransportException} whose {@link TransportException#errnoName()
 * errnoName()} is {@code ETIMEDOUT}.
 *
 * <p><b>Resources.</b> A transport holds no operating-system resources itself and needs no
 * closing; the listeners and connections it returns belong to the caller, who must close them.
 *
 * <p>Implementations are immutable and thread-safe.
 *
 * @since 0.1
 */
public interface Transport {

  /** The connect timeout {@link #connect(URI)} uses: 30 seconds. */
  Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(30);

  /** The URI scheme this transport serves, in lower case, such as {@code "tcp"}. */
  String scheme();

  /**
   * Starts listening on {@code address}. Where the scheme allows it (TCP port 0) the operating
   * system chooses the concrete address, which {@link Listener#address()} reports.
   *
   * @return an open listener, owned by the caller
   * @throws IllegalArgumentException if {@code address} is not a valid address of this transport
   * @throws TransportException if the address is in use or cannot be bound
   */
  Listener listen(URI address) throws TransportException;

  /**
   * Connects to a listener at {@code address}, waiting at most {@code timeout} for the
   * connection to be established (name resolution is not covered by the timeout). A connection
   * counts as established once the listener's operating system queued it, before
   * {@link Listener#accept()} returns it on the other side.
   *
   * @param timeout the connect timeout; {@link Duration#ZERO} waits as long as the operating
   *     system does
   * @return an open connection, owned by the caller
   * @throws IllegalArgumentException if {@code address} is not a valid address of this transport,
   *     or {@code timeout} is negative
   * @throws TransportException if nobody listens at {@code address}, the connection is refused, or
   *     the timeout elapses (errno {@code ETIMEDOUT}); the message names {@code address}
   */
  Connection connect(URI address, Duration timeout) throws TransportException;

  /**
   * Connects to {@code address} with the {@linkplain #DEFAULT_CONNECT_TIMEOUT default connect
   * timeout}; see {@link #connect(URI, Duration)}.
   */
  default Connection connect(URI address) throws TransportException {
    return connect(address, DEFAULT_CONNECT_TIMEOUT);
  }
}

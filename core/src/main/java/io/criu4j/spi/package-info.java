/**
 * The transport service-provider interface: connection-oriented byte streams between a source
 * and a destination host, addressed by URI ({@code tcp://host:port}, {@code unix:///path},
 * {@code mem://name}).
 *
 * <p>A {@link io.criu4j.spi.Transport} opens {@link io.criu4j.spi.Listener}s and
 * {@link io.criu4j.spi.Connection}s; a {@link io.criu4j.spi.TransportProvider} makes a transport
 * discoverable by URI scheme through {@link java.util.ServiceLoader}, and
 * {@link io.criu4j.spi.Transports} does the discovery. Transports move bytes only: framing,
 * multiplexing and flow control between logical streams live above this layer.
 *
 * <p><b>Stability.</b> This package is for transport implementers and is less stable than the
 * rest of the public API: methods may be added to its interfaces in minor releases. Code that
 * only <em>uses</em> transports (through {@code Transports} or the explicit factories such as
 * {@code TcpTransport.create()}) is not affected by such additions.
 *
 * <p><b>Testing.</b> Every implementation should pass
 * {@code io.criu4j.testing.TransportContractTest} from the {@code criu4j-core} test-jar;
 * {@link io.criu4j.spi.Transports#inMemory()} gives a transport that needs no sockets.
 *
 * @since 0.1
 */
package io.criu4j.spi;

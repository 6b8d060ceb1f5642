/**
 * The TCP transport: {@code tcp://host:port} addresses over JDK NIO socket channels. Create it
 * with {@link io.criu4j.transport.tcp.TcpTransport#create()} or find it with
 * {@code Transports.forUri(uri)}.
 *
 * @since 0.1
 */
package io.criu4j.transport.tcp;

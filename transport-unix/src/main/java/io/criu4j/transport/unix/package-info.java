/**
 * The Unix-domain transport: {@code unix:///absolute/path} addresses over JDK 16+ Unix-domain
 * socket channels, with kernel-verified peer credentials. Create it with
 * {@link io.criu4j.transport.unix.UnixTransport#create()} or find it with
 * {@code Transports.forUri(uri)}.
 *
 * @since 0.1
 */
package io.criu4j.transport.unix;

package io.criu4j.transport.tcp;

import io.criu4j.spi.Transport;
import io.criu4j.spi.TransportProvider;

/**
 * Registers {@link TcpTransport} for the {@code tcp} scheme with {@link java.util.ServiceLoader}.
 * Always available.
 *
 * <p>Thread-safe; stateless.
 *
 * @since 0.1
 */
public final class TcpTransportProvider implements TransportProvider {

  /** Called by {@link java.util.ServiceLoader}. */
  public TcpTransportProvider() {}

  @Override
  public String scheme() {
    return TcpTransport.SCHEME;
  }

  @Override
  public boolean isAvailable() {
    return true;
  }

  @Override
  public Transport create() {
    return TcpTransport.create();
  }
}

package io.criu4j.transport.tcp;

import io.criu4j.spi.Transport;
import io.criu4j.spi.TransportProvider;

/**
 * Registers {@link TlsTransport} for the {@code tls} scheme with
 * {@link java.util.ServiceLoader}. Always available; {@link #create()} takes the key material
 * from system properties (see {@link TlsTransport#fromSystemProperties()}) and fails with an
 * {@link IllegalStateException} that says which ones when they are not set.
 *
 * <p>Thread-safe; stateless.
 *
 * @since 0.1
 */
public final class TlsTransportProvider implements TransportProvider {

  /** Called by {@link java.util.ServiceLoader}. */
  public TlsTransportProvider() {}

  @Override
  public String scheme() {
    return TlsTransport.SCHEME;
  }

  @Override
  public boolean isAvailable() {
    return true;
  }

  @Override
  public Transport create() {
    return TlsTransport.fromSystemProperties();
  }
}

package io.criu4j.transport.unix;

import io.criu4j.spi.Transport;
import io.criu4j.spi.TransportProvider;
import java.util.Locale;

/**
 * Registers {@link UnixTransport} for the {@code unix} scheme with
 * {@link java.util.ServiceLoader}. Available on Linux.
 *
 * <p>Thread-safe; stateless.
 *
 * @since 0.1
 */
public final class UnixTransportProvider implements TransportProvider {

  /** Called by {@link java.util.ServiceLoader}. */
  public UnixTransportProvider() {}

  @Override
  public String scheme() {
    return UnixTransport.SCHEME;
  }

  /** True on Linux, where CRIU runs and {@code SO_PEERCRED} is supported. */
  @Override
  public boolean isAvailable() {
    return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux");
  }

  @Override
  public Transport create() {
    return UnixTransport.create();
  }
}

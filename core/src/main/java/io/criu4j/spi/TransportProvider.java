package io.criu4j.spi;

import java.util.ServiceLoader;

/**
 * Makes a {@link Transport} discoverable by URI scheme. Implementations are registered for
 * {@link ServiceLoader} in {@code META-INF/services/io.criu4j.spi.TransportProvider} and found by
 * {@link Transports#forUri(java.net.URI)}.
 *
 * <p>Implementations must have a public no-argument constructor that does no work and never
 * throws; checks that can fail (a native library, an operating-system feature) belong in
 * {@link #isAvailable()}, which must not throw either.
 *
 * <p>Implementations are thread-safe.
 *
 * @since 0.1
 */
public interface TransportProvider {

  /** The URI scheme the provided transport serves, in lower case, such as {@code "tcp"}. */
  String scheme();

  /**
   * Whether the transport works in this JVM on this operating system. Unavailable providers are
   * skipped by discovery.
   */
  boolean isAvailable();

  /**
   * Preference among available providers of the same scheme, from 0 to 10; the highest wins.
   * The transports shipped with criu4j use 5, so a provider meant to replace one should use a
   * higher value.
   */
  default int priority() {
    return 5;
  }

  /** A transport with default settings. Called only when {@link #isAvailable()} is true. */
  Transport create();
}

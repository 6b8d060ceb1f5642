package io.criu4j.spi;

import io.criu4j.TransportException;
import java.net.URI;
import java.time.Duration;

/**
 * The listening end of a {@link Transport}: hands out one {@link Connection} per peer that
 * {@linkplain Transport#connect connected} to its {@linkplain #address() address}.
 *
 * <p><b>Ownership.</b> The caller that opened the listener owns it and must close it. Closing the
 * listener does not close connections it already accepted; those belong to whoever called
 * {@code accept}. Connections that were queued but not yet accepted are discarded on close.
 *
 * <p><b>Thread safety.</b> Thread-safe. Concurrent {@code accept} calls are served one at a
 * time; {@link #close()} may be called from any thread and makes every blocked or later
 * {@code accept} fail with a {@link TransportException}.
 *
 * @since 0.1
 */
public interface Listener extends AutoCloseable {

  /**
   * The address peers connect to: the concrete bound address, so a listener opened on
   * {@code tcp://127.0.0.1:0} reports its actual port here.
   */
  URI address();

  /**
   * Waits for the next connection, for as long as it takes or until the listener is closed.
   *
   * @return a connection owned by the caller
   * @throws TransportException if the listener is or gets closed, the calling thread is
   *     interrupted (the listener stays open and the interrupt status stays set), or setting up
   *     the accepted connection fails (the listener stays open)
   */
  Connection accept() throws TransportException;

  /**
   * Waits at most {@code timeout} for the next connection. A timeout leaves the listener open
   * and usable.
   *
   * @param timeout how long to wait; {@link Duration#ZERO} waits without limit, like
   *     {@link #accept()}
   * @return a connection owned by the caller
   * @throws IllegalArgumentException if {@code timeout} is negative
   * @throws TransportException with errno {@code ETIMEDOUT} if no connection arrives in time, or
   *     for the reasons given at {@link #accept()}
   */
  Connection accept(Duration timeout) throws TransportException;

  /** Whether the listener is still open. */
  boolean isOpen();

  /**
   * Stops listening and releases the address (a Unix listener removes its socket file). Blocked
   * {@code accept} calls fail with a {@link TransportException}. It is safe to close a listener
   * more than once; later calls do nothing. Never throws.
   */
  @Override
  void close();
}

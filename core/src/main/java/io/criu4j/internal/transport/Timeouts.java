package io.criu4j.internal.transport;

import java.time.Duration;
import java.util.Objects;

/**
 * Validation and formatting of transport timeouts: {@link Duration#ZERO} means "none", negative
 * durations are misuse.
 *
 * <p>Thread-safe; stateless.
 */
public final class Timeouts {
  private Timeouts() {}

  /**
   * Returns {@code timeout} in nanoseconds (saturated), after checking it.
   *
   * @param name the parameter name for the message, such as {@code "readTimeout"}
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public static long toNanos(String name, Duration timeout) {
    Objects.requireNonNull(timeout, name);
    if (timeout.isNegative()) {
      throw new IllegalArgumentException(name + " < 0: " + timeout);
    }
    try {
      return timeout.toNanos();
    } catch (ArithmeticException e) {
      return Long.MAX_VALUE;
    }
  }

  /** A short human-readable form of a positive timeout in nanoseconds, such as {@code 250 ms}. */
  public static String format(long nanos) {
    if (nanos % 1_000_000_000L == 0) {
      return nanos / 1_000_000_000L + " s";
    }
    if (nanos % 1_000_000L == 0) {
      return nanos / 1_000_000L + " ms";
    }
    return nanos / 1_000L + " us";
  }
}

package io.criu4j;

import io.criu4j.internal.posix.Errno;
import java.io.IOException;

/**
 * Root of every checked failure criu4j reports: I/O and system-call failures, CRIU failures and
 * protocol violations. Misuse of the API (bad arguments, wrong state) is reported with
 * {@link IllegalArgumentException} or {@link IllegalStateException} instead.
 *
 * <p>When the failure comes from the operating system, {@link #errno()} holds the error number
 * and {@link #errnoName()} its symbolic name (for example {@code ESRCH}); otherwise they are
 * {@code 0} and {@code null}.
 *
 * <p>Instances are immutable apart from the suppressed-exception list inherited from
 * {@link Throwable}.
 *
 * @since 0.1
 */
public class MigrationException extends IOException {
  private static final long serialVersionUID = 1L;

  private final int errno;

  public MigrationException(String message) {
    this(message, 0, null);
  }

  public MigrationException(String message, Throwable cause) {
    this(message, 0, cause);
  }

  public MigrationException(String message, int errno, Throwable cause) {
    super(message, cause);
    this.errno = errno;
  }

  /** The operating-system error number behind this failure, or {@code 0} if there is none. */
  public int errno() {
    return errno;
  }

  /** The symbolic name of {@link #errno()} (such as {@code ECONNRESET}), or {@code null}. */
  public String errnoName() {
    return errno == 0 ? null : Errno.name(errno);
  }
}

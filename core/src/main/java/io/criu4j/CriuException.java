package io.criu4j;

import io.criu4j.internal.posix.Errno;
import java.nio.file.Path;
import java.util.List;

/**
 * CRIU answered a request with failure. Carries the request type (such as {@code DUMP}), CRIU's
 * error number ({@code cr_errno}) and message ({@code cr_errmsg}), and where CRIU's log was
 * written together with its last error lines.
 *
 * @since 0.1
 */
public class CriuException extends MigrationException {
  private static final long serialVersionUID = 1L;

  private final String request;
  private final String criuMessage;
  private final transient Path logFile;
  private final List<String> logTail;

  public CriuException(String request, int criuErrno, String criuMessage, Path logFile,
      List<String> logTail, Throwable cause) {
    super(format(request, criuErrno, criuMessage, logFile, logTail), criuErrno, cause);
    this.request = request;
    this.criuMessage = criuMessage;
    this.logFile = logFile;
    this.logTail = logTail == null ? List.of() : List.copyOf(logTail);
  }

  private static String format(String request, int errno, String message, Path logFile,
      List<String> tail) {
    StringBuilder sb = new StringBuilder("CRIU ").append(request).append(" failed");
    if (errno != 0) {
      sb.append(": ").append(Errno.name(errno));
    }
    if (message != null && !message.isBlank()) {
      sb.append(": ").append(message.strip());
    }
    if (logFile != null) {
      sb.append(" (log: ").append(logFile).append(')');
    }
    if (tail != null && !tail.isEmpty()) {
      sb.append(System.lineSeparator()).append(String.join(System.lineSeparator(), tail));
    }
    return sb.toString();
  }

  /** The request CRIU failed, by its protocol name: {@code DUMP}, {@code RESTORE}, ... */
  public String request() {
    return request;
  }

  /** CRIU's {@code cr_errno}; {@code 0} if CRIU gave none. Same as {@link #errno()}. */
  public int criuErrno() {
    return errno();
  }

  /** CRIU's own message ({@code cr_errmsg}), or {@code null}. */
  public String criuMessage() {
    return criuMessage;
  }

  /** CRIU's log file for the failed request, or {@code null} if it wrote none. */
  public Path logFile() {
    return logFile;
  }

  /** The last error lines of {@link #logFile()}; empty if there is no log. */
  public List<String> logTail() {
    return logTail;
  }
}

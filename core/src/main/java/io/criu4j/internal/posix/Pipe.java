package io.criu4j.internal.posix;

import io.criu4j.MigrationException;

/**
 * A {@code pipe2(O_CLOEXEC)}: the read end and the write end, each an owned {@link Fd}.
 * Closing the pipe closes whichever ends are still open; idempotent.
 */
public record Pipe(Fd readEnd, Fd writeEnd) implements AutoCloseable {
  public static Pipe open() throws MigrationException {
    int[] fds = new int[2];
    Native.check("pipe2(O_CLOEXEC)", () -> Native.libc().pipe2(fds, Native.O_CLOEXEC));
    return new Pipe(Fd.adopt(fds[0]), Fd.adopt(fds[1]));
  }

  @Override
  public void close() {
    readEnd.close();
    writeEnd.close();
  }
}

package io.criu4j.internal.transport;

import io.criu4j.internal.posix.SocketFd;

/**
 * A connection whose bytes go straight into a kernel socket, so that data can be spliced into it
 * ({@code splice(2)}) without passing through user space. Implemented by the plain TCP and Unix
 * connections; connections that transform the bytes (TLS) or are not sockets (in-memory) do not
 * implement it, and their users copy.
 *
 * <p>Not part of the public SPI: an optional capability found with {@code instanceof}.
 */
public interface SpliceTarget {
  /**
   * The connection's socket for writing with {@code send}/{@code splice}, or {@code null} if
   * that is not possible here. The connection owns it and closes it when it closes. Writes
   * through it must be serialised with every other write to the connection.
   */
  SocketFd spliceFd();
}

package io.criu4j.spi;

import java.util.Objects;
import java.util.OptionalLong;

/**
 * Operating-system credentials of the process at the other end of a local connection, as the
 * kernel recorded them when the connection (or, for the connecting side, the listener) was set
 * up ({@code SO_PEERCRED} on Linux). They cannot be forged by the peer.
 *
 * @param uid the peer's effective user id
 * @param gid the peer's effective group id
 * @param pid the peer's process id, if the transport can tell
 * @since 0.1
 */
public record PeerCredentials(int uid, int gid, OptionalLong pid) {

  /** Validates the components. */
  public PeerCredentials {
    Objects.requireNonNull(pid, "pid");
  }

  /** Credentials without a process id. */
  public static PeerCredentials of(int uid, int gid) {
    return new PeerCredentials(uid, gid, OptionalLong.empty());
  }
}

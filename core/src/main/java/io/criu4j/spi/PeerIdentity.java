package io.criu4j.spi;

import java.security.Principal;
import java.util.Objects;
import java.util.Optional;

/**
 * Who is at the other end of a {@link Connection}: always an address, plus whatever the
 * transport can vouch for.
 *
 * <ul>
 *   <li>{@link #address()}: the peer's address for logs and messages, such as
 *       {@code tcp://10.0.0.7:51234}, {@code unix:///run/criu4j.sock} or {@code unix:unnamed}
 *       (a connecting Unix socket normally has no name). It is not necessarily connectable.
 *   <li>{@link #credentials()}: kernel-verified process credentials, for Unix-domain connections.
 *   <li>{@link #principal()}: an authenticated principal, for transports that authenticate the
 *       peer, such as the X.500 subject of a TLS client certificate. Empty for TCP, Unix and
 *       in-memory connections.
 * </ul>
 *
 * <p>Build instances with {@link #of(String)} and the {@code with...} methods, so new optional
 * components can be added without breaking transports.
 *
 * @param address the peer's address, never blank
 * @param credentials the peer's process credentials, if known
 * @param principal the peer's authenticated principal, if the transport authenticates peers
 * @since 0.1
 */
public record PeerIdentity(
    String address, Optional<PeerCredentials> credentials, Optional<Principal> principal) {

  /** Validates the components. */
  public PeerIdentity {
    Objects.requireNonNull(address, "address");
    Objects.requireNonNull(credentials, "credentials");
    Objects.requireNonNull(principal, "principal");
    if (address.isBlank()) {
      throw new IllegalArgumentException("peer address is blank: '" + address + "'");
    }
  }

  /** An identity that consists of an address only. */
  public static PeerIdentity of(String address) {
    return new PeerIdentity(address, Optional.empty(), Optional.empty());
  }

  /** This identity with the given process credentials. */
  public PeerIdentity withCredentials(PeerCredentials credentials) {
    return new PeerIdentity(address, Optional.of(credentials), principal);
  }

  /** This identity with the given authenticated principal. */
  public PeerIdentity withPrincipal(Principal principal) {
    return new PeerIdentity(address, credentials, Optional.of(principal));
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder(address);
    credentials.ifPresent(c -> {
      sb.append(" uid=").append(c.uid()).append(" gid=").append(c.gid());
      c.pid().ifPresent(pid -> sb.append(" pid=").append(pid));
    });
    principal.ifPresent(p -> sb.append(" principal=").append(p.getName()));
    return sb.toString();
  }
}

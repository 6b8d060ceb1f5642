package io.criu4j.transport.unix;

import io.criu4j.spi.PeerCredentials;
import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import jnr.posix.Group;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;
import jnr.posix.Passwd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the peer's {@code SO_PEERCRED} from a JDK Unix-domain channel. The JDK reports user and
 * group <em>names</em> (from {@code getpwuid}/{@code getgrgid}, or the number itself when there
 * is no entry); this class maps them back to numeric ids with {@code getpwnam}/{@code getgrnam}
 * through jnr-posix. The JDK does not expose the peer's pid, so it is left empty.
 *
 * <p>Thread-safe.
 */
final class PeerCredentialsReader {
  private static final Logger log = LoggerFactory.getLogger(PeerCredentialsReader.class);

  private PeerCredentialsReader() {}

  /**
   * The credentials of {@code channel}'s peer, or empty if the names cannot be mapped to ids.
   *
   * @throws IOException if the kernel does not report credentials
   */
  static Optional<PeerCredentials> read(SocketChannel channel) throws IOException {
    UnixDomainPrincipal principal = channel.getOption(ExtendedSocketOptions.SO_PEERCRED);
    String user = principal.user().getName();
    String group = principal.group().getName();
    Integer uid = uid(user);
    Integer gid = gid(group);
    if (uid == null || gid == null) {
      log.warn("cannot map peer user '{}' / group '{}' to numeric ids; "
          + "reporting no credentials", user, group);
      return Optional.empty();
    }
    return Optional.of(PeerCredentials.of(uid, gid));
  }

  /** The effective uid of this process, from {@code /proc/self/status}; empty if unknown. */
  static OptionalInt effectiveUid() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          String[] ids = line.substring(4).trim().split("\\s+");
          return OptionalInt.of(Integer.parseInt(ids[1]));
        }
      }
    } catch (IOException | RuntimeException e) {
      log.warn("cannot read this process's uid; only root is allowed as a peer by default", e);
    }
    return OptionalInt.empty();
  }

  private static Integer uid(String name) {
    POSIX posix = Native.posix();
    if (posix != null) {
      try {
        Passwd entry = posix.getpwnam(name);
        if (entry != null) {
          return (int) entry.getUID();
        }
      } catch (RuntimeException | LinkageError e) {
        log.debug("getpwnam({}) failed", name, e);
      }
    }
    return numeric(name);
  }

  private static Integer gid(String name) {
    POSIX posix = Native.posix();
    if (posix != null) {
      try {
        Group entry = posix.getgrnam(name);
        if (entry != null) {
          return (int) entry.getGID();
        }
      } catch (RuntimeException | LinkageError e) {
        log.debug("getgrnam({}) failed", name, e);
      }
    }
    return numeric(name);
  }

  /** The JDK names an id without a passwd/group entry by its number. */
  private static Integer numeric(String name) {
    try {
      return Integer.parseUnsignedInt(name);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  /** Loads jnr-posix on first use only; a failure is logged once and leaves it null. */
  private static final class Native {
    private static final POSIX POSIX_OR_NULL = load();

    static POSIX posix() {
      return POSIX_OR_NULL;
    }

    private static POSIX load() {
      try {
        POSIX posix = POSIXFactory.getNativePOSIX();
        return posix.isNative() ? posix : null;
      } catch (RuntimeException | LinkageError e) {
        log.warn("jnr-posix is not usable; Unix peer credentials are reported only for users "
            + "and groups without names", e);
        return null;
      }
    }
  }
}

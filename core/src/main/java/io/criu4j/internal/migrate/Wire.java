package io.criu4j.internal.migrate;

import io.criu4j.CriuVersion;
import io.criu4j.ProtocolException;
import io.criu4j.internal.rpc.ControlProto.Envelope;
import io.criu4j.internal.rpc.ControlProto.Version;
import java.nio.ByteBuffer;
import java.util.UUID;

/** Constants and conversions of the control protocol. */
final class Wire {
  static final String CONTROL_MAGIC = "C4JC";
  static final String IMAGE_MAGIC = "C4JI";
  static final int PROTOCOL = 1;
  /**
   * The "round" in the preamble of the post-copy connection, which carries CRIU's lazy-pages
   * conversation ({@link LazyPageRelay}) instead of an image set.
   */
  static final int LAZY_PAGES_ROUND = -1;
  /**
   * Post-copy: how long the destination waits for data from the source before it gives up and
   * kills its restored copy, and how long the source, having lost the connection, keeps its
   * frozen original before letting CRIU resume it. The fence is the longer, so that the copy is
   * stopped first.
   */
  static final java.time.Duration POST_COPY_STALL = java.time.Duration.ofSeconds(10);
  static final java.time.Duration POST_COPY_FENCE = java.time.Duration.ofSeconds(20);
  /**
   * Post-copy: the destination's watchdog kills the copy when the agent has not renewed this
   * lease (every {@link #POST_COPY_BEAT}) in time: the agent died or stalled. Shorter than the
   * fence, for the same reason.
   */
  static final java.time.Duration POST_COPY_LEASE = java.time.Duration.ofSeconds(5);
  static final java.time.Duration POST_COPY_BEAT = java.time.Duration.ofSeconds(1);

  private Wire() {}

  static Version version(CriuVersion v) {
    Version.Builder b = Version.newBuilder().setMajor(v.major()).setMinor(v.minor())
        .setSublevel(v.sublevel()).setExtra(v.extra());
    if (v.gitId() != null) {
      b.setGitId(v.gitId());
    }
    return b.build();
  }

  /** The peer's CRIU version; negative numbers are the peer's fault, not a local misuse. */
  static CriuVersion version(Version v) throws ProtocolException {
    if (v.getMajor() < 0 || v.getMinor() < 0 || v.getSublevel() < 0 || v.getExtra() < 0) {
      throw new ProtocolException("the peer sent a negative CRIU version " + v.getMajor() + "."
          + v.getMinor() + "." + v.getSublevel() + "." + v.getExtra());
    }
    return new CriuVersion(v.getMajor(), v.getMinor(), v.getSublevel(), v.getExtra(),
        v.hasGitId() ? v.getGitId() : null, null);
  }

  /** The session id of a Hello; a malformed one is the peer's fault. */
  static UUID sessionId(String text) throws ProtocolException {
    try {
      return UUID.fromString(text);
    } catch (IllegalArgumentException e) {
      throw new ProtocolException("the peer sent a malformed session id '" + text + "'");
    }
  }

  /** The image connection's preamble after the magic and version: session id and round. */
  static ByteBuffer imageHeader(UUID session, int round) {
    ByteBuffer b = ByteBuffer.allocate(8 + 16 + 4);
    b.put(IMAGE_MAGIC.getBytes(java.nio.charset.StandardCharsets.US_ASCII)).putInt(PROTOCOL)
        .putLong(session.getMostSignificantBits()).putLong(session.getLeastSignificantBits())
        .putInt(round).flip();
    return b;
  }

  static String describe(Envelope e) {
    return switch (e.getBodyCase()) {
      case ABORT -> "Abort(" + e.getAbort().getReason() + ")";
      case RESTORE_FAILED -> "RestoreFailed(" + e.getRestoreFailed().getMessage() + ")";
      default -> e.getBodyCase().name();
    };
  }
}

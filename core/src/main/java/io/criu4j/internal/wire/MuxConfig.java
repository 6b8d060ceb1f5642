package io.criu4j.internal.wire;

import java.time.Duration;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ThreadFactory;

/**
 * Immutable settings of a {@link MuxConnection}: the role, the session id, this side's receive
 * limits (announced to the peer in HELLO), and timeouts. Create one with {@link #sender(UUID)} or
 * {@link #receiver()}, adjust it with the builder, and derive variants with {@link #toBuilder()}.
 *
 * <p>Thread-safe (immutable).
 */
public final class MuxConfig {
  private final Role role;
  private final UUID sessionId;
  private final int maxFramePayload;
  private final int initialStreamWindow;
  private final int initialConnectionWindow;
  private final int sendBufferPerStream;
  private final int maxOpenStreams;
  private final int capabilities;
  private final Duration stallTimeout;
  private final Duration closeTimeout;
  private final ThreadFactory threadFactory;
  private final String name;

  private MuxConfig(Builder b) {
    this.role = b.role;
    this.sessionId = b.sessionId;
    this.maxFramePayload = b.maxFramePayload;
    this.initialStreamWindow = b.initialStreamWindow;
    this.initialConnectionWindow = b.initialConnectionWindow;
    this.sendBufferPerStream = b.sendBufferPerStream;
    this.maxOpenStreams = b.maxOpenStreams;
    this.capabilities = b.capabilities;
    this.stallTimeout = b.stallTimeout;
    this.closeTimeout = b.closeTimeout;
    this.threadFactory = b.threadFactory;
    this.name = b.name;
  }

  /** Settings for the sending side (the image proxy) of session {@code sessionId}. */
  public static Builder sender(UUID sessionId) {
    return new Builder(Role.SENDER).sessionId(Objects.requireNonNull(sessionId, "sessionId"));
  }

  /**
   * Settings for the receiving side (the image cache). Without {@link Builder#sessionId}, it
   * accepts any session; with it, only that one.
   */
  public static Builder receiver() {
    return new Builder(Role.RECEIVER);
  }

  public Builder toBuilder() {
    Builder b = new Builder(role);
    b.sessionId = sessionId;
    b.maxFramePayload = maxFramePayload;
    b.initialStreamWindow = initialStreamWindow;
    b.initialConnectionWindow = initialConnectionWindow;
    b.sendBufferPerStream = sendBufferPerStream;
    b.maxOpenStreams = maxOpenStreams;
    b.capabilities = capabilities;
    b.stallTimeout = stallTimeout;
    b.closeTimeout = closeTimeout;
    b.threadFactory = threadFactory;
    b.name = name;
    return b;
  }

  public Role role() {
    return role;
  }

  /** The session id (sender), or the expected one (receiver; {@code null} = any). */
  public UUID sessionId() {
    return sessionId;
  }

  /** The largest DATA payload this side accepts, announced in HELLO. */
  public int maxFramePayload() {
    return maxFramePayload;
  }

  /** Bytes the peer may send on a new stream before this side grants more. */
  public int initialStreamWindow() {
    return initialStreamWindow;
  }

  /** Bytes the peer may send on all streams together before this side grants more. */
  public int initialConnectionWindow() {
    return initialConnectionWindow;
  }

  /** Bytes written to a stream and not yet sent after which a writer blocks. */
  public int sendBufferPerStream() {
    return sendBufferPerStream;
  }

  /** How many streams the peer may have open at once (announced in HELLO). */
  public int maxOpenStreams() {
    return maxOpenStreams;
  }

  /** The capability bits this side offers (see {@link FrameCodec#CAP_TUNNELS}). */
  public int capabilities() {
    return capabilities;
  }

  /** How long a waiting call tolerates receiving no frame at all before failing. */
  public Duration stallTimeout() {
    return stallTimeout;
  }

  /** How long {@code close()} (and a failure) waits for the peer to finish before cutting. */
  public Duration closeTimeout() {
    return closeTimeout;
  }

  /** The factory for the connection's threads, or {@code null} for named daemon threads. */
  public ThreadFactory threadFactory() {
    return threadFactory;
  }

  /** A label for thread names and log lines. */
  public String name() {
    return name;
  }

  /** Builds a {@link MuxConfig}. Not thread-safe. */
  public static final class Builder {
    private final Role role;
    private UUID sessionId;
    private int maxFramePayload = FrameCodec.DEFAULT_MAX_FRAME_PAYLOAD;
    private int initialStreamWindow = 16 * 1024 * 1024;
    private int initialConnectionWindow = 32 * 1024 * 1024;
    private int sendBufferPerStream = 1024 * 1024;
    private int maxOpenStreams = 256;
    private int capabilities = FrameCodec.CAP_TUNNELS;
    private Duration stallTimeout = Duration.ofSeconds(30);
    private Duration closeTimeout = Duration.ofSeconds(5);
    private ThreadFactory threadFactory;
    private String name = "wire";

    private Builder(Role role) {
      this.role = role;
    }

    public Builder sessionId(UUID sessionId) {
      this.sessionId = sessionId;
      return this;
    }

    public Builder maxFramePayload(int bytes) {
      if (bytes < FrameCodec.MIN_MAX_FRAME_PAYLOAD || bytes > FrameCodec.HARD_MAX_FRAME_PAYLOAD) {
        throw new IllegalArgumentException(
            "maxFramePayload outside "
                + FrameCodec.MIN_MAX_FRAME_PAYLOAD
                + ".."
                + FrameCodec.HARD_MAX_FRAME_PAYLOAD
                + ": "
                + bytes);
      }
      this.maxFramePayload = bytes;
      return this;
    }

    public Builder initialStreamWindow(int bytes) {
      this.initialStreamWindow = positive("initialStreamWindow", bytes);
      return this;
    }

    public Builder initialConnectionWindow(int bytes) {
      this.initialConnectionWindow = positive("initialConnectionWindow", bytes);
      return this;
    }

    public Builder sendBufferPerStream(int bytes) {
      this.sendBufferPerStream = positive("sendBufferPerStream", bytes);
      return this;
    }

    public Builder maxOpenStreams(int streams) {
      this.maxOpenStreams = positive("maxOpenStreams", streams);
      return this;
    }

    public Builder capabilities(int bits) {
      this.capabilities = bits;
      return this;
    }

    public Builder stallTimeout(Duration timeout) {
      if (timeout == null || timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("stallTimeout must be positive: " + timeout);
      }
      this.stallTimeout = timeout;
      return this;
    }

    public Builder closeTimeout(Duration timeout) {
      if (timeout == null || timeout.isNegative()) {
        throw new IllegalArgumentException("closeTimeout must not be negative: " + timeout);
      }
      this.closeTimeout = timeout;
      return this;
    }

    /** The caller keeps ownership of the factory; the connection only calls it. */
    public Builder threadFactory(ThreadFactory factory) {
      this.threadFactory = factory;
      return this;
    }

    public Builder name(String name) {
      this.name = Objects.requireNonNull(name, "name");
      return this;
    }

    public MuxConfig build() {
      if (role == Role.SENDER && sessionId == null) {
        throw new IllegalStateException("a sender needs a session id");
      }
      return new MuxConfig(this);
    }

    private static int positive(String what, int value) {
      if (value <= 0) {
        throw new IllegalArgumentException(what + " must be positive: " + value);
      }
      return value;
    }
  }
}

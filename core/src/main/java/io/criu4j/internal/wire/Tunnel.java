package io.criu4j.internal.wire;

import io.criu4j.internal.posix.SplicePipe;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * A bidirectional byte stream multiplexed on a {@link MuxConnection}, used to relay CRIU's
 * page-server traffic. Each direction ends separately: {@link #shutdownOutput()} sends
 * END_OF_STREAM, and {@link #read} returns {@code -1} after the peer's END_OF_STREAM.
 *
 * <p>Credit works as for {@link InboundFile}: reading does not grant, {@link #grant} does,
 * {@link #transferTo} grants as it writes. {@link #write} blocks while the peer grants no credit.
 *
 * <p>Thread-safe: one thread may read while another writes; concurrent reads (or writes) are
 * serialized. {@code close()} is idempotent.
 */
public final class Tunnel implements ByteChannel, Inbound {
  private final MuxConnection connection;
  private final StreamState state;

  Tunnel(MuxConnection connection, StreamState state) {
    this.connection = connection;
    this.state = state;
  }

  public String name() {
    return state.name;
  }

  public int streamId() {
    return state.id;
  }

  /** Whether this side opened the tunnel (otherwise it came from {@code accept()}). */
  public boolean localOpened() {
    return state.localOpened;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    return connection.read(state, dst);
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return connection.write(state, src);
  }

  /**
   * Whether {@link #writeSpliced} works here: the connection writes into a plain socket whose
   * descriptor is accessible. Otherwise bytes must be copied through {@link #write}.
   */
  public boolean canSplice() {
    return connection.spliceFd() != null;
  }

  /**
   * Sends {@code prefix} (at most {@link MuxConnection#SPLICE_PREFIX_MAX} bytes, all of it)
   * and then up to {@code n} of the bytes {@code pipe} holds, moving those from the pipe into
   * the connection's socket without copying them into user space. Waits for credit like {@link
   * #write}. Call again until the pipe is drained.
   *
   * @return how many of the pipe's bytes were sent (at least 1)
   * @throws IllegalStateException if {@link #canSplice()} is false
   */
  public int writeSpliced(ByteBuffer prefix, SplicePipe pipe, int n) throws IOException {
    return connection.writeSpliced(state, prefix, pipe, n);
  }

  /** Gives the peer {@code bytes} more credit on this tunnel (at most what arrived). */
  public void grant(long bytes) throws IOException {
    connection.grant(state, bytes);
  }

  /** Relays the incoming direction to {@code target} until END_OF_STREAM, granting as it goes. */
  public long transferTo(WritableByteChannel target) throws IOException {
    return connection.transferTo(state, target);
  }

  /** Ends this side's direction (sends END_OF_STREAM). Idempotent. */
  public void shutdownOutput() {
    connection.finishOutbound(state);
  }

  @Override
  public boolean isOpen() {
    return connection.isInboundOpen(state) || connection.isOutboundOpen(state);
  }

  /**
   * Ends this side's direction and stops reading (incoming bytes are dropped and granted until
   * the peer's END_OF_STREAM). Idempotent.
   */
  @Override
  public void close() {
    connection.finishOutbound(state);
    connection.closeInbound(state);
  }

  @Override
  public String toString() {
    return "Tunnel[" + state.describe() + "]";
  }
}

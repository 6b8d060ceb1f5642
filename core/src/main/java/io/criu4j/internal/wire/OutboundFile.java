package io.criu4j.internal.wire;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * The sending end of one file: exactly {@link #size()} bytes, then {@link #close()}, which sends
 * END_OF_FILE with the CRC32C of the bytes. Obtained from {@link MuxConnection#openFile}.
 *
 * <p>{@link #write} blocks while the stream's send buffer is full, which is the case while the
 * receiver grants no credit: nothing is dropped. It fails with the connection's failure (for a
 * failure the peer reported, a {@link WireProtocolException} with {@link
 * WireProtocolException#remote()} set and the peer's reason).
 *
 * <p>Thread-safe; concurrent writes are serialized. {@code close()} is idempotent.
 */
public final class OutboundFile implements WritableByteChannel {
  private final MuxConnection connection;
  private final StreamState state;

  OutboundFile(MuxConnection connection, StreamState state) {
    this.connection = connection;
    this.state = state;
  }

  public String name() {
    return state.name;
  }

  /** The size announced in OPEN_FILE: exactly this many bytes must be written. */
  public long size() {
    return state.size;
  }

  public int mode() {
    return state.mode;
  }

  /** The image (0, 1, ...) the file belongs to. */
  public int image() {
    return state.image;
  }

  public int streamId() {
    return state.id;
  }

  /**
   * Writes all of {@code src}, blocking while the send buffer is full. Large writes from a direct
   * buffer are sent without a copy while this file is the only stream with data; the call then
   * returns once the bytes are written to the channel. Do not interrupt a writing thread: an
   * interrupt during such a write closes the channel and fails the connection.
   *
   * @throws IllegalArgumentException if the write would exceed {@link #size()}; nothing is
   *     written then
   * @throws java.nio.channels.ClosedChannelException after {@link #close()}
   * @throws io.criu4j.MigrationException if the connection failed
   */
  @Override
  public int write(ByteBuffer src) throws IOException {
    return connection.write(state, src);
  }

  /**
   * Copies bytes from {@code src} until it ends or the file reaches {@link #size()}, reading
   * straight into the send buffers (no extra copy).
   *
   * @return the number of bytes copied
   */
  public long transferFrom(ReadableByteChannel src) throws IOException {
    return connection.transferFrom(state, src);
  }

  /** The number of bytes written so far. */
  public long written() {
    return connection.written(state);
  }

  @Override
  public boolean isOpen() {
    return connection.isOutboundOpen(state);
  }

  /**
   * Ends the file: sends END_OF_FILE with the CRC32C. Does not wait for the peer. Idempotent;
   * does nothing if the connection failed.
   *
   * @throws IllegalStateException if fewer than {@link #size()} bytes were written; the
   *     connection is then aborted with a CANCELLED error to the peer, which would otherwise wait
   *     for the missing bytes
   */
  @Override
  public void close() {
    connection.finishOutbound(state);
  }

  @Override
  public String toString() {
    return "OutboundFile[" + state.describe() + "]";
  }
}

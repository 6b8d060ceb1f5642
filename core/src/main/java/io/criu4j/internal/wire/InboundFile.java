package io.criu4j.internal.wire;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * The receiving end of one file the peer opened, as returned by {@link MuxConnection#accept()}.
 *
 * <p>{@link #read} returns the file's bytes as they arrive and {@code -1} only after the whole
 * file arrived with the announced size and a matching CRC32C; a bad size or checksum fails the
 * connection, so a corrupt file never reads to a clean end.
 *
 * <p><b>Credit.</b> Reading does not grant credit: the application calls {@link #grant} when it
 * has stored (or can hold) more bytes, so a memory-bounded cache stops the sender simply by not
 * granting. {@link #transferTo} grants as it writes. Credit that is never granted stays taken
 * from the connection-wide window as well.
 *
 * <p>Thread-safe; concurrent reads are serialized. {@code close()} is idempotent.
 */
public final class InboundFile implements ReadableByteChannel, Inbound {
  private final MuxConnection connection;
  private final StreamState state;

  InboundFile(MuxConnection connection, StreamState state) {
    this.connection = connection;
    this.state = state;
  }

  public String name() {
    return state.name;
  }

  /** The size the sender announced; a file that ends at another size fails the connection. */
  public long size() {
    return state.size;
  }

  /** The permission bits the sender announced, {@code 0} if none. */
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
   * Reads what has arrived, waiting for at least one byte.
   *
   * @return the number of bytes read, or {@code -1} after the verified end of the file
   * @throws io.criu4j.MigrationException if the connection failed (a bad size or checksum on this
   *     or another file, a peer error, a stall)
   */
  @Override
  public int read(ByteBuffer dst) throws IOException {
    return connection.read(state, dst);
  }

  /**
   * Gives the sender {@code bytes} more credit on this file and on the connection.
   *
   * @throws IllegalArgumentException if {@code bytes} is not positive or more than the bytes
   *     received on this file and not yet granted
   */
  public void grant(long bytes) throws IOException {
    connection.grant(state, bytes);
  }

  /**
   * Writes the rest of the file to {@code target} straight from the receive buffers, granting
   * credit after each write.
   *
   * @return the number of bytes transferred
   */
  public long transferTo(WritableByteChannel target) throws IOException {
    return connection.transferTo(state, target);
  }

  @Override
  public boolean isOpen() {
    return connection.isInboundOpen(state);
  }

  /**
   * Stops reading: buffered bytes are dropped (and granted), later bytes are dropped as they
   * arrive (the size and checksum are still checked). Idempotent.
   */
  @Override
  public void close() {
    connection.closeInbound(state);
  }

  @Override
  public String toString() {
    return "InboundFile[" + state.describe() + ", " + state.size + " bytes]";
  }
}

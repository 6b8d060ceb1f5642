package io.criu4j.internal.image;

import io.criu4j.internal.posix.UnixSocket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;

/**
 * A blocking {@link ByteChannel} view of a stream {@link UnixSocket}: {@link #write} writes all
 * remaining bytes, {@link #read} waits for at least one. Heap buffers are copied through a
 * direct scratch buffer (the native calls need direct memory). Closing the view does not close
 * the socket; the socket's owner does.
 *
 * <p>One reading and one writing thread at a time.
 */
public final class SocketChannels implements ByteChannel {
  private static final int SCRATCH_BYTES = 64 * 1024;

  private final UnixSocket socket;
  private ByteBuffer readScratch;
  private ByteBuffer writeScratch;
  private volatile boolean open = true;

  private SocketChannels(UnixSocket socket) {
    this.socket = socket;
  }

  public static SocketChannels of(UnixSocket socket) {
    return new SocketChannels(socket);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (!open) {
      throw new ClosedChannelException();
    }
    if (dst.isDirect() || !dst.hasRemaining()) {
      return socket.read(dst);
    }
    if (readScratch == null) {
      readScratch = ByteBuffer.allocateDirect(SCRATCH_BYTES);
    }
    readScratch.clear().limit(Math.min(SCRATCH_BYTES, dst.remaining()));
    int n = socket.read(readScratch);
    if (n > 0) {
      dst.put(readScratch.flip());
    }
    return n;
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    if (!open) {
      throw new ClosedChannelException();
    }
    int total = src.remaining();
    if (src.isDirect()) {
      while (src.hasRemaining()) {
        socket.write(src);
      }
      return total;
    }
    if (writeScratch == null) {
      writeScratch = ByteBuffer.allocateDirect(SCRATCH_BYTES);
    }
    while (src.hasRemaining()) {
      writeScratch.clear();
      int n = Math.min(writeScratch.remaining(), src.remaining());
      ByteBuffer piece = src.slice(src.position(), n);
      writeScratch.put(piece).flip();
      while (writeScratch.hasRemaining()) {
        socket.write(writeScratch);
      }
      src.position(src.position() + n);
    }
    return total;
  }

  @Override
  public boolean isOpen() {
    return open;
  }

  @Override
  public void close() {
    open = false;
  }
}

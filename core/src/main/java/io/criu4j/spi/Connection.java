package io.criu4j.spi;

import io.criu4j.TransportException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.time.Duration;

/**
 * One established, bidirectional byte stream of a {@link Transport}, used through the JDK
 * channel methods it inherits: bytes arrive in the order they were written, nothing is lost or
 * duplicated, and a writer is slowed down (blocked) while the peer does not read.
 *
 * <p>The channel is always in blocking mode: {@link #read} waits until at least one byte is
 * available (or the end of the stream is reached), and {@link #write(ByteBuffer)} returns only
 * after writing all remaining bytes. Implementations are thin: with direct buffers of a few
 * hundred KiB to a few MiB, a TCP or Unix connection moves bytes at the speed of the underlying
 * socket. For tests, {@link Transports#inMemory()} connects two endpoints without sockets.
 *
 * <p><b>Errors.</b> Every failure of an I/O method is a {@link TransportException} naming the
 * connection; the JDK exception, if any, is its cause. That includes operations after
 * {@link #close()}, and operations that another thread's {@code close()} interrupted.
 *
 * <p><b>Half-close.</b> {@link #shutdownOutput()} ends the outgoing direction: once the peer has
 * read everything written before it, the peer's {@code read} returns {@code -1}. This side can
 * still read, and the peer can still write.
 *
 * <p><b>Peer failure.</b> When the peer closes the connection or its process dies, a reader here
 * gets the bytes that arrived and then either {@code -1} or a {@link TransportException}
 * (for example when the peer's operating system reset the connection), and a writer gets a
 * {@link TransportException}, possibly only after a few writes that filled the socket buffers.
 * Nothing hangs.
 *
 * <p><b>Timeouts.</b> {@link #setReadTimeout} bounds how long one {@code read} call waits for
 * data; {@link #setWriteTimeout} bounds how long one {@code write} call takes to hand all its
 * bytes to the transport. Both default to no timeout. When a timeout elapses the call fails with
 * a {@link TransportException} whose errno is {@code ETIMEDOUT}, and the connection is closed:
 * a timeout is fatal, because the stream position is no longer known. A read that returns data
 * restarts the clock, so a slow but steady peer never times out.
 *
 * <p><b>Interrupts.</b> Like any JDK {@link java.nio.channels.InterruptibleChannel}, interrupting
 * a thread blocked in {@code read} or {@code write} (or calling them with the interrupt status
 * set) closes the connection; the call fails with a {@link TransportException} and the interrupt
 * status stays set.
 *
 * <p><b>Ownership and closing.</b> The caller that obtained the connection owns it and must
 * close it. {@link #close()} is idempotent, never throws, and makes blocked reads and writes in
 * other threads fail promptly with a {@link TransportException}.
 *
 * <p><b>Thread safety.</b> Thread-safe for one reading thread and one writing thread at a time,
 * which may be different threads; concurrent reads (or concurrent writes) are serialized.
 * {@code close}, {@code shutdownOutput} and the timeout setters may be called from any thread.
 *
 * @since 0.1
 */
public interface Connection extends ByteChannel, GatheringByteChannel {

  /** Who is at the other end of this connection. */
  PeerIdentity peer();

  /**
   * Reads up to {@code dst.remaining()} bytes into {@code dst}, waiting until at least one byte
   * is available when {@code dst} has room.
   *
   * @return the number of bytes read, {@code 0} only if {@code dst} has no room, or {@code -1}
   *     once the peer shut down its output and every byte before that was read
   * @throws TransportException if the connection fails, is closed, or the read timeout elapses
   */
  @Override
  int read(ByteBuffer dst) throws TransportException;

  /**
   * Writes all remaining bytes of {@code src}, waiting while the peer does not read.
   *
   * @return the number of bytes written, always the number that were remaining
   * @throws TransportException if the connection fails or is closed, the output was shut down, or
   *     the write timeout elapses
   */
  @Override
  int write(ByteBuffer src) throws TransportException;

  /**
   * Writes all remaining bytes of {@code srcs[offset]} to {@code srcs[offset + length - 1]}, in
   * order, with as few system calls as the transport allows. Useful to send a frame header and
   * its payload together.
   *
   * @return the number of bytes written, always the number that were remaining
   * @throws TransportException as for {@link #write(ByteBuffer)}
   */
  @Override
  long write(ByteBuffer[] srcs, int offset, int length) throws TransportException;

  /** Writes all remaining bytes of all {@code srcs}; see {@link #write(ByteBuffer[], int, int)}. */
  @Override
  long write(ByteBuffer[] srcs) throws TransportException;

  /**
   * Ends the outgoing direction (half-close): the peer reads {@code -1} after the bytes already
   * written, while this side can still read what the peer writes. Later writes fail with a
   * {@link TransportException}. Calling it again does nothing.
   *
   * @throws TransportException if the connection is closed or the transport fails
   */
  void shutdownOutput() throws TransportException;

  /**
   * Sets how long one {@code read} call may wait for data before the connection times out;
   * {@link Duration#ZERO} (the default) waits without limit. Applies to reads that start after
   * this call.
   *
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  void setReadTimeout(Duration timeout);

  /**
   * Sets how long one {@code write} call may take to hand all its bytes to the transport before
   * the connection times out; {@link Duration#ZERO} (the default) waits without limit. Applies to
   * writes that start after this call.
   *
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  void setWriteTimeout(Duration timeout);

  /** Whether the connection is still open, that is, neither closed nor timed out. */
  @Override
  boolean isOpen();

  /**
   * Closes both directions and releases the connection. Blocked reads and writes in other
   * threads fail with a {@link TransportException}; the peer sees the end of the stream, or a
   * reset if bytes it sent were still unread here. It is safe to close a connection more than
   * once; later calls do nothing. Never throws.
   */
  @Override
  void close();
}

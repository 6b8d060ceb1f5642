package io.criu4j.internal.image;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.MigrationException;
import io.criu4j.PageServer;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.UnixSocket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A real CRIU page server as a {@link PageSink}: {@link Criu#startPageServerChild} serving one
 * end of an {@code AF_UNIX} stream socketpair ({@code ps.fd}); this object keeps the other end.
 * The server writes {@code pagemap-*.img} and {@code pages-*.img} into the images directory and
 * its log into the work directory. After {@link #shutdownOutput()} it sees the end of the stream
 * and exits; {@link #awaitExit} reaps it through CRIU (WAIT_PID).
 *
 * <p>Owns the page server (and its CRIU process) and the socket; {@link #close()} kills the
 * server if it still runs. Blocking calls are native: use platform threads.
 */
public final class CriuPageSink implements PageSink {
  private final PageServer server;
  private final UnixSocket socket;
  private final SocketChannels channel;
  private volatile boolean closed;

  private CriuPageSink(PageServer server, UnixSocket socket) {
    this.server = server;
    this.socket = socket;
    this.channel = SocketChannels.of(socket);
  }

  /** A factory starting page servers with {@code criu}. */
  public static PageSink.Factory factory(Criu criu) {
    return (imagesDir, workDir) -> open(criu, imagesDir, workDir);
  }

  /** Starts a page server storing into {@code imagesDir}, logging into {@code workDir}. */
  public static CriuPageSink open(Criu criu, Path imagesDir, Path workDir)
      throws MigrationException {
    UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_STREAM);
    try {
      PageServer server = criu.startPageServerChild(imagesDir, CriuOptions.builder()
          .pageServer(PageServerTarget.fd(pair.first().fd().get())).workDir(workDir).build());
      // CRIU holds its own copy; ours would keep the server from ever seeing end of stream.
      pair.first().close();
      return new CriuPageSink(server, pair.second());
    } catch (MigrationException | RuntimeException e) {
      pair.close();
      throw e;
    }
  }

  /** The page server's pid. */
  public int pid() {
    return server.pid();
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return channel.write(src);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    return channel.read(dst);
  }

  @Override
  public void shutdownOutput() throws IOException {
    socket.shutdownOutput();
  }

  /** Reaps the server; the wait is bounded by the {@link Criu} timeout, not by {@code timeout}. */
  @Override
  public int awaitExit(Duration timeout) throws MigrationException {
    return server.awaitExit();
  }

  @Override
  public boolean isOpen() {
    return !closed;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    socket.shutdown(); // wakes a relay blocked in read or write
    try {
      server.close();
    } finally {
      socket.close();
    }
  }

  @Override
  public String toString() {
    return "CriuPageSink[" + server + "]";
  }
}

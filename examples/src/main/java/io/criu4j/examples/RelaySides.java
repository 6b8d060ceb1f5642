package io.criu4j.examples;

import io.criu4j.examples.TransferBench.Side;
import io.criu4j.internal.image.InProcessPageSink;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.SocketFd;
import io.criu4j.internal.posix.SplicePipe;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.internal.transport.ChannelFds;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLSocket;

/**
 * The {@code relay} mode of {@link TransferBench}: the job of a dump's image transfer with the
 * same endpoints as the criu4j mode, and none of criu4j's protocol. It shows what the job
 * itself costs (creating, reading and removing 10,000 files, relaying a page stream between
 * socketpairs), apart from what criu4j's framing, multiplexing, flow control and checks cost.
 *
 * <p><b>Sender.</b> The same fake CRIU as in criu4j mode ({@link BenchCriu}) writes the page
 * stream into a socketpair (4 MiB send buffer on its end, as {@code ImageProxy} sets) and the
 * files into a staging directory on tmpfs. A plain relay moves the page bytes, as they come and
 * unframed, into connection 1 (spliced where the connection is a plain socket whose descriptor
 * is known, as criu4j splices; otherwise copied through a 1 MiB direct buffer) and the page
 * server's answers back. A file relay learns each closed file's name from an in-process queue
 * fed by the fake CRIU (cheaper than the inotify watcher criu4j needs, so this baseline errs
 * on the fast side), opens, reads, closes and unlinks the file and writes {@code u16 name
 * length, name, u32 size, bytes} (big-endian) into connection 2, batched in a 1 MiB direct
 * buffer that is sent when full or when no closed file is waiting; a zero name length ends
 * the files.
 *
 * <p><b>Receiver.</b> Connection 1 goes, through a 1 MiB direct buffer, into the same
 * in-process fake page server ({@link InProcessPageSink}) that {@code ImageCache} writes into in
 * criu4j mode, and the server's answers go back; connection 2's files are each created, written
 * and closed in the receiver's directory on tmpfs. When the page server has consumed the whole
 * stream (and exited with status 0) and every file is written, the receiver acknowledges with
 * one byte on connection 2; the sender's clock stops at that byte, as in the other modes.
 *
 * <p>The connections are those of the raw mode: plain {@link SocketChannel}s over TCP
 * ({@code TCP_NODELAY}, as criu4j's TCP transport sets) and Unix sockets (4 MiB send and
 * receive buffers, as criu4j's Unix transport sets), JDK {@link SSLSocket}s over TLS (see
 * {@link BenchTls}). Both are set up, handshakes included, before the clock starts. The end of
 * the page stream is a half-close of connection 1 in each direction.
 *
 * <p>Stateless. The caller owns the links it passes and closes them; a side that fails closes
 * them early, so that none of its threads waits for ever.
 */
final class RelaySides {
  private static final int BUFFER_BYTES = 1024 * 1024;
  /** The socketpair's send buffer on the fake CRIU's end, as {@code ImageProxy} sets it. */
  private static final int PAGE_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
  private static final Duration TIMEOUT = Duration.ofMinutes(5);
  private static final Set<StandardOpenOption> READ = Set.of(StandardOpenOption.READ);
  private static final Set<StandardOpenOption> CREATE =
      Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);

  private RelaySides() {}

  // ================================================================================= links

  /**
   * One connection of the relay, read into and written from direct buffers. One reading and
   * one writing thread at a time; {@link #close()} is idempotent, never throws and wakes them.
   */
  interface Link extends AutoCloseable {
    /** Reads at least one byte into {@code dst}; -1 at the end of the stream. */
    int read(ByteBuffer dst) throws IOException;

    /** Writes all of {@code src}. */
    void writeAll(ByteBuffer src) throws IOException;

    /** Ends this direction; the peer reads the end of the stream and may still write. */
    void shutdownOutput() throws IOException;

    /** The socket's descriptor for splicing, if it is a plain socket whose number is known. */
    OptionalInt descriptor();

    @Override
    void close();
  }

  /** A plain socket (TCP or Unix). */
  static Link of(SocketChannel channel) {
    return new Link() {
      @Override
      public int read(ByteBuffer dst) throws IOException {
        return channel.read(dst);
      }

      @Override
      public void writeAll(ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
          channel.write(src);
        }
      }

      @Override
      public void shutdownOutput() throws IOException {
        channel.shutdownOutput();
      }

      @Override
      public OptionalInt descriptor() {
        return ChannelFds.of(channel);
      }

      @Override
      public void close() {
        closeQuietly(channel);
      }
    };
  }

  /**
   * A TLS socket, after its handshake. Its streams take byte arrays, so each direction copies
   * through a 1 MiB array (as any relay between a socket and a JDK TLS socket must).
   */
  static Link of(SSLSocket socket) throws IOException {
    InputStream in = socket.getInputStream();
    OutputStream out = socket.getOutputStream();
    return new Link() {
      private byte[] readScratch;
      private byte[] writeScratch;

      @Override
      public int read(ByteBuffer dst) throws IOException {
        if (readScratch == null) {
          readScratch = new byte[BUFFER_BYTES];
        }
        int n = in.read(readScratch, 0, Math.min(readScratch.length, dst.remaining()));
        if (n > 0) {
          dst.put(readScratch, 0, n);
        }
        return n;
      }

      @Override
      public void writeAll(ByteBuffer src) throws IOException {
        if (writeScratch == null) {
          writeScratch = new byte[BUFFER_BYTES];
        }
        while (src.hasRemaining()) {
          int n = Math.min(writeScratch.length, src.remaining());
          src.get(writeScratch, 0, n);
          out.write(writeScratch, 0, n);
        }
        out.flush();
      }

      @Override
      public void shutdownOutput() throws IOException {
        socket.shutdownOutput(); // TLS 1.3: close_notify for this direction only
      }

      @Override
      public OptionalInt descriptor() {
        return OptionalInt.empty();
      }

      @Override
      public void close() {
        closeQuietly(socket);
      }
    };
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception ignored) {
      // the peer may have closed first; nothing is left to release
    }
  }

  /**
   * The first failure of a side's threads; a failure closes the links (and the page server) so
   * that no thread of the side waits for ever.
   */
  private static final class Failure {
    private final AtomicReference<Throwable> first = new AtomicReference<>();
    private final List<AutoCloseable> toClose;

    Failure(List<AutoCloseable> toClose) {
      this.toClose = toClose;
    }

    Thread thread(String name, ThrowingRunnable body) {
      Thread t = new Thread(() -> {
        try {
          body.run();
        } catch (Throwable e) {
          fail(e);
        }
      }, name);
      t.setDaemon(true);
      t.start();
      return t;
    }

    void fail(Throwable e) {
      if (first.compareAndSet(null, e)) {
        toClose.forEach(RelaySides::closeQuietly);
      }
    }

    /** Throws the first failure, if any. */
    void check() {
      Throwable e = first.get();
      if (e != null) {
        throw new IllegalStateException("relay failed: " + e, e);
      }
    }

    void join(Thread t) throws InterruptedException {
      t.join(TIMEOUT.toMillis());
      if (t.isAlive()) {
        fail(new IllegalStateException(t.getName() + " still runs after " + TIMEOUT));
      }
      check();
    }
  }

  @FunctionalInterface
  interface ThrowingRunnable {
    void run() throws Exception;
  }

  // ================================================================================= sender

  /**
   * The sender: the fake CRIU and the relay, until the receiver acknowledges. {@code pages}
   * (connection 1) and {@code files} (connection 2) are connected and handshaken.
   */
  static Side sender(Link pages, Link files, long pageCount, int headerSize, int pageSize,
      int pagesPerRequest, String[] names, long[] sizes, long total, Path dir)
      throws Exception {
    Path staging = Files.createDirectories(dir.resolve("relay-staging"));
    Link p = pages;
    Link f = files;
    try (UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_STREAM)) {
      pair.first().setBufferSizes(PAGE_SOCKET_BUFFER_BYTES, 0);
      UnixSocket relayEnd = pair.second();
      Failure failure = new Failure(List.of(p, f, relayEnd::shutdown));
      BenchCriu.Closed closed = new BenchCriu.Closed(names.length);
      long cpu0 = TransferBench.cpuNanos();
      long t0 = System.nanoTime();
      BenchCriu criu = BenchCriu.start(pair.first().fd().get(), headerSize, pageSize, pageCount,
          pagesPerRequest, staging, names, sizes, closed);
      pair.first().close(); // the fake CRIU holds its own; its end of stream is the relay's
      Thread up = failure.thread("relay-pages", () -> relayPages(relayEnd, p));
      Thread down = failure.thread("relay-replies", () -> relayReplies(p, relayEnd));
      Thread fileRelay = failure.thread("relay-files", () -> relayFiles(closed, staging, f));
      criu.joinPages();
      criu.joinFiles();
      if (criu.failure() != null) {
        failure.fail(new IllegalStateException("fake CRIU failed", criu.failure()));
      }
      failure.join(fileRelay);
      failure.join(up);
      ByteBuffer ack = ByteBuffer.allocateDirect(1);
      if (f.read(ack) < 0) {
        failure.check();
        throw new EOFException("the receiver closed without acknowledging");
      }
      long wall = System.nanoTime() - t0;
      failure.join(down);
      long cpu = TransferBench.cpuNanos() - cpu0 - criu.cpuNanos();
      return new Side(total, wall, cpu, TransferBench.hwmKib());
    } finally {
      CriuOverheadBench.deleteTree(staging);
    }
  }

  /** CRIU's page stream -> connection 1, unframed, until the fake CRIU closes its end. */
  private static void relayPages(UnixSocket from, Link to) throws IOException {
    OptionalInt fd = to.descriptor();
    SplicePipe pipe = null;
    if (fd.isPresent()) {
      try {
        pipe = SplicePipe.open(BUFFER_BYTES);
      } catch (IOException noPipe) {
        // copy instead
      }
    }
    if (System.getenv("CRIU4J_BENCH_DEBUG") != null) {
      System.err.println("DEBUG sender relay: page data " + (pipe != null ? "spliced"
          : "copied"));
    }
    if (pipe != null) {
      try (SplicePipe pp = pipe; SocketFd out = SocketFd.duplicate(fd.getAsInt())) {
        int criuFd = from.fd().get();
        while (pp.fillFrom(criuFd, pp.free(), true) >= 0) {
          out.splice(pp, pp.buffered(), false);
        }
      }
    } else {
      ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER_BYTES);
      while (from.read(buf.clear()) >= 0) {
        to.writeAll(buf.flip());
      }
    }
    to.shutdownOutput();
  }

  /** The page server's answers: connection 1 -> CRIU, until the receiver ends them. */
  private static void relayReplies(Link from, UnixSocket to) throws IOException {
    ByteBuffer buf = ByteBuffer.allocateDirect(64 * 1024);
    while (from.read(buf.clear()) >= 0) {
      buf.flip();
      while (buf.hasRemaining()) {
        to.write(buf);
      }
    }
  }

  /** Each closed file -> connection 2 as a record, then the end mark. */
  private static void relayFiles(BenchCriu.Closed closed, Path staging, Link to)
      throws Exception {
    ByteBuffer out = ByteBuffer.allocateDirect(BUFFER_BYTES);
    while (true) {
      String name = closed.poll();
      if (name != null && name.isEmpty()) {
        if (out.position() > 0) { // nothing else ready: send what is batched
          to.writeAll(out.flip());
          out.clear();
        }
        name = closed.take();
      }
      if (name == null) {
        break;
      }
      byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
      if (nameBytes.length == 0 || nameBytes.length > 0xffff) {
        throw new IOException("file name of " + nameBytes.length + " bytes: " + name);
      }
      Path file = staging.resolve(name);
      try (FileChannel in = FileChannel.open(file, READ)) {
        long size = in.size();
        if (size > 0xffffffffL) {
          throw new IOException(file + " has more than 4 GiB");
        }
        if (out.remaining() < 2 + nameBytes.length + 4) {
          to.writeAll(out.flip());
          out.clear();
        }
        out.putShort((short) nameBytes.length).put(nameBytes).putInt((int) size);
        for (long left = size; left > 0; ) {
          if (!out.hasRemaining()) {
            to.writeAll(out.flip());
            out.clear();
          }
          int limit = out.limit();
          out.limit((int) Math.min(limit, out.position() + left));
          int n = in.read(out);
          out.limit(limit);
          if (n < 0) {
            throw new IOException(file + " ended " + left + " bytes short of " + size);
          }
          left -= n;
        }
      }
      Files.delete(file);
    }
    if (out.remaining() < 2) {
      to.writeAll(out.flip());
      out.clear();
    }
    out.putShort((short) 0);
    to.writeAll(out.flip());
  }

  // ================================================================================= receiver

  /**
   * The receiver: pages into the fake page server, files into {@code dir}, then the
   * acknowledgement. {@code pages} and {@code files} are accepted and handshaken.
   */
  static Side receiver(Link pages, Link files, int fileCount, int headerSize, int pageSize,
      long total, Path dir) throws Exception {
    Path store = Files.createDirectories(dir.resolve("relay-files"));
    InProcessPageSink sink = new InProcessPageSink(headerSize, pageSize);
    Link p = pages;
    Link f = files;
    try (sink) {
      Failure failure = new Failure(List.of(p, f, sink));
      long cpu0 = TransferBench.cpuNanos();
      long t0 = System.nanoTime();
      Thread down = failure.thread("relay-pages", () -> pagesIntoServer(p, sink));
      Thread up = failure.thread("relay-replies", () -> repliesFromServer(sink, p));
      int stored;
      try {
        stored = storeFiles(f, store);
      } catch (IOException e) {
        failure.fail(e);
        failure.check(); // the first failure, which may have closed the connection under us
        throw e;
      }
      failure.join(down);
      failure.join(up);
      if (stored != fileCount) {
        throw new IllegalStateException("received " + stored + " files, not " + fileCount);
      }
      f.writeAll(ByteBuffer.allocateDirect(1).put((byte) 1).flip());
      long wall = System.nanoTime() - t0;
      long cpu = TransferBench.cpuNanos() - cpu0;
      return new Side(total, wall, cpu, TransferBench.hwmKib());
    } finally {
      CriuOverheadBench.deleteTree(store);
    }
  }

  /** Connection 1 -> the page server, then its exit status must be 0. */
  private static void pagesIntoServer(Link from, InProcessPageSink sink) throws Exception {
    ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER_BYTES);
    while (from.read(buf.clear()) >= 0) {
      buf.flip();
      while (buf.hasRemaining()) {
        sink.write(buf);
      }
    }
    sink.shutdownOutput();
    int status = sink.awaitExit(TIMEOUT);
    if (status != 0) {
      throw new IllegalStateException("the page server failed (status " + status + "): "
          + sink.problem());
    }
  }

  /** The page server's answers -> connection 1, until it exits; then ends that direction. */
  private static void repliesFromServer(InProcessPageSink sink, Link to) throws IOException {
    ByteBuffer buf = ByteBuffer.allocateDirect(64 * 1024);
    while (sink.read(buf.clear()) >= 0) {
      to.writeAll(buf.flip());
    }
    to.shutdownOutput();
  }

  /** Reads file records until the end mark; returns how many files were stored. */
  private static int storeFiles(Link from, Path store) throws IOException {
    ByteBuffer in = ByteBuffer.allocateDirect(BUFFER_BYTES).flip();
    byte[] nameBytes = new byte[0xffff];
    int stored = 0;
    while (true) {
      fill(from, in, 2);
      int nameLength = in.getShort() & 0xffff;
      if (nameLength == 0) {
        return stored;
      }
      fill(from, in, nameLength + 4);
      in.get(nameBytes, 0, nameLength);
      long size = in.getInt() & 0xffffffffL;
      String name = new String(nameBytes, 0, nameLength, StandardCharsets.UTF_8);
      if (name.indexOf('/') >= 0 || name.indexOf('\0') >= 0 || name.equals(".")
          || name.equals("..")) {
        throw new IOException("refused file name: " + name);
      }
      try (FileChannel out = FileChannel.open(store.resolve(name), CREATE)) {
        for (long left = size; left > 0; ) {
          if (!in.hasRemaining()) {
            fill(from, in, 1);
          }
          int limit = in.limit();
          int n = (int) Math.min(in.remaining(), left);
          in.limit(in.position() + n);
          while (in.hasRemaining()) {
            out.write(in);
          }
          in.limit(limit);
          left -= n;
        }
      }
      stored++;
    }
  }

  /** Reads until {@code in} (in read mode) holds at least {@code bytes} bytes. */
  private static void fill(Link from, ByteBuffer in, int bytes) throws IOException {
    if (in.remaining() >= bytes) {
      return;
    }
    in.compact();
    while (in.position() < bytes) {
      if (from.read(in) < 0) {
        throw new EOFException("the sender ended inside a file record");
      }
    }
    in.flip();
  }
}

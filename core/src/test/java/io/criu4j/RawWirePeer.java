package io.criu4j;

import io.criu4j.internal.wire.Frame;
import io.criu4j.internal.wire.FrameCodec;
import io.criu4j.internal.wire.Role;
import io.criu4j.spi.Connection;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

/**
 * A hostile or broken wire peer for {@link ImageProxy}/{@link ImageCache} tests: it writes
 * whatever frames it is told (bad names, wrong checksums, other versions), records the frames it
 * receives (headers, and the code and reason of ERROR frames) and answers PINGs unless told to
 * stall. Like a conforming peer, it closes the connection after receiving an ERROR. Like MockWebServer, but for frames. Owns the connection; thread-safe.
 */
final class RawWirePeer implements AutoCloseable {
  static final UUID SESSION = new UUID(0xC0FFEE, 0xBEEF);
  private static final int PING = 0x0B;
  private static final int ERROR = 0x0A;

  /** A received frame: type, stream, and for ERROR frames the code and reason. */
  record Received(int type, int streamId, int code, String reason, ByteBuffer payload) {}

  private final Connection connection;
  private final LinkedBlockingQueue<Received> received = new LinkedBlockingQueue<>();
  private final Thread reader;
  private volatile boolean answerPings = true;
  private volatile boolean eof;

  RawWirePeer(Connection connection) {
    this.connection = connection;
    this.reader = new Thread(this::readLoop, "raw-wire-peer");
    reader.setDaemon(true);
    reader.start();
  }

  private void readLoop() {
    ByteBuffer header = ByteBuffer.allocate(FrameCodec.HEADER_BYTES);
    try {
      while (true) {
        header.clear();
        if (!readFully(header)) {
          break;
        }
        header.flip();
        int type = header.get() & 0xff;
        header.get();
        header.getShort();
        int stream = header.getInt();
        int length = header.getInt();
        ByteBuffer payload = ByteBuffer.allocate(length);
        if (!readFully(payload)) {
          break;
        }
        payload.flip();
        if (type == PING) {
          if (answerPings) {
            send(new Frame.Pong(payload.getLong()));
          }
          continue;
        }
        int code = 0;
        String reason = null;
        ByteBuffer copy = payload.duplicate();
        if (type == ERROR) {
          code = payload.getShort() & 0xffff;
          int n = payload.getShort() & 0xffff;
          byte[] r = new byte[n];
          payload.get(r);
          reason = new String(r, StandardCharsets.UTF_8);
        }
        received.add(new Received(type, stream, code, reason, copy));
        if (type == ERROR) {
          break; // like a conforming peer: close at once after an ERROR
        }
      }
    } catch (IOException e) {
      // connection gone
    } finally {
      eof = true;
      connection.close();
    }
  }

  private boolean readFully(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (connection.read(b) < 0) {
        return false;
      }
    }
    return true;
  }

  static Frame.Hello hello(int version, Role role, UUID session) {
    return new Frame.Hello(version, role, FrameCodec.CAP_TUNNELS, session, 256 * 1024,
        1 << 22, 1 << 26, 64);
  }

  /** Sends a sender's HELLO and waits for the receiver's ACCEPT. */
  RawWirePeer handshakeAsSender() throws IOException {
    send(hello(FrameCodec.PROTOCOL_VERSION, Role.SENDER, SESSION));
    expect(0x02, Duration.ofSeconds(10)); // ACCEPT (the HELLO comes first and is skipped)
    return this;
  }

  /**
   * Sends a receiver's HELLO with the given receive windows, reads the sender's HELLO and
   * answers ACCEPT.
   */
  RawWirePeer handshakeAsReceiver(int streamWindow, int connectionWindow) throws IOException {
    send(new Frame.Hello(FrameCodec.PROTOCOL_VERSION, Role.RECEIVER, FrameCodec.CAP_TUNNELS,
        new UUID(0, 0), 256 * 1024, streamWindow, connectionWindow, 64));
    ByteBuffer hello = expect(0x01, Duration.ofSeconds(10)).payload();
    UUID session = new UUID(hello.getLong(16), hello.getLong(24));
    send(new Frame.Accept(FrameCodec.PROTOCOL_VERSION, FrameCodec.CAP_TUNNELS, session));
    return this;
  }

  synchronized void send(Frame... frames) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(FrameCodec.encodeAll(List.of(frames)));
    while (b.hasRemaining()) {
      connection.write(b);
    }
  }

  /** Sends a complete file: OPEN_FILE, DATA, END_OF_FILE with {@code crc} (null: correct). */
  void sendFile(int stream, String name, byte[] data, Integer crc) throws IOException {
    CRC32C c = new CRC32C();
    c.update(data);
    send(new Frame.OpenFile(stream, name, data.length, 0600));
    if (data.length > 0) {
      send(new Frame.Data(stream, ByteBuffer.wrap(data)));
    }
    send(new Frame.EndOfFile(stream, crc != null ? crc : (int) c.getValue()));
  }

  void stopAnsweringPings() {
    answerPings = false;
  }

  /** The next received frame of {@code type}, skipping others; fails on timeout or EOF. */
  Received expect(int type, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Received r;
      try {
        r = received.poll(Math.min(50_000_000, Math.max(0, deadline - System.nanoTime())),
            TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted");
      }
      if (r != null && r.type() == type) {
        return r;
      }
      if (r == null && (eof || System.nanoTime() > deadline)) {
        if (!received.isEmpty()) {
          continue;
        }
        throw new AssertionError("no frame of type " + type + " within " + timeout
            + (eof ? " (connection ended)" : ""));
      }
    }
  }

  /** The ERROR frame the peer sent. */
  Received expectError() {
    return expect(ERROR, Duration.ofSeconds(20));
  }

  @Override
  public void close() {
    connection.close();
    try {
      reader.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

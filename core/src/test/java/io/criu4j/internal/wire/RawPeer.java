package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A scriptable wire peer for tests, speaking raw frames: it sends whatever it is told (including
 * invalid bytes) and records every frame it receives on a background thread. By default it
 * answers PINGs, like a live peer; {@link #stopAnsweringPings()} makes it look stalled.
 *
 * <p>Like MockWebServer, but for frames. Thread-safe.
 */
final class RawPeer implements AutoCloseable {
  static final UUID SESSION = new UUID(0x1234, 0x5678);
  /** Marks the end of the frames from the connection under test. */
  private static final Object EOF = new Object();

  private final ReadableByteChannel in;
  private final WritableByteChannel out;
  private final LinkedBlockingQueue<Object> received = new LinkedBlockingQueue<>();
  private final Thread reader;
  private volatile boolean answerPings = true;

  RawPeer(ChannelPair.End end) {
    this.in = end.in();
    this.out = end.out();
    this.reader = new Thread(this::readLoop, "raw-peer-reader");
    reader.setDaemon(true);
    reader.start();
  }

  private void readLoop() {
    FrameReader r = new FrameReader(in, false);
    try {
      FrameCodec.Header h;
      while ((h = r.readHeader(FrameCodec.HARD_MAX_FRAME_PAYLOAD, false)) != null) {
        Frame f = r.readFrame(h);
        if (f instanceof Frame.Ping p && answerPings) {
          send(new Frame.Pong(p.opaque()));
          continue;
        }
        received.add(f);
      }
      received.add(EOF);
    } catch (IOException e) {
      received.add(e);
      received.add(EOF);
    }
  }

  void stopAnsweringPings() {
    answerPings = false;
  }

  static Frame.Hello hello(Role role, UUID session) {
    return new Frame.Hello(
        FrameCodec.PROTOCOL_VERSION,
        role,
        FrameCodec.CAP_TUNNELS,
        session,
        FrameCodec.DEFAULT_MAX_FRAME_PAYLOAD,
        1 << 20,
        1 << 24,
        64);
  }

  /** Sends a sender's HELLO and reads the receiver's HELLO and ACCEPT. */
  RawPeer handshakeAsSender() throws IOException {
    send(hello(Role.SENDER, SESSION));
    assertThat(expect(Frame.Hello.class).role()).isEqualTo(Role.RECEIVER);
    assertThat(expect(Frame.Accept.class).sessionId()).isEqualTo(SESSION);
    return this;
  }

  /** Sends a receiver's HELLO, reads the sender's HELLO and answers ACCEPT. */
  RawPeer handshakeAsReceiver() throws IOException {
    send(hello(Role.RECEIVER, new UUID(0, 0)));
    Frame.Hello h = expect(Frame.Hello.class);
    assertThat(h.role()).isEqualTo(Role.SENDER);
    send(new Frame.Accept(FrameCodec.PROTOCOL_VERSION, FrameCodec.CAP_TUNNELS, h.sessionId()));
    return this;
  }

  synchronized void send(Frame... frames) throws IOException {
    sendRaw(FrameCodec.encodeAll(java.util.List.of(frames)));
  }

  synchronized void sendRaw(byte[] bytes) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    while (b.hasRemaining()) {
      out.write(b);
    }
  }

  /** Ends this peer's output; the other side reads end-of-stream. */
  void shutdownOutput() throws IOException {
    out.close();
  }

  /** The next received frame of {@code type}, skipping PING, PONG and WINDOW_UPDATE. */
  <T extends Frame> T expect(Class<T> type) {
    return expect(type, Duration.ofSeconds(10));
  }

  <T extends Frame> T expect(Class<T> type, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Object next;
      try {
        next = received.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      if (next == null) {
        return fail("no " + type.getSimpleName() + " within " + timeout);
      }
      if (type.isInstance(next)) {
        return type.cast(next);
      }
      if (next == EOF) {
        received.add(EOF);
        return fail("end of stream while waiting for " + type.getSimpleName());
      }
      if (next instanceof Throwable t) {
        throw new AssertionError("reading failed while waiting for " + type.getSimpleName(), t);
      }
      if (!(next instanceof Frame.Pong
          || next instanceof Frame.Ping
          || next instanceof Frame.WindowUpdate)) {
        return fail("expected " + type.getSimpleName() + " but got " + next);
      }
    }
  }

  /** Waits for the ERROR frame the connection under test sends, skipping everything else. */
  Frame.ErrorFrame awaitError() {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      Object next;
      try {
        next = received.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      if (next == null) {
        return fail("no ERROR frame within 10 s");
      }
      if (next instanceof Frame.ErrorFrame e) {
        return e;
      }
      if (next == EOF) {
        return fail("end of stream without an ERROR frame");
      }
    }
  }

  /** Waits until the connection under test closed its output. */
  void awaitEof() {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      Object next;
      try {
        next = received.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      if (next == null) {
        fail("the connection under test did not close within 10 s");
      }
      if (next == EOF || next instanceof IOException) {
        return;
      }
    }
  }

  @Override
  public void close() {
    try {
      out.close();
    } catch (IOException ignored) {
      // test cleanup
    }
    try {
      in.close();
    } catch (IOException ignored) {
      // test cleanup
    }
  }
}

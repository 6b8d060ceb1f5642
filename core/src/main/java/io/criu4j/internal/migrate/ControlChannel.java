package io.criu4j.internal.migrate;

import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.TransportException;
import io.criu4j.internal.rpc.ControlProto.Envelope;
import io.criu4j.spi.Connection;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control connection of one migration, either side: length-prefixed {@link Envelope}s. A
 * reader thread queues what arrives, so that waiting for a message can be bounded by a deadline
 * and woken by a cancellation ({@link #wake}) without closing the connection: a rollback still
 * needs to send its Abort.
 *
 * <p>Owns the connection and the reader thread; {@link #close()} frees both. Sends are
 * serialized; one thread receives.
 */
final class ControlChannel implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ControlChannel.class);
  static final int MAX_MESSAGE = 1 << 20;
  private static final Duration WRITE_TIMEOUT = Duration.ofSeconds(30);

  private final Connection connection;
  private final String label;
  private final int maxMessage;
  private final String maxMessageName;
  private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
  private final Thread reader;
  private volatile boolean closed;

  /** What the reader queues when the stream ended or failed. */
  private record Lost(MigrationException cause) {}

  /** What {@link #wake} queues. */
  private record Wake() {}

  /** A message and when the reader took it off the connection ({@link System#nanoTime()}). */
  private record Arrival(Envelope envelope, long nanos) {}

  /** Arrival time of the message the receiving thread got last; that thread alone uses it. */
  private long lastArrivalNanos;

  ControlChannel(Connection connection, String label) {
    this(connection, label, MAX_MESSAGE, "maxControlMessage");
  }

  /**
   * A channel accepting messages of at most {@code maxMessage} bytes; a larger one fails the
   * channel with a message naming {@code maxMessageName} (the setting that chose the value).
   */
  ControlChannel(Connection connection, String label, int maxMessage, String maxMessageName) {
    this.connection = connection;
    this.label = label;
    this.maxMessage = maxMessage;
    this.maxMessageName = maxMessageName;
    connection.setWriteTimeout(WRITE_TIMEOUT);
    this.reader = new Thread(this::readLoop, "criu4j-" + label + "-control");
    reader.setDaemon(true);
    reader.start();
  }

  /** Writes the 8-byte preamble: magic and protocol version. */
  static void writePreamble(Connection c, String magic, int version) throws TransportException {
    ByteBuffer b = ByteBuffer.allocate(8);
    b.put(magic.getBytes(java.nio.charset.StandardCharsets.US_ASCII)).putInt(version).flip();
    c.write(b);
  }

  /** Reads exactly {@code n} bytes, or throws on a premature end. */
  static ByteBuffer readFully(Connection c, int n) throws MigrationException {
    ByteBuffer b = ByteBuffer.allocate(n);
    while (b.hasRemaining()) {
      if (c.read(b) < 0) {
        if (b.position() == 0) {
          return null;
        }
        throw new ProtocolException("connection ended in the middle of a message ("
            + b.position() + " of " + n + " bytes)");
      }
    }
    return b.flip();
  }

  void send(Envelope message) throws MigrationException {
    byte[] body = message.toByteArray();
    ByteBuffer b = ByteBuffer.allocate(4 + body.length);
    b.putInt(body.length).put(body).flip();
    synchronized (this) {
      connection.write(b);
    }
    log.trace("{}: sent {}", label, message.getBodyCase());
  }

  /** Sends, logging instead of throwing: for Abort on a connection that may be gone. */
  void sendQuietly(Envelope message) {
    try {
      send(message);
    } catch (MigrationException | RuntimeException e) {
      log.debug("{}: cannot send {}: {}", label, message.getBodyCase(), e.getMessage());
    }
  }

  /**
   * The next message, waiting at most until {@code deadlineNanos} ({@link System#nanoTime()}).
   *
   * @param interrupt checked whenever the wait is woken; a non-null result is thrown
   * @throws TransportException if the connection ended or failed, or the deadline passed
   *     ({@code timeoutMessage})
   */
  Envelope receive(long deadlineNanos, Supplier<MigrationException> interrupt,
      Supplier<String> timeoutMessage) throws MigrationException {
    Envelope e = poll(deadlineNanos, interrupt);
    if (e == null) {
      throw new TransportException(timeoutMessage.get(), 110 /* ETIMEDOUT */, null);
    }
    return e;
  }

  /** Like {@link #receive}, but null once the deadline passed. */
  Envelope poll(long deadlineNanos, Supplier<MigrationException> interrupt)
      throws MigrationException {
    while (true) {
      MigrationException stop = interrupt.get();
      if (stop != null) {
        throw stop;
      }
      long left = deadlineNanos - System.nanoTime();
      if (left <= 0) {
        return null;
      }
      Object o;
      try {
        o = inbox.poll(Math.min(left, TimeUnit.MILLISECONDS.toNanos(200)), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException(label + ": interrupted while waiting for the peer", e);
      }
      if (o instanceof Arrival a) {
        log.trace("{}: received {}", label, a.envelope().getBodyCase());
        lastArrivalNanos = a.nanos();
        return a.envelope();
      }
      if (o instanceof Lost lost) {
        inbox.add(lost); // every later receive fails the same way
        throw lost.cause();
      }
    }
  }

  /**
   * When the message last returned by {@link #receive} or {@link #poll} arrived
   * ({@link System#nanoTime()}): it may have waited in the queue while the receiving thread was
   * busy, and a timing such as the downtime must not count that wait.
   */
  long lastArrivalNanos() {
    return lastArrivalNanos;
  }

  /** Wakes a thread waiting in {@link #receive} so that it checks its interrupt condition. */
  void wake() {
    inbox.add(new Wake());
  }

  private void readLoop() {
    try {
      while (true) {
        ByteBuffer len = readFully(connection, 4);
        if (len == null) {
          inbox.add(new Lost(new TransportException(label + ": the peer closed the control "
              + "connection")));
          return;
        }
        int n = len.getInt();
        if (n < 0 || n > maxMessage) {
          throw new ProtocolException(label + ": limit " + maxMessageName + "=" + maxMessage
              + " exceeded: control message of " + n + " bytes");
        }
        ByteBuffer body = readFully(connection, n);
        if (body == null && n > 0) {
          throw new ProtocolException(label + ": control connection ended before a message");
        }
        Envelope env;
        try {
          env = Envelope.parseFrom(body == null ? ByteBuffer.allocate(0) : body);
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
          throw new ProtocolException(label + ": malformed control message: " + e.getMessage(),
              e);
        }
        if (env.getBodyCase() == Envelope.BodyCase.BODY_NOT_SET) {
          throw new ProtocolException(label + ": control message of an unknown kind");
        }
        inbox.add(new Arrival(env, System.nanoTime()));
      }
    } catch (MigrationException e) {
      inbox.add(new Lost(closed ? new TransportException(label + ": control connection closed")
          : e instanceof TransportException t
              ? new TransportException(label + ": control connection lost: " + t.getMessage(),
                  t.errno(), t)
              : e));
    } catch (RuntimeException e) {
      inbox.add(new Lost(new ProtocolException(label + ": " + e)));
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    connection.close();
    if (reader != Thread.currentThread()) {
      try {
        reader.join(10_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}

package io.criu4j.internal.wire;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.zip.CRC32C;

/**
 * The state of one logical stream of a {@link MuxConnection}: the sending half ({@link Out}),
 * the receiving half ({@link In}), or both (a tunnel). Guarded by the connection's lock unless
 * a field says otherwise.
 */
final class StreamState {
  enum Kind {
    FILE,
    TUNNEL
  }

  final int id;
  final Kind kind;
  final String name;
  /** Whether this side opened the stream. */
  final boolean localOpened;
  /** For files: the announced size and mode, and the image the file belongs to. */
  final long size;

  final int mode;
  final int image;
  /** The sending half, or null if this side does not send on the stream. */
  final Out out;
  /** The receiving half, or null if this side does not receive on the stream. */
  final In in;

  boolean retired;

  StreamState(
      int id,
      Kind kind,
      String name,
      boolean localOpened,
      long size,
      int mode,
      int image,
      boolean sends,
      boolean receives) {
    this.id = id;
    this.kind = kind;
    this.name = name;
    this.localOpened = localOpened;
    this.size = size;
    this.mode = mode;
    this.image = image;
    this.out = sends ? new Out() : null;
    this.in = receives ? new In() : null;
  }

  String describe() {
    return (kind == Kind.FILE ? "file " : "tunnel ") + Names.quote(name) + " (stream " + id + ")";
  }

  @Override
  public String toString() {
    return describe();
  }

  /** A pooled buffer with a filled region [readPos, writePos). */
  static final class Chunk {
    final ByteBuffer buf;
    int readPos;
    int writePos;
    /** Whether a thread is filling [writePos, ...) outside the lock. */
    boolean filling;

    Chunk(ByteBuffer buf) {
      this.buf = buf;
    }

    int available() {
      return writePos - readPos;
    }

    int free() {
      return buf.capacity() - writePos;
    }
  }

  /** The sending half. */
  static final class Out {
    /** Items to send in order: {@link Chunk}s of data and control {@link Frame}s. */
    final ArrayDeque<Object> queue = new ArrayDeque<>();
    /** Serializes the application's writes and closes. */
    final Object writeMutex = new Object();
    /** CRC32C of the bytes written so far; used under {@link #writeMutex}. */
    final CRC32C crc = new CRC32C();

    long credit;
    /** The writer's batch that holds DATA of this stream (see MuxConnection.Batch). */
    long batchSequence = -1;

    /**
     * The writer's batch count at this stream's last spliced write: while it is unchanged and
     * other streams wait, the next spliced write lets the writer take a turn first.
     */
    long spliceBatchMark = -1;

    long queuedBytes;
    long written;
    boolean finished;
    boolean drained;
    boolean inReady;
  }

  /** The receiving half. */
  static final class In {
    final ArrayDeque<Chunk> chunks = new ArrayDeque<>();
    /** Serializes the application's reads. */
    final Object readMutex = new Object();
    /** CRC32C of the bytes received so far; used by the reader thread only. */
    final CRC32C crc = new CRC32C();

    /** Credit the peer may still use (initial + granted - received). */
    long window;

    long received;
    long granted;
    long buffered;
    long pendingGrant;
    boolean grantDirty;
    boolean ended;
    boolean closedByApp;
  }
}

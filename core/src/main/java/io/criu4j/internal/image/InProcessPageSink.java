package io.criu4j.internal.image;

import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.TransportException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An in-process stand-in for a CRIU page server, for tests and benchmarks without CRIU: it
 * consumes the page stream with a {@link PageStreamParser} (page data is skipped, nothing is
 * stored) and answers as the real server does: one {@code has_parent} byte (0) for
 * {@code PS_IOV_OPEN2}, an {@code int32} 0 for {@code PS_IOV_PARENT}, {@code PS_IOV_CLOSE} and
 * {@code PS_IOV_FORCE_CLOSE}, in the host's byte order.
 *
 * <p>"Exits" when the stream ends ({@link #shutdownOutput()}): status 0 if the stream ended
 * right after a {@code CLOSE}, {@code 1 << 8} (exit code 1) otherwise, like CRIU. A stream that
 * breaks the protocol makes {@link #write} throw a {@link ProtocolException}.
 *
 * <p>One writing and one reading thread at a time; {@link #close()} from any thread, idempotent.
 */
public final class InProcessPageSink implements PageSink {
  /** The exit status of a server whose stream ended badly (exit code 1). */
  public static final int FAILED_STATUS = 1 << 8;

  private final PageStreamParser parser;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private ByteBuffer replies = ByteBuffer.allocate(64);
  private boolean outputShut;
  private boolean closed;
  private Integer status;
  private String problem;

  /** A sink parsing a stream with {@code headerSize}-byte headers and {@code pageSize} pages. */
  public InProcessPageSink(int headerSize, int pageSize) {
    this.parser = new PageStreamParser(headerSize, pageSize, ByteOrder.nativeOrder(),
        this::onHeader);
  }

  /** A factory of sinks with the given header and page size. */
  public static PageSink.Factory factory(int headerSize, int pageSize) {
    return (Path imagesDir, Path workDir) -> new InProcessPageSink(headerSize, pageSize);
  }

  private void onHeader(int command, int flags, long nrPages, long vaddr, long dstId,
      long offset) {
    int reply = PageStreamParser.replyBytes(command);
    if (reply <= 0) {
      return; // GET (-1) would need pages this fake does not have; the cache never sends it
    }
    if (replies.remaining() < reply) {
      ByteBuffer bigger = ByteBuffer.allocate(replies.capacity() * 2);
      replies.flip();
      bigger.put(replies);
      replies = bigger;
    }
    if (reply == 1) {
      replies.put((byte) 0);
    } else {
      replies.order(ByteOrder.nativeOrder()).putInt(0);
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    int n = src.remaining();
    lock.lock();
    try {
      if (closed || outputShut) {
        throw new ClosedChannelException();
      }
      try {
        parser.feed(src);
      } catch (ProtocolException e) {
        status = FAILED_STATUS;
        problem = e.getMessage();
        changed.signalAll();
        throw e;
      }
      if (replies.position() > 0) {
        changed.signalAll();
      }
      return n;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    lock.lock();
    try {
      while (true) {
        if (closed) {
          throw new ClosedChannelException();
        }
        if (replies.position() > 0) {
          replies.flip();
          int n = Math.min(dst.remaining(), replies.remaining());
          dst.put(replies.slice(replies.position(), n));
          replies.position(replies.position() + n);
          replies.compact();
          return n;
        }
        if (status != null) {
          return -1; // the server is gone
        }
        changed.awaitUninterruptibly();
      }
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void shutdownOutput() {
    lock.lock();
    try {
      if (outputShut) {
        return;
      }
      outputShut = true;
      if (status == null) {
        try {
          parser.finish();
          if (!parser.closeSeen()) {
            problem = "page stream ended without PS_IOV_CLOSE";
            status = FAILED_STATUS;
          } else {
            status = 0;
          }
        } catch (ProtocolException e) {
          problem = e.getMessage();
          status = FAILED_STATUS;
        }
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  @Override
  public int awaitExit(Duration timeout) throws MigrationException {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      while (status == null) {
        if (closed) {
          throw new MigrationException("in-process page server closed before it exited");
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new TransportException("in-process page server did not exit within " + timeout);
        }
        try {
          changed.awaitNanos(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new MigrationException("interrupted waiting for the page server", e);
        }
      }
      return status;
    } finally {
      lock.unlock();
    }
  }

  /** Why the last stream failed, or {@code null}. */
  public String problem() {
    lock.lock();
    try {
      return problem;
    } finally {
      lock.unlock();
    }
  }

  /** What the parser counted so far. */
  public PageStreamParser.Stats stats() {
    lock.lock();
    try {
      return parser.stats();
    } finally {
      lock.unlock();
    }
  }

  @Override
  public boolean isOpen() {
    lock.lock();
    try {
      return !closed;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void close() {
    lock.lock();
    try {
      closed = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  @Override
  public String toString() {
    return "InProcessPageSink[" + parser.offset() + " bytes]";
  }

}

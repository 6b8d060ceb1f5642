package io.criu4j.internal.image;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The image bytes and files one migration session may send, counted over all the image caches
 * of the session (one per round): every file is admitted by its announced size before any of its
 * data is read, and the page stream as it arrives. A refusal names the limit and its value.
 *
 * <p>Thread-safe: a cache's threads and the session's rounds share one instance.
 */
public final class ImageLimits {
  /** No limit: what a cache uses unless given other limits. */
  public static final ImageLimits NONE = new ImageLimits(Long.MAX_VALUE, Integer.MAX_VALUE);

  private final long maxBytes;
  private final int maxFiles;
  private final AtomicLong bytes = new AtomicLong();
  private final AtomicInteger files = new AtomicInteger();
  private volatile String refusal;

  /**
   * @param maxBytes most bytes of file data and page stream together ({@code maxImageBytes})
   * @param maxFiles most files ({@code maxFiles})
   */
  public ImageLimits(long maxBytes, int maxFiles) {
    if (maxBytes < 1) {
      throw new IllegalArgumentException("maxImageBytes < 1: " + maxBytes);
    }
    if (maxFiles < 1) {
      throw new IllegalArgumentException("maxFiles < 1: " + maxFiles);
    }
    this.maxBytes = maxBytes;
    this.maxFiles = maxFiles;
  }

  public long maxBytes() {
    return maxBytes;
  }

  public int maxFiles() {
    return maxFiles;
  }

  /** Bytes admitted so far. */
  public long bytes() {
    return bytes.get();
  }

  /** Files admitted so far. */
  public int files() {
    return files.get();
  }

  /** The first refusal, or null: lets the session stop without waiting for its cache. */
  public String refusal() {
    return refusal;
  }

  /** Admits a file of {@code size} bytes; null if it fits, else why not. */
  public String admitFile(String name, long size) {
    int n = files.incrementAndGet();
    if (n > maxFiles) {
      return refused("limit maxFiles=" + maxFiles + " exceeded: \"" + name + "\" is the "
          + "session's file number " + n);
    }
    return admitBytes("file \"" + name + "\" of " + size + " bytes", size);
  }

  private synchronized String refused(String why) {
    if (refusal == null) {
      refusal = why;
    }
    return why;
  }

  /** Admits {@code n} more bytes of the page stream; null if they fit, else why not. */
  public String admitPageBytes(long n) {
    return admitBytes(n + " bytes of the page stream", n);
  }

  private synchronized String admitBytes(String what, long n) {
    long before = bytes.get();
    long total = bytes.addAndGet(n);
    if (total > maxBytes || total < 0) {
      if (before > maxBytes && refusal != null) {
        // Already over: every thread reports the admission that crossed the limit, so the
        // reason does not depend on which stream the cache happened to hear from first.
        return refusal;
      }
      return refused("limit maxImageBytes=" + maxBytes + " exceeded: " + what + " brings the "
          + "session's images to " + total + " bytes");
    }
    return null;
  }
}

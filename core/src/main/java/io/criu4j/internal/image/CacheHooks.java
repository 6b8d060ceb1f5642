package io.criu4j.internal.image;

import io.criu4j.ImageCache;
import java.util.Objects;

/**
 * Internal settings of {@link ImageCache} that are not public API, for criu4j's own tests and
 * benchmarks and for the migration agent: replacing the CRIU page server with a
 * {@link PageSink} (such as {@link InProcessPageSink}), and a session's limits (shared
 * {@link ImageLimits}, the largest DATA frame). {@code ImageCache} registers the
 * implementation when it loads.
 */
public final class CacheHooks {
  /** Implemented by {@code ImageCache}. */
  public interface Access {
    void pageSink(ImageCache.Builder builder, PageSink.Factory factory);

    void limits(ImageCache.Builder builder, ImageLimits limits, int maxFramePayload);

    long peakHeldBytes(ImageCache cache);
  }

  private static volatile Access access;

  private CacheHooks() {}

  /** Called once by {@code ImageCache}. */
  public static void register(Access a) {
    access = Objects.requireNonNull(a, "access");
  }

  /** Makes {@code builder}'s cache send its page stream to sinks from {@code factory}. */
  public static ImageCache.Builder pageSink(ImageCache.Builder builder,
      PageSink.Factory factory) {
    Objects.requireNonNull(builder, "builder");
    Objects.requireNonNull(factory, "factory");
    access.pageSink(builder, factory); // set: a Builder exists only once ImageCache loaded
    return builder;
  }

  /** The most bytes of file data {@code cache} held in memory at once so far. */
  public static long peakHeldBytes(ImageCache cache) {
    return access.peakHeldBytes(Objects.requireNonNull(cache, "cache"));
  }

  /**
   * Makes {@code builder}'s cache count what it receives against {@code limits} (shared by the
   * caches of one session) and accept DATA frames of at most {@code maxFramePayload} bytes.
   */
  public static ImageCache.Builder limits(ImageCache.Builder builder, ImageLimits limits,
      int maxFramePayload) {
    Objects.requireNonNull(builder, "builder");
    Objects.requireNonNull(limits, "limits");
    access.limits(builder, limits, maxFramePayload);
    return builder;
  }
}

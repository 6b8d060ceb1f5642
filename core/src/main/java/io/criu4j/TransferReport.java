package io.criu4j;

import java.time.Duration;
import java.util.Objects;

/**
 * What an {@link ImageProxy} sent or an {@link ImageCache} received: image files, and pages of
 * the page-server stream. A snapshot while the transfer runs ({@code progress()}), the final
 * figures once it is complete.
 *
 * @param files image files transferred (complete files only)
 * @param fileBytes bytes of those files
 * @param pages memory pages whose contents went through the page stream
 * @param pageBytes bytes of those pages ({@code pages} times the page size)
 * @param duration time since the transfer started
 * @since 0.1
 */
public record TransferReport(int files, long fileBytes, long pages, long pageBytes,
    Duration duration) {
  public TransferReport {
    if (files < 0 || fileBytes < 0 || pages < 0 || pageBytes < 0) {
      throw new IllegalArgumentException("negative count: files=" + files + " fileBytes="
          + fileBytes + " pages=" + pages + " pageBytes=" + pageBytes);
    }
    Objects.requireNonNull(duration, "duration");
  }

  /** File bytes plus page bytes. */
  public long totalBytes() {
    return fileBytes + pageBytes;
  }

  /** {@link #totalBytes()} per second over {@link #duration()}; 0 for a zero duration. */
  public double bytesPerSecond() {
    long nanos = duration.toNanos();
    return nanos <= 0 ? 0 : totalBytes() * 1e9 / nanos;
  }

  @Override
  public String toString() {
    return String.format(java.util.Locale.ROOT,
        "%d files (%d bytes), %d pages (%d bytes) in %d ms, %.1f MiB/s", files, fileBytes,
        pages, pageBytes, duration.toMillis(), bytesPerSecond() / (1 << 20));
  }
}

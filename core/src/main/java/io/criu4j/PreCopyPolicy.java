package io.criu4j;

import java.time.Duration;
import java.util.Objects;

/**
 * When to copy memory before the final freeze, and when to stop. Pre-copy runs only if both
 * hosts' CRIU report dirty-page tracking ({@code mem_track}); otherwise the migration goes
 * straight to the final dump and says so in a {@link MigrationEvent.Note} and
 * {@link MigrationReport#preCopyNote()}.
 *
 * <p>After each round the stop rule looks at CRIU's statistics of that round and stops pre-copy
 * (going on with the final dump) as soon as one of these holds:
 * <ul>
 *   <li>{@code maxRounds} rounds ran;
 *   <li>the round wrote at most {@code stopBelowPages} pages: what is left is small enough for
 *       the final dump;
 *   <li>the round wrote more than {@code (1 - minShrinkRatio)} times the pages of the round
 *       before: the tree dirties memory about as fast as it is copied, another round would cost
 *       a full copy and gain little;
 *   <li>another round, predicted from the last one's duration and shrink, would end after
 *       {@code maxTotal} since pre-copy started.
 * </ul>
 *
 * @param enabled whether to pre-copy at all
 * @param maxRounds most pre-dump rounds, at least 1
 * @param stopBelowPages a round that wrote at most this many pages ends pre-copy
 * @param minShrinkRatio fraction (0 to 1) by which each round must shrink the written pages
 *     compared to the round before, or pre-copy ends
 * @param maxTotal time budget of the whole pre-copy phase
 * @since 0.1
 */
public record PreCopyPolicy(boolean enabled, int maxRounds, long stopBelowPages,
    double minShrinkRatio, Duration maxTotal) {

  private static final PreCopyPolicy DEFAULTS =
      new PreCopyPolicy(true, 8, 1024, 0.2, Duration.ofMinutes(5));
  private static final PreCopyPolicy DISABLED =
      new PreCopyPolicy(false, 1, 0, 0, Duration.ofMinutes(5));

  public PreCopyPolicy {
    if (maxRounds < 1) {
      throw new IllegalArgumentException("maxRounds < 1: " + maxRounds);
    }
    if (stopBelowPages < 0) {
      throw new IllegalArgumentException("stopBelowPages < 0: " + stopBelowPages);
    }
    if (!(minShrinkRatio >= 0 && minShrinkRatio <= 1)) {
      throw new IllegalArgumentException("minShrinkRatio not in 0..1: " + minShrinkRatio);
    }
    Objects.requireNonNull(maxTotal, "maxTotal");
    if (maxTotal.isNegative() || maxTotal.isZero()) {
      throw new IllegalArgumentException("maxTotal must be positive: " + maxTotal);
    }
  }

  /**
   * Pre-copy on: at most 8 rounds, stop at 1024 pages (4 MiB) or when a round shrinks the
   * written pages by less than 20 %, within 5 minutes.
   */
  public static PreCopyPolicy defaults() {
    return DEFAULTS;
  }

  /** No pre-copy: freeze and dump at once. */
  public static PreCopyPolicy disabled() {
    return DISABLED;
  }

  /** This policy with another round limit. */
  public PreCopyPolicy withMaxRounds(int rounds) {
    return new PreCopyPolicy(enabled, rounds, stopBelowPages, minShrinkRatio, maxTotal);
  }

  /** This policy with another page threshold. */
  public PreCopyPolicy withStopBelowPages(long pages) {
    return new PreCopyPolicy(enabled, maxRounds, pages, minShrinkRatio, maxTotal);
  }

  /** This policy with another minimum shrink per round. */
  public PreCopyPolicy withMinShrinkRatio(double ratio) {
    return new PreCopyPolicy(enabled, maxRounds, stopBelowPages, ratio, maxTotal);
  }

  /** This policy with another time budget. */
  public PreCopyPolicy withMaxTotal(Duration total) {
    return new PreCopyPolicy(enabled, maxRounds, stopBelowPages, minShrinkRatio, total);
  }
}

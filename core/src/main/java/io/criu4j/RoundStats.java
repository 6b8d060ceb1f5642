package io.criu4j;

import java.time.Duration;
import java.util.Objects;

/**
 * One memory round of a migration: a pre-copy pre-dump, or (last in a report) the final dump.
 * Page counts are CRIU's ({@code stats-dump}).
 *
 * @param round 1-based number of the round
 * @param pagesScanned pages CRIU looked at
 * @param pagesWritten pages CRIU sent (dirty since the previous round, or all in round 1)
 * @param pagesSkippedParent pages left out because the previous round already has them
 * @param bytes bytes shipped in this round (pages and image files)
 * @param frozen how long CRIU kept the tree frozen in this round
 * @param took wall-clock time of the whole round, transfer included
 * @since 0.1
 */
public record RoundStats(int round, long pagesScanned, long pagesWritten,
    long pagesSkippedParent, long bytes, Duration frozen, Duration took) {
  public RoundStats {
    if (round < 1) {
      throw new IllegalArgumentException("round < 1: " + round);
    }
    Objects.requireNonNull(frozen, "frozen");
    Objects.requireNonNull(took, "took");
  }
}

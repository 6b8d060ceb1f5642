package io.criu4j.internal.migrate;

import io.criu4j.PreCopyPolicy;
import io.criu4j.RoundStats;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/** The pre-copy stop rule of {@link PreCopyPolicy}, applied after each round. */
final class StopRule {
  private StopRule() {}

  /**
   * Why pre-copy should stop after {@code rounds} (oldest first, at least one), or null to run
   * another round.
   *
   * @param elapsed time since pre-copy started
   */
  static String stopReason(PreCopyPolicy policy, List<RoundStats> rounds, Duration elapsed) {
    RoundStats last = rounds.get(rounds.size() - 1);
    if (last.pagesWritten() <= policy.stopBelowPages()) {
      return String.format(Locale.ROOT, "converged: round %d wrote %d pages (threshold %d)",
          last.round(), last.pagesWritten(), policy.stopBelowPages());
    }
    if (rounds.size() >= policy.maxRounds()) {
      return String.format(Locale.ROOT, "round limit: %d rounds, last wrote %d pages",
          rounds.size(), last.pagesWritten());
    }
    double ratio = 1.0;
    if (rounds.size() >= 2) {
      RoundStats prev = rounds.get(rounds.size() - 2);
      ratio = prev.pagesWritten() == 0 ? Double.POSITIVE_INFINITY
          : (double) last.pagesWritten() / prev.pagesWritten();
      if (ratio > 1.0 - policy.minShrinkRatio()) {
        return String.format(Locale.ROOT, "not converging: round %d wrote %d pages, %.0f %% of "
            + "round %d's %d (needs <= %.0f %%)", last.round(), last.pagesWritten(), ratio * 100,
            prev.round(), prev.pagesWritten(), (1.0 - policy.minShrinkRatio()) * 100);
      }
    }
    // The next round writes about ratio times as many pages as this one, in about as much
    // time per page; in round 1 the ratio is unknown, so assume no shrink (the worst case).
    Duration next = Duration.ofNanos((long) (last.took().toNanos() * Math.min(ratio, 1.0)));
    if (elapsed.plus(next).compareTo(policy.maxTotal()) > 0) {
      return String.format(Locale.ROOT, "time budget: %d ms spent, next round predicted %d ms, "
          + "budget %d ms", elapsed.toMillis(), next.toMillis(), policy.maxTotal().toMillis());
    }
    return null;
  }
}

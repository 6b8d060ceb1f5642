package io.criu4j.internal.migrate;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.PreCopyPolicy;
import io.criu4j.RoundStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("The pre-copy stop rule, on scripted round statistics")
class StopRuleTest {
  private static final PreCopyPolicy POLICY = PreCopyPolicy.defaults();

  /** Rounds that wrote these page counts, each taking 1 ms per 1000 pages. */
  private static List<RoundStats> rounds(long... written) {
    List<RoundStats> out = new ArrayList<>();
    for (int i = 0; i < written.length; i++) {
      out.add(new RoundStats(i + 1, written[i] * 2, written[i], 0, written[i] * 4096,
          Duration.ofMillis(1), Duration.ofMillis(Math.max(1, written[i] / 1000))));
    }
    return out;
  }

  private static String decide(PreCopyPolicy p, long... written) {
    return StopRule.stopReason(p, rounds(written), Duration.ofSeconds(1));
  }

  @Test
  void firstRoundAboveTheThresholdAlwaysContinues() {
    assertThat(decide(POLICY, 262_144)).isNull();
  }

  @Test
  void stopsOnceARoundWritesAtMostTheThreshold() {
    assertThat(decide(POLICY, 262_144, 20_000, 1024)).startsWith("converged");
    assertThat(decide(POLICY, 262_144, 20_000, 1025)).isNull();
  }

  @Test
  void aSmallFirstRoundStopsAtOnce() {
    assertThat(decide(POLICY, 100)).startsWith("converged");
  }

  @Test
  void stopsWhenTheDirtySetShrinksByLessThanTheMinimumRatio() {
    // 85 % of the previous round: shrinking, but by less than 20 %
    assertThat(decide(POLICY, 100_000, 85_000)).startsWith("not converging");
    // 75 %: enough progress to go on
    assertThat(decide(POLICY, 100_000, 75_000)).isNull();
  }

  @Test
  void stopsWhenTheDirtySetGrows() {
    assertThat(decide(POLICY, 100_000, 60_000, 66_000)).startsWith("not converging");
  }

  @Test
  void p_haulWouldContinueOnAFlatDirtyRateWhereThisRuleStops() {
    // 5 % growth per round is below p.haul's 10 % growth limit: it would run all 8 rounds.
    assertThat(decide(POLICY, 50_000, 52_500)).startsWith("not converging");
  }

  @Test
  void stopsAtTheRoundLimit() {
    PreCopyPolicy three = POLICY.withMaxRounds(3);
    assertThat(decide(three, 800_000, 400_000)).isNull();
    assertThat(decide(three, 800_000, 400_000, 200_000)).startsWith("round limit");
  }

  @Test
  void stopsWhenThePredictedNextRoundExceedsTheTimeBudget() {
    PreCopyPolicy budget = POLICY.withMaxTotal(Duration.ofSeconds(10));
    List<RoundStats> slow = List.of(new RoundStats(1, 0, 500_000, 0, 0, Duration.ZERO,
        Duration.ofSeconds(6)));
    assertThat(StopRule.stopReason(budget, slow, Duration.ofSeconds(6)))
        .startsWith("time budget");
    assertThat(StopRule.stopReason(budget, slow, Duration.ofSeconds(3))).isNull();
  }

  @Test
  void aShrinkRatioOfZeroOnlyStopsOnGrowth() {
    PreCopyPolicy lax = POLICY.withMinShrinkRatio(0);
    assertThat(decide(lax, 100_000, 100_000)).isNull();
    assertThat(decide(lax, 100_000, 100_001)).startsWith("not converging");
  }
}

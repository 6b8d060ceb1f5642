package io.criu4j.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.criu4j.testing.Fuzz.Verdict;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The harness of a fuzz target ({@code docs/fuzzing.md}): a subclass names the target, gives its
 * {@link #run} (one input under the oracle's rules) and its {@link #seeds}, and declares the
 * {@code @FuzzTest} method, which calls {@link #check}. The harness adds the tests every target
 * has: the saved crashing inputs under {@code fuzz/<target>/regressions/} stay fixed, the seeds
 * pass, the seeds can be regenerated ({@code -Dfuzz.writeSeeds=true}), and the target's
 * {@link Fuzz#report summary line} after the class.
 *
 * <p>One instance per test class, so that the {@code @AfterAll} report and the regression
 * inputs' source can be instance methods.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class FuzzTarget {
  private final String target;
  private final Duration timeout;

  /**
   * @param target the target's name, as in {@code docs/fuzzing.md} and the summary line
   * @param timeout the per-input deadline (a hang is a finding)
   */
  protected FuzzTarget(String target, Duration timeout) {
    this.target = target;
    this.timeout = timeout;
  }

  /** Runs one input; the oracle's rules are those of {@link Fuzz#check}. */
  protected abstract Verdict run(byte[] input) throws Exception;

  /** Valid inputs the fuzzer starts from, also the regression-mode inputs of the target. */
  protected abstract List<byte[]> seeds();

  /**
   * The bytes the worker thread may allocate for {@code input}: by default
   * {@link Fuzz#ALLOCATION_BOUND} plus 16 times the input.
   */
  protected long allocationBound(byte[] input) {
    return Fuzz.ALLOCATION_BOUND + 16L * input.length;
  }

  /**
   * Checks one input under the oracle; an {@link AssertionError} is a finding. The first call
   * warms up with the first seed (see {@link Fuzz#warmUp}).
   */
  protected final void check(byte[] input) {
    Fuzz.warmUp(target, () -> run(seeds().get(0)));
    Fuzz.check(target, input, timeout, allocationBound(input), () -> run(input));
  }

  @ParameterizedTest(allowZeroInvocations = true)
  @MethodSource("regressions")
  protected void savedCrashingInputsStayFixed(Path input) throws Exception {
    check(Files.readAllBytes(input));
  }

  protected Stream<Path> regressions() throws Exception {
    return Fuzz.regressions(target);
  }

  @Test
  protected void seedsPassTheOracle() {
    for (byte[] seed : seeds()) {
      check(seed);
    }
  }

  /** Writes {@link #seeds()} where Jazzer looks for the {@code @FuzzTest} method's inputs. */
  @Test
  @EnabledIfSystemProperty(named = "fuzz.writeSeeds", matches = "true")
  protected void writeSeeds() throws Exception {
    Method fuzzTest = Arrays.stream(getClass().getDeclaredMethods())
        .filter(m -> m.isAnnotationPresent(FuzzTest.class)).findFirst()
        .orElseThrow(() -> new AssertionError("no @FuzzTest method in " + getClass()));
    Fuzz.writeSeeds(getClass(), fuzzTest.getName(), seeds());
    assertThat(seeds()).isNotEmpty();
  }

  @AfterAll
  protected void report() {
    Fuzz.report(target);
  }
}

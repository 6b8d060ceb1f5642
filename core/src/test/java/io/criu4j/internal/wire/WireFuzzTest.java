package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.testing.Fuzz;
import io.criu4j.testing.Fuzz.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fuzz target "wire": the bytes a sender (the image proxy) writes, arbitrary, decoded by
 * {@link FrameCodec#decodeAll} and received by a real receiving {@link MuxConnection} (the image
 * cache's side: handshake, stream state, flow control, files, tunnels, images).
 *
 * <p>Oracle: the codec decodes or throws {@link ProtocolException}; the receiver delivers or
 * fails every call with a {@link MigrationException}, never reports an {@code INTERNAL} error
 * (a bug on its side), ends within the per-input deadline, frees its buffers and leaves no
 * thread or descriptor behind.
 */
class WireFuzzTest {
  static final String TARGET = "wire";
  private static final List<String> THREADS = List.of("criu4j-fuzz-");

  @FuzzTest(maxDuration = "5s")
  void receiverOfSenderBytes(byte[] input) {
    check(input);
  }

  @ParameterizedTest(allowZeroInvocations = true)
  @MethodSource("regressions")
  void savedCrashingInputsStayFixed(Path input) throws Exception {
    check(Files.readAllBytes(input));
  }

  static Stream<Path> regressions() throws Exception {
    return Fuzz.regressions(TARGET);
  }

  @AfterAll
  static void report() {
    Fuzz.report(TARGET);
  }

  static void check(byte[] input) {
    Fuzz.warmUp(TARGET, () -> run(seeds().get(0)));
    Fuzz.check(TARGET, input, Duration.ofSeconds(20), Fuzz.ALLOCATION_BOUND + 16L * input.length,
        () -> run(input));
  }

  private static Verdict run(byte[] input) throws Exception {
    try {
      FrameCodec.decodeAll(input);
    } catch (ProtocolException e) {
      // documented
    }
    int fds = Fuzz.openFds();
    MuxFuzzTest.Outcome o = MuxFuzzTest.receive(input);
    if (o.failure() != null && !(o.failure() instanceof MigrationException)) {
      throw new AssertionError("the receiver's application saw " + o.failure(), o.failure());
    }
    if (o.connectionFailure() instanceof WireProtocolException w && !w.remote()
        && w.code() == ErrorCode.INTERNAL) {
      throw new AssertionError("the receiver failed with an internal error: " + w, w);
    }
    Fuzz.assertNoLeaks(fds, THREADS);
    return o.failure() == null ? Verdict.ACCEPTED : Verdict.REJECTED;
  }

  /** A whole valid file session and a tunnel session. */
  static List<byte[]> seeds() {
    return List.of(MuxFuzzTest.validSession(new Random(1), new HashMap<>()),
        MuxFuzzTest.tunnelSession());
  }

  @Test
  void seedsPass() {
    for (byte[] seed : seeds()) {
      check(seed);
    }
  }

  @Test
  @EnabledIfSystemProperty(named = "fuzz.writeSeeds", matches = "true")
  void writeSeeds() throws Exception {
    Fuzz.writeSeeds(WireFuzzTest.class, "receiverOfSenderBytes", seeds());
    assertThat(seeds()).isNotEmpty();
  }
}

package io.criu4j.internal.wire;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.testing.Fuzz;
import io.criu4j.testing.Fuzz.Verdict;
import io.criu4j.testing.FuzzTarget;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Random;

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
class WireFuzzTest extends FuzzTarget {
  private static final List<String> THREADS = List.of("criu4j-fuzz-");

  WireFuzzTest() {
    super("wire", Duration.ofSeconds(20));
  }

  @FuzzTest(maxDuration = "5s")
  void receiverOfSenderBytes(byte[] input) {
    check(input);
  }

  @Override
  protected Verdict run(byte[] input) throws Exception {
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
  @Override
  protected List<byte[]> seeds() {
    return List.of(MuxFuzzTest.validSession(new Random(1), new HashMap<>()),
        MuxFuzzTest.tunnelSession());
  }
}

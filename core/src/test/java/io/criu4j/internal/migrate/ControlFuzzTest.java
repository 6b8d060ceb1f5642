package io.criu4j.internal.migrate;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import io.criu4j.TransportException;
import io.criu4j.internal.rpc.ControlProto.Abort;
import io.criu4j.internal.rpc.ControlProto.BeginImages;
import io.criu4j.internal.rpc.ControlProto.Commit;
import io.criu4j.internal.rpc.ControlProto.Envelope;
import io.criu4j.internal.rpc.ControlProto.Hello;
import io.criu4j.internal.rpc.ControlProto.ImagesShipped;
import io.criu4j.internal.rpc.ControlProto.Preflight;
import io.criu4j.internal.rpc.ControlProto.PreflightResult;
import io.criu4j.internal.rpc.ControlProto.RestoreFlags;
import io.criu4j.internal.rpc.ControlProto.Version;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import io.criu4j.testing.Fuzz;
import io.criu4j.testing.Fuzz.Verdict;
import io.criu4j.testing.FuzzTarget;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Fuzz target "control": the bytes a peer sends on a migration's control connection after the
 * preamble, arbitrary, read by a real {@link ControlChannel} (length-prefixed envelopes, its
 * reader thread and inbox) and interpreted the way the agent and the source read the fields
 * that can be malformed: the Hello's session id and the CRIU versions of Preflight and
 * PreflightResult.
 *
 * <p>Oracle: every message is delivered or the channel fails with a {@link ProtocolException}
 * or {@link TransportException} (never a wrapped runtime exception of the reader); nothing is
 * allocated from a length prefix beyond the 1 MiB limit; the end of input is seen within the
 * deadline; the reader thread and the connection are gone after {@link ControlChannel#close()}.
 */
class ControlFuzzTest extends FuzzTarget {
  private static final String LABEL = "fuzz";
  private static final List<String> THREADS = List.of("criu4j-" + LABEL + "-control");
  private static final Transport MEM = Transports.inMemory();
  private static Listener listener;

  ControlFuzzTest() {
    super("control", Duration.ofSeconds(10));
  }

  @FuzzTest(maxDuration = "5s")
  void controlMessages(byte[] input) {
    check(input);
  }

  @Override
  protected long allocationBound(byte[] input) {
    return super.allocationBound(input) + ControlChannel.MAX_MESSAGE;
  }

  @AfterAll
  static void closeListener() {
    if (listener != null) {
      listener.close();
    }
  }

  private static synchronized Listener listener() throws MigrationException {
    if (listener == null) {
      listener = MEM.listen(URI.create("mem://control-fuzz-" + UUID.randomUUID()));
    }
    return listener;
  }

  @Override
  protected Verdict run(byte[] input) throws Exception {
    int fds = Fuzz.openFds();
    Listener l = listener();
    Connection peer = MEM.connect(l.address(), Duration.ofSeconds(5));
    Connection ours = l.accept(Duration.ofSeconds(5));
    ControlChannel channel = new ControlChannel(ours, LABEL);
    try {
      try {
        peer.write(ByteBuffer.wrap(input));
        peer.shutdownOutput();
      } catch (TransportException e) {
        // the channel already gave up and closed: its verdict is below
      }
      long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
      while (true) {
        Envelope e;
        try {
          e = channel.receive(deadline, () -> null, () -> "TIMEOUT");
        } catch (ProtocolException | TransportException ex) {
          if (ex.getMessage().contains("TIMEOUT")) {
            throw new AssertionError("the end of the input was not seen: " + ex, ex);
          }
          if (ex.getMessage().startsWith(LABEL + ": java.")) {
            throw new AssertionError("the reader failed with a runtime exception: " + ex, ex);
          }
          return ex.getMessage().contains("the peer closed the control connection")
              ? Verdict.ACCEPTED : Verdict.REJECTED;
        }
        interpret(e);
      }
    } finally {
      channel.close();
      peer.close();
      Fuzz.assertNoLeaks(fds, THREADS);
    }
  }

  /** What the agent and the source read from the fields a peer controls. */
  private static void interpret(Envelope e) {
    try {
      switch (e.getBodyCase()) {
        case HELLO -> Wire.sessionId(e.getHello().getSessionId());
        case PREFLIGHT -> Wire.version(e.getPreflight().getCriu());
        case PREFLIGHT_RESULT -> {
          if (e.getPreflightResult().hasCriu()) {
            Wire.version(e.getPreflightResult().getCriu());
          }
        }
        default -> Wire.describe(e);
      }
    } catch (ProtocolException documented) {
      // the session ends with this, and an Abort to the peer
    }
  }

  @Override
  protected List<byte[]> seeds() {
    Version criu = Version.newBuilder().setMajor(4).setMinor(1).setSublevel(1).build();
    Envelope hello = Envelope.newBuilder().setHello(Hello.newBuilder()
        .setSessionId(new UUID(1, 2).toString()).setProtocol(Wire.PROTOCOL)).build();
    Envelope preflight = Envelope.newBuilder().setPreflight(Preflight.newBuilder().setCriu(criu)
        .setPageServerHeaderSize(24).setMemTrack(false).setEstimatedBytes(1 << 20)
        .setPageSize(4096).setPreCopy(false)
        .setRestore(RestoreFlags.newBuilder().setShellJob(true).addExternal("mnt[]:x"))).build();
    Envelope result = Envelope.newBuilder().setPreflightResult(PreflightResult.newBuilder()
        .setOk(true).setCriu(criu).setPageServerHeaderSize(24)).build();
    Envelope begin = Envelope.newBuilder().setBeginImages(BeginImages.newBuilder().setRound(1)
        .setFinal(true)).build();
    Envelope shipped = Envelope.newBuilder().setImagesShipped(ImagesShipped.newBuilder()
        .setRound(1).setFiles(3).setFileBytes(100)).build();
    Envelope commit = Envelope.newBuilder().setCommit(Commit.getDefaultInstance()).build();
    Envelope abort = Envelope.newBuilder().setAbort(Abort.newBuilder().setReason("stop")).build();
    return List.of(frames(hello, preflight, begin, shipped, commit),
        frames(result, abort), frames(hello, abort));
  }

  private static byte[] frames(Envelope... messages) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Envelope m : messages) {
      byte[] body = m.toByteArray();
      out.writeBytes(ByteBuffer.allocate(4).putInt(body.length).array());
      out.writeBytes(body);
    }
    return out.toByteArray();
  }

  @Test
  void aVersionAbove2To31IsTheFaultOfThePeer() {
    Version v = Version.newBuilder().setMajor(0x80000000).setMinor(1).build();
    assertThatThrownBy(() -> Wire.version(v)).isInstanceOf(ProtocolException.class)
        .hasMessageContaining("negative CRIU version");
    assertThatThrownBy(() -> Wire.sessionId("not-a-uuid")).isInstanceOf(ProtocolException.class)
        .hasMessageContaining("malformed session id");
  }
}

package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.criu4j.MigrationException;
import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Feeds whole sender sessions, valid and mutated, to a real receiving {@link MuxConnection}: it
 * either receives everything or fails with a {@link MigrationException}; it never hangs, never
 * crashes with another exception, and always frees its buffers. {@link #receive(byte[])} is the
 * entry point a fuzzer can drive with arbitrary bytes.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MuxFuzzTest {
  private static final long SEED = 0x5EED_F00DL;

  /** What the receiving application saw. */
  record Outcome(
      Map<String, byte[]> files,
      List<ImageEnd> images,
      long tunnelBytes,
      Throwable failure,
      MigrationException connectionFailure) {}

  @Test
  void validSessionIsReceivedIntact() throws Exception {
    Map<String, byte[]> files = new HashMap<>();
    byte[] session = validSession(new Random(SEED), files);

    Outcome outcome = receive(session);

    assertThat(outcome.files()).containsOnlyKeys(files.keySet());
    files.forEach((name, data) -> assertThat(outcome.files().get(name)).isEqualTo(data));
    assertThat(outcome.images()).containsExactly(new ImageEnd(0, 3, totalBytes(files)));
    assertThat(outcome.failure()).isNull();
    assertThat(outcome.connectionFailure()).isNull();
  }

  @Test
  void tunnelSessionThatEndsWithoutGoodbyeFailsCleanly() throws Exception {
    byte[] session = tunnelSession();

    Outcome outcome = receive(session);

    // A recording cannot wait for the receiver's END_OF_STREAM before its GOODBYE, so it just
    // ends: a lost peer. The failure is final; what was buffered is dropped.
    assertThat(outcome.failure())
        .isInstanceOf(io.criu4j.TransportException.class)
        .hasMessageContaining("peer closed the connection without GOODBYE");
  }

  @Test
  void mutatedSessionsFailWithAMigrationExceptionOrSucceedAndNeverHang() throws Exception {
    Random random = new Random(SEED);
    byte[][] sessions = {validSession(new Random(SEED), new HashMap<>()), tunnelSession()};
    int failed = 0;
    for (int round = 0; round < 400; round++) {
      byte[] mutated = FrameCodecTest.mutate(sessions[round % 2], random);
      int r = round;
      Outcome outcome =
          assertTimeoutPreemptively(
              Duration.ofSeconds(10), () -> receive(mutated), () -> "hung in round " + r);

      if (outcome.failure() != null) {
        failed++;
        assertThat(outcome.failure())
            .as("round %d (seed %d)", round, SEED)
            .isInstanceOf(MigrationException.class);
      }
      if (outcome.connectionFailure() instanceof WireProtocolException w) {
        assertThat(w.code()).as("round %d: %s", round, w).isNotEqualTo(ErrorCode.INTERNAL);
      }
    }
    assertThat(failed).isPositive();
  }

  /**
   * Runs a receiver over {@code senderBytes} (a recorded sender's output) with an application
   * that accepts and reads everything, and returns what it saw. Fuzzer entry point.
   */
  static Outcome receive(byte[] senderBytes) throws Exception {
    MuxConfig config =
        MuxConfig.receiver()
            .name("fuzz")
            .stallTimeout(Duration.ofSeconds(2))
            .closeTimeout(Duration.ofMillis(200))
            .build();
    Map<String, byte[]> files = new HashMap<>();
    List<ImageEnd> images = new ArrayList<>();
    MuxConnection mux;
    try {
      mux =
          MuxConnection.open(
              Channels.newChannel(new ByteArrayInputStream(senderBytes)),
              Channels.newChannel(OutputStream.nullOutputStream()),
              config);
    } catch (MigrationException e) {
      return new Outcome(files, images, 0, e, e);
    } catch (RuntimeException e) {
      return new Outcome(files, images, 0, e, null);
    }
    Throwable failure = null;
    long tunnelBytes = 0;
    try {
      Inbound next;
      while ((next = mux.accept()) != null) {
        if (next instanceof InboundFile f) {
          files.put(f.name(), MuxConnectionTest.readAll(f));
        } else if (next instanceof Tunnel t) {
          ByteBuffer buf = ByteBuffer.allocate(1024);
          int n;
          while ((n = t.read(buf.clear())) >= 0) {
            tunnelBytes += n;
            t.grant(n);
          }
          t.close();
        } else if (next instanceof ImageEnd e) {
          images.add(e);
          mux.acknowledgeImage(e);
        }
      }
    } catch (Throwable t) {
      failure = t;
    } finally {
      mux.close();
    }
    assertThat(mux.awaitTermination(5, TimeUnit.SECONDS)).isTrue();
    assertThat(mux.buffersHeld()).isZero();
    return new Outcome(files, images, tunnelBytes, failure, mux.failure().orElse(null));
  }

  private static long totalBytes(Map<String, byte[]> files) {
    return files.values().stream().mapToLong(b -> b.length).sum();
  }

  /** A sender's side of a tunnel session: HELLO, a tunnel with 20 bytes, its END_OF_STREAM. */
  static byte[] tunnelSession() {
    List<Frame> frames = new ArrayList<>();
    frames.add(RawPeer.hello(Role.SENDER, RawPeer.SESSION));
    frames.add(new Frame.OpenTunnel(1, "page-server"));
    for (int i = 0; i < 5; i++) {
      frames.add(new Frame.Data(1, ByteBuffer.wrap(new byte[] {1, 2, 3, 4})));
    }
    frames.add(new Frame.EndOfStream(1));
    return FrameCodec.encodeAll(frames);
  }

  /** A sender's side of a session: HELLO, three interleaved files, END_OF_IMAGE, GOODBYE. */
  static byte[] validSession(Random random, Map<String, byte[]> files) {
    List<Frame> frames = new ArrayList<>();
    frames.add(RawPeer.hello(Role.SENDER, RawPeer.SESSION));
    String[] names = {"inventory.img", "pagemap-1.img", "pages-1.img"};
    long total = 0;
    for (int i = 0; i < names.length; i++) {
      byte[] data = new byte[random.nextInt(3) * 5000 + random.nextInt(100)];
      random.nextBytes(data);
      files.put(names[i], data);
      total += data.length;
      frames.add(new Frame.OpenFile(2 * i + 1, names[i], data.length, 0600));
    }
    for (int off = 0; off < 15_000; off += 3000) {
      for (int i = 0; i < names.length; i++) {
        byte[] data = files.get(names[i]);
        if (off < data.length) {
          int n = Math.min(3000, data.length - off);
          frames.add(new Frame.Data(2 * i + 1, ByteBuffer.wrap(data, off, n).slice()));
        }
      }
    }
    for (int i = 0; i < names.length; i++) {
      CRC32C crc = new CRC32C();
      crc.update(files.get(names[i]));
      frames.add(new Frame.EndOfFile(2 * i + 1, (int) crc.getValue()));
    }
    frames.add(new Frame.EndOfImage(false, 0, names.length, total));
    frames.add(new Frame.Goodbye());
    return FrameCodec.encodeAll(frames);
  }
}

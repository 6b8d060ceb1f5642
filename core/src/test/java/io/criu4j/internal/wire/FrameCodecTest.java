package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FrameCodecTest {
  private static final long SEED = 0xC0FFEE_2024L;

  // ------------------------------------------------------------------ layout

  @Test
  void headerIsTwelveBigEndianBytesOfTypeFlagsReservedStreamAndLength() throws Exception {
    byte[] bytes = FrameCodec.encode(new Frame.EndOfFile(0x01020304, 0xAABBCCDD));

    assertThat(bytes)
        .containsExactly(
            0x05, 0x00, 0x00, 0x00, // END_OF_FILE, flags, reserved
            0x01, 0x02, 0x03, 0x04, // stream id
            0x00, 0x00, 0x00, 0x04, // payload length
            0xAA, 0xBB, 0xCC, 0xDD); // CRC32C
  }

  @Test
  void helloStartsWithMagicAndVersionAndIs48Bytes() throws Exception {
    byte[] bytes = FrameCodec.encode(RawPeer.hello(Role.SENDER, RawPeer.SESSION));

    assertThat(bytes).hasSize(FrameCodec.HEADER_BYTES + 48);
    assertThat(new String(bytes, 12, 8, StandardCharsets.US_ASCII)).isEqualTo("CRIU4JWP");
    assertThat(ByteBuffer.wrap(bytes, 20, 2).getShort()).isEqualTo((short) 1);
  }

  @Test
  void everyFrameTypeRoundTrips() throws Exception {
    List<Frame> frames =
        List.of(
            RawPeer.hello(Role.RECEIVER, new UUID(1, 2)),
            new Frame.Accept(1, 1, new UUID(3, 4)),
            new Frame.OpenFile(1, "pages-1.img", 1L << 40, 0644),
            new Frame.Data(1, ByteBuffer.wrap(new byte[] {1, 2, 3})),
            new Frame.EndOfFile(1, -1),
            new Frame.OpenTunnel(3, "page-server"),
            new Frame.EndOfStream(3),
            new Frame.WindowUpdate(0, Integer.MAX_VALUE),
            new Frame.EndOfImage(true, 2, 7, 12345),
            new Frame.ErrorFrame(0, 8, "file sent twice: \"x\""),
            new Frame.Ping(-5),
            new Frame.Pong(Long.MAX_VALUE),
            new Frame.Goodbye());

    assertThat(FrameCodec.decodeAll(FrameCodec.encodeAll(frames))).isEqualTo(frames);
  }

  // ------------------------------------------------------------------ strict header rules

  @Test
  void unknownFrameTypeIsRejectedNamingTheType() {
    byte[] bytes = FrameCodec.header(0x7F, 0, 0, 1, 0);

    WireProtocolException e = decodeFailure(bytes);

    assertThat(e.code()).isEqualTo(ErrorCode.UNKNOWN_FRAME_TYPE);
    assertThat(e).hasMessageContaining("unknown frame type 0x7f");
  }

  @Test
  void dataFrameAboveTheMaximumPayloadIsRejectedBeforeReadingIt() {
    byte[] bytes = FrameCodec.header(FrameType.DATA.code(), 0, 0, 1, 2 * 1024 * 1024);

    WireProtocolException e = decodeFailure(bytes);

    assertThat(e.code()).isEqualTo(ErrorCode.FRAME_TOO_LARGE);
    assertThat(e).hasMessageContaining("2097152 bytes").hasMessageContaining("1048576");
  }

  @Test
  void dataFrameAboveANegotiatedMaximumIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.DATA.code(), 0, 0, 1, 300_000);

    assertThatThrownBy(() -> FrameCodec.decodeAll(bytes, 256 * 1024))
        .isInstanceOf(WireProtocolException.class)
        .hasMessageContaining("300000 bytes")
        .hasMessageContaining("262144");
  }

  @Test
  void controlFrameAboveFourKibIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.OPEN_FILE.code(), 0, 0, 1, 5000);

    assertThat(decodeFailure(bytes).code()).isEqualTo(ErrorCode.FRAME_TOO_LARGE);
  }

  @Test
  void lengthSizedAsANegativeIntIsTooLargeNotNegative() {
    byte[] bytes = FrameCodec.header(FrameType.DATA.code(), 0, 0, 1, 0xFFFFFFF0);

    assertThat(decodeFailure(bytes)).hasMessageContaining("4294967280 bytes");
  }

  @Test
  void fixedSizeFrameWithWrongLengthIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.WINDOW_UPDATE.code(), 0, 0, 0, 7);

    assertThat(decodeFailure(bytes))
        .hasMessageContaining("bad length 7 for WINDOW_UPDATE frame (expected 4)");
  }

  @Test
  void nonZeroReservedFieldIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.GOODBYE.code(), 0, 1, 0, 0);

    assertThat(decodeFailure(bytes)).hasMessageContaining("non-zero reserved field 0x0001");
  }

  @Test
  void unknownFlagsAreRejected() {
    byte[] bytes = FrameCodec.header(FrameType.GOODBYE.code(), 0x80, 0, 0, 0);

    assertThat(decodeFailure(bytes)).hasMessageContaining("unknown flags 0x80");
  }

  @Test
  void connectionFrameOnAStreamIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.GOODBYE.code(), 0, 0, 3, 0);

    assertThat(decodeFailure(bytes)).hasMessageContaining("GOODBYE frame must be on stream 0");
  }

  @Test
  void streamFrameOnStreamZeroIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.END_OF_STREAM.code(), 0, 0, 0, 0);

    assertThat(decodeFailure(bytes)).hasMessageContaining("must be on a stream, not stream 0");
  }

  @Test
  void emptyDataFrameIsRejected() {
    byte[] bytes = FrameCodec.header(FrameType.DATA.code(), 0, 0, 1, 0);

    assertThat(decodeFailure(bytes)).hasMessageContaining("empty DATA frame");
  }

  @Test
  void zeroWindowIncrementIsRejected() {
    byte[] bytes = FrameCodec.encode(new Frame.WindowUpdate(0, 0));

    assertThat(decodeFailure(bytes)).hasMessageContaining("WINDOW_UPDATE with increment 0");
  }

  @Test
  void negativeFileSizeIsRejected() {
    byte[] bytes = FrameCodec.encode(new Frame.OpenFile(1, "a", -1, 0));

    assertThat(decodeFailure(bytes)).hasMessageContaining("size 18446744073709551615");
  }

  @Test
  void modeBeyondPermissionBitsIsRejected() {
    byte[] bytes = FrameCodec.encode(new Frame.OpenFile(1, "a", 1, 0100644));

    assertThat(decodeFailure(bytes)).hasMessageContaining("mode 0100644");
  }

  // ------------------------------------------------------------------ truncation

  @Test
  void streamEndingInsideAHeaderIsATruncatedFrame() {
    byte[] bytes = Arrays.copyOf(FrameCodec.encode(new Frame.Goodbye()), 5);

    assertThat(decodeFailure(bytes))
        .hasMessageContaining("truncated frame")
        .hasMessageContaining("5 of 12 header bytes");
  }

  @Test
  void streamEndingInsideAPayloadIsATruncatedFrame() {
    byte[] frame = FrameCodec.encode(new Frame.Data(3, ByteBuffer.allocate(100)));
    byte[] bytes = Arrays.copyOf(frame, 12 + 40);

    assertThat(decodeFailure(bytes))
        .hasMessageContaining("truncated frame")
        .hasMessageContaining("40 of 100 payload bytes of a DATA frame on stream 3");
  }

  @Test
  void streamEndingBetweenFramesDecodesCleanly() throws Exception {
    byte[] bytes = FrameCodec.encodeAll(List.of(new Frame.Ping(1), new Frame.Goodbye()));

    assertThat(FrameCodec.decodeAll(bytes)).hasSize(2);
  }

  // ------------------------------------------------------------------ handshake frames

  @Test
  void helloOfAnotherVersionIsRejectedNamingBothVersions() {
    Frame.Hello v2 =
        new Frame.Hello(2, Role.SENDER, 0, RawPeer.SESSION, 65536, 65536, 65536, 8);

    WireProtocolException e = decodeFailure(FrameCodec.encode(v2));

    assertThat(e.code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION);
    assertThat(e).hasMessageContaining("version 2").hasMessageContaining("version 1");
  }

  @Test
  void helloOfAnotherVersionWithAnotherLayoutIsStillRecognisedAsAVersionMismatch() {
    ByteBuffer b = ByteBuffer.allocate(12 + 20);
    FrameCodec.putHeader(b, FrameType.HELLO.code(), 0, 0, 0, 20);
    b.put(FrameCodec.MAGIC).putShort((short) 7).put(new byte[10]);

    assertThat(decodeFailure(b.array()).code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION);
  }

  @Test
  void helloWithBadMagicIsNotACriu4jPeer() {
    byte[] bytes = FrameCodec.encode(RawPeer.hello(Role.SENDER, RawPeer.SESSION));
    bytes[12] = 'X';

    assertThat(decodeFailure(bytes)).hasMessageContaining("not a criu4j wire peer: bad magic");
  }

  @Test
  void helloWithAMaxFramePayloadAboveTheHardCapIsRejected() {
    Frame.Hello h =
        new Frame.Hello(1, Role.SENDER, 0, RawPeer.SESSION, 2 << 20, 65536, 65536, 8);

    assertThat(decodeFailure(FrameCodec.encode(h)))
        .hasMessageContaining("max frame payload 2097152 outside 4096..1048576");
  }

  // ------------------------------------------------------------------ names

  @Test
  void fileNameWithASlashIsRejected() {
    assertBadName("images/pages-1.img", "contains '/'");
  }

  @Test
  void fileNameDotDotIsRejected() {
    assertBadName("..", "'..' is not a file name");
  }

  @Test
  void fileNameDotIsRejected() {
    assertBadName(".", "'.' is not a file name");
  }

  @Test
  void absoluteFileNameIsRejected() {
    assertBadName("/etc/passwd", "absolute path");
  }

  @Test
  void fileNameWithNulIsRejected() {
    assertBadName("pages\0.img", "contains NUL");
  }

  @Test
  void fileNameWithAControlCharacterIsRejected() {
    assertBadName("pages\n.img", "control character 0x0a");
  }

  @Test
  void emptyFileNameIsRejected() {
    assertBadName("", "empty");
  }

  @Test
  void fileNameLongerThan255BytesIsRejected() {
    assertBadName("é".repeat(128), "longer than 255 bytes (256)");
  }

  @Test
  void fileNameThatIsNotUtf8IsRejected() {
    ByteBuffer b = ByteBuffer.allocate(12 + 14 + 2);
    FrameCodec.putHeader(b, FrameType.OPEN_FILE.code(), 0, 0, 1, 16);
    b.putLong(1).putInt(0).putShort((short) 2).put((byte) 0xC3).put((byte) 0x28);

    WireProtocolException e = decodeFailure(b.array());

    assertThat(e.code()).isEqualTo(ErrorCode.BAD_NAME);
    assertThat(e).hasMessageContaining("not valid UTF-8");
  }

  @Test
  void validNamesPass() throws Exception {
    for (String name : List.of("pages-1.img", "..hidden", "a..b", "ü.img", "x".repeat(255))) {
      assertThat(FrameCodec.decodeAll(FrameCodec.encode(new Frame.OpenFile(1, name, 0, 0))))
          .containsExactly(new Frame.OpenFile(1, name, 0, 0));
      assertThat(Names.checkLocal(name)).isNotEmpty();
    }
  }

  @Test
  void localBadNamesAreIllegalArguments() {
    assertThatThrownBy(() -> Names.checkLocal("../x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("\"../x\"");
  }

  private static void assertBadName(String name, String problem) {
    WireProtocolException e =
        decodeFailure(FrameCodec.encode(new Frame.OpenFile(1, name, 10, 0)));
    assertThat(e.code()).isEqualTo(ErrorCode.BAD_NAME);
    assertThat(e).hasMessageContaining("bad file name").hasMessageContaining(problem);
  }

  // ------------------------------------------------------------------ property tests

  @Test
  void randomFramesRoundTripThroughEncodeAndDecode() throws Exception {
    Random random = new Random(SEED);
    for (int round = 0; round < 300; round++) {
      List<Frame> frames = new ArrayList<>();
      int count = 1 + random.nextInt(20);
      for (int i = 0; i < count; i++) {
        frames.add(randomFrame(random));
      }

      List<Frame> decoded = FrameCodec.decodeAll(FrameCodec.encodeAll(frames));

      assertThat(decoded).as("round %d (seed %d)", round, SEED).isEqualTo(frames);
    }
  }

  @Test
  void mutatedStreamsEitherDecodeOrFailWithAProtocolExceptionAndNeverHang() {
    Random random = new Random(SEED + 1);
    int[] outcomes = new int[2]; // decoded, rejected
    int[] round = {0};
    org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
        Duration.ofSeconds(30),
        () -> {
          for (; round[0] < 5000; round[0]++) {
            List<Frame> frames = new ArrayList<>();
            for (int i = 0, n = 1 + random.nextInt(8); i < n; i++) {
              frames.add(randomFrame(random));
            }
            byte[] bytes = mutate(FrameCodec.encodeAll(frames), random);
            try {
              FrameCodec.decodeAll(bytes);
              outcomes[0]++;
            } catch (Throwable e) {
              assertThat(e)
                  .as("round %d (seed %d)", round[0], SEED + 1)
                  .isInstanceOf(ProtocolException.class);
              outcomes[1]++;
            }
          }
        },
        () -> "decoding hung in round " + round[0] + " (seed " + (SEED + 1) + ")");
    assertThat(outcomes[0]).as("decoded").isPositive();
    assertThat(outcomes[1]).as("rejected").isPositive();
  }

  /** Flips bytes, cuts the stream, inserts garbage or overwrites a length field. */
  static byte[] mutate(byte[] bytes, Random random) {
    byte[] b = bytes.clone();
    switch (random.nextInt(5)) {
      case 0 -> {
        for (int i = 0, n = 1 + random.nextInt(4); i < n && b.length > 0; i++) {
          b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
        }
      }
      case 1 -> b = Arrays.copyOf(b, b.length == 0 ? 0 : random.nextInt(b.length));
      case 2 -> {
        int at = b.length == 0 ? 0 : random.nextInt(b.length);
        byte[] junk = new byte[1 + random.nextInt(16)];
        random.nextBytes(junk);
        byte[] c = new byte[b.length + junk.length];
        System.arraycopy(b, 0, c, 0, at);
        System.arraycopy(junk, 0, c, at, junk.length);
        System.arraycopy(b, at, c, at + junk.length, b.length - at);
        b = c;
      }
      case 3 -> {
        if (b.length >= 12) {
          ByteBuffer.wrap(b).putInt(8, random.nextInt());
        }
      }
      default -> {
        if (b.length > 0) {
          b[random.nextInt(b.length)] = (byte) random.nextInt(256);
        }
      }
    }
    return b;
  }

  static Frame randomFrame(Random r) {
    int stream = 1 + r.nextInt(Integer.MAX_VALUE - 1);
    switch (r.nextInt(13)) {
      case 0:
        return new Frame.Hello(
            1,
            r.nextBoolean() ? Role.SENDER : Role.RECEIVER,
            r.nextInt(),
            new UUID(r.nextLong(), r.nextLong()),
            4096 + r.nextInt(FrameCodec.HARD_MAX_FRAME_PAYLOAD - 4096 + 1),
            r.nextInt(Integer.MAX_VALUE),
            r.nextInt(Integer.MAX_VALUE),
            1 + r.nextInt(Integer.MAX_VALUE - 1));
      case 1:
        return new Frame.Accept(1, r.nextInt(), new UUID(r.nextLong(), r.nextLong()));
      case 2:
        return new Frame.OpenFile(
            stream, randomName(r), r.nextLong() & Long.MAX_VALUE, r.nextInt(07777 + 1));
      case 3:
        {
          byte[] data = new byte[1 + r.nextInt(2000)];
          r.nextBytes(data);
          return new Frame.Data(stream, ByteBuffer.wrap(data));
        }
      case 4:
        return new Frame.EndOfFile(stream, r.nextInt());
      case 5:
        return new Frame.OpenTunnel(stream, randomName(r));
      case 6:
        return new Frame.EndOfStream(stream);
      case 7:
        return new Frame.WindowUpdate(
            r.nextBoolean() ? 0 : stream, 1 + r.nextInt(Integer.MAX_VALUE));
      case 8:
        return new Frame.EndOfImage(
            r.nextBoolean(),
            r.nextInt(Integer.MAX_VALUE),
            r.nextInt(Integer.MAX_VALUE),
            r.nextLong() & Long.MAX_VALUE);
      case 9:
        {
          StringBuilder reason = new StringBuilder();
          for (int i = 0, n = r.nextInt(200); i < n; i++) {
            reason.append((char) (' ' + r.nextInt(95)));
          }
          return new Frame.ErrorFrame(
              r.nextBoolean() ? 0 : stream, r.nextInt(0x10000), reason.toString());
        }
      case 10:
        return new Frame.Ping(r.nextLong());
      case 11:
        return new Frame.Pong(r.nextLong());
      default:
        return new Frame.Goodbye();
    }
  }

  private static String randomName(Random r) {
    String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.äö€";
    while (true) {
      StringBuilder sb = new StringBuilder();
      for (int i = 0, n = 1 + r.nextInt(40); i < n; i++) {
        sb.append(alphabet.charAt(r.nextInt(alphabet.length())));
      }
      String name = sb.toString();
      if (!name.equals(".") && !name.equals("..")) {
        return name;
      }
    }
  }

  private static WireProtocolException decodeFailure(byte[] bytes) {
    WireProtocolException e =
        catchThrowableOfType(WireProtocolException.class, () -> FrameCodec.decodeAll(bytes));
    assertThat(e).as("decoding should fail").isNotNull();
    return e;
  }
}

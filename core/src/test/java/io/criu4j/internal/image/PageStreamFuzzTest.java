package io.criu4j.internal.image;

import static io.criu4j.internal.image.PageStreamParser.PE_LAZY;
import static io.criu4j.internal.image.PageStreamParser.PE_PRESENT;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_ADD_F;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_CLOSE;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_FORCE_CLOSE;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_GET;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.criu4j.ProtocolException;
import io.criu4j.testing.Fuzz;
import io.criu4j.testing.Fuzz.Verdict;
import io.criu4j.testing.FuzzTarget;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Fuzz target "page-stream": the {@code page_server_iov} parser ({@link PageStreamParser}) on
 * arbitrary bytes, with both header sizes, both byte orders and two page sizes. Input layout:
 * byte 0 picks the configuration (bit 0: 32-byte header, bit 1: the opposite byte order, bit 2:
 * 64 KiB pages), byte 1 seeds the chunking, the rest is the stream.
 *
 * <p>Oracle: the parser accepts or throws {@link ProtocolException}; the same bytes cut into
 * random chunks give exactly the same verdict, message and counts as one chunk; the counts agree
 * with each other; a spent parser refuses more input with {@link IllegalStateException}; and it
 * allocates nothing in proportion to {@code nr_pages}.
 */
class PageStreamFuzzTest extends FuzzTarget {
  PageStreamFuzzTest() {
    super("page-stream", Duration.ofSeconds(5));
  }

  @FuzzTest(maxDuration = "5s")
  void pageStreamParser(byte[] input) {
    check(input);
  }

  /** The outcome of one parse: the exception message, or the counts. */
  private record Outcome(String failure, PageStreamParser.Stats stats, boolean boundary) {}

  @Override
  protected Verdict run(byte[] input) throws Exception {
    int config = input.length > 0 ? input[0] : 0;
    int headerSize = (config & 1) == 0 ? PageStreamParser.HEADER_SIZE_V1
        : PageStreamParser.HEADER_SIZE_V2;
    ByteOrder order = (config & 2) == 0 ? ByteOrder.nativeOrder()
        : ByteOrder.nativeOrder() == ByteOrder.BIG_ENDIAN ? ByteOrder.LITTLE_ENDIAN
            : ByteOrder.BIG_ENDIAN;
    int pageSize = (config & 4) == 0 ? 4096 : 65536;
    long chunkSeed = input.length > 1 ? input[1] : 0;
    byte[] stream = input.length > 2 ? Arrays.copyOfRange(input, 2, input.length) : new byte[0];

    Outcome whole = parse(headerSize, pageSize, order, stream, null);
    Outcome chunked = parse(headerSize, pageSize, order, stream, new Random(chunkSeed));
    if (!Objects.equals(whole, chunked)) {
      throw new AssertionError("chunking changed the outcome: " + whole + " vs " + chunked);
    }
    if (whole.failure() != null) {
      return Verdict.REJECTED;
    }
    PageStreamParser.Stats s = whole.stats();
    if (s.bytes() != stream.length || s.payloadBytes() != s.presentPages() * pageSize
        || s.commands().values().stream().mapToLong(Long::longValue).sum() != s.headers()
        || s.closeSeen() != (s.count(PS_IOV_CLOSE) + s.count(PS_IOV_FORCE_CLOSE) > 0)) {
      throw new AssertionError("inconsistent counts " + s + " for " + stream.length + " bytes");
    }
    return Verdict.ACCEPTED;
  }

  private static Outcome parse(int headerSize, int pageSize, ByteOrder order, byte[] stream,
      Random chunks) {
    PageStreamParser p = new PageStreamParser(headerSize, pageSize, order, null);
    ByteBuffer buf = ByteBuffer.wrap(stream);
    try {
      while (buf.hasRemaining()) {
        int n = chunks == null ? buf.remaining()
            : Math.min(buf.remaining(), 1 + chunks.nextInt(2 * headerSize));
        ByteBuffer chunk = buf.slice().limit(n);
        p.feed(chunk);
        if (chunk.hasRemaining()) {
          throw new AssertionError("feed left " + chunk.remaining() + " bytes of a chunk");
        }
        buf.position(buf.position() + n);
      }
      boolean boundary = p.atMessageBoundary();
      p.finish();
      return new Outcome(null, p.stats(), boundary);
    } catch (ProtocolException e) {
      try {
        p.feed(ByteBuffer.allocate(1));
        throw new AssertionError("a spent parser took more input after: " + e.getMessage());
      } catch (IllegalStateException expected) {
        // documented
      } catch (ProtocolException again) {
        throw new AssertionError("a spent parser threw " + again, again);
      }
      return new Outcome(e.getMessage(), null, false);
    }
  }

  /** Valid streams of both header sizes, in the input layout above. */
  @Override
  protected List<byte[]> seeds() {
    List<byte[]> seeds = new java.util.ArrayList<>();
    for (int headerSize : new int[] {24, 32}) {
      int config = headerSize == 32 ? 1 : 0;
      var enc = new PageStreamParserTest.Encoder(headerSize, 4096, headerSize);
      enc.open2(1).data(PageStreamParser.PS_IOV_ADD, 0, 1, 0x400000, 1L << 8 | 1)
          .header(PageStreamParser.PS_IOV_HOLE, 0, 3, 0x401000, 1L << 8 | 1)
          .header(PS_IOV_ADD_F, PE_LAZY, 2, 0x404000, 1L << 8 | 1)
          .data(PS_IOV_ADD_F, PE_PRESENT, 1, 0x406000, 1L << 8 | 2)
          .header(PS_IOV_GET, 0, 1, 0x406000, 77)
          .close(PS_IOV_CLOSE);
      seeds.add(withConfig(config, enc.bytes()));
      var small = new PageStreamParserTest.Encoder(headerSize, 4096, 3);
      small.header(PageStreamParser.PS_IOV_PARENT, 0, 0, 0, 1L << 8 | 1).open2(2)
          .header(PageStreamParser.PS_IOV_OPEN, 0, 0, 0, 2L << 8 | 1)
          .close(PS_IOV_FORCE_CLOSE);
      seeds.add(withConfig(config | 8, small.bytes()));
    }
    return seeds;
  }

  private static byte[] withConfig(int config, byte[] stream) {
    byte[] b = new byte[stream.length + 2];
    b[0] = (byte) config;
    b[1] = (byte) (stream.length * 7);
    System.arraycopy(stream, 0, b, 2, stream.length);
    return b;
  }

  @Test
  void anAbsurdPageCountIsRejectedWithoutAllocating() {
    var enc = new PageStreamParserTest.Encoder(32, 4096, 1);
    enc.header(PageStreamParser.PS_IOV_ADD, 0, Long.MAX_VALUE / 4096, 0, 1L << 8 | 1);
    byte[] input = withConfig(1, enc.bytes());
    check(input);
    assertThatThrownBy(() -> new PageStreamParser(32, 4096).feed(ByteBuffer.wrap(enc.bytes())))
        .isInstanceOf(ProtocolException.class).hasMessageContaining("absurd nr_pages");
  }
}

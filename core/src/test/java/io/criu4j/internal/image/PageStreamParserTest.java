package io.criu4j.internal.image;

import static io.criu4j.internal.image.PageStreamParser.PE_LAZY;
import static io.criu4j.internal.image.PageStreamParser.PE_PARENT;
import static io.criu4j.internal.image.PageStreamParser.PE_PRESENT;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_ADD;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_ADD_F;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_CLOSE;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_FORCE_CLOSE;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_GET;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_HOLE;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_OPEN;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_OPEN2;
import static io.criu4j.internal.image.PageStreamParser.PS_IOV_PARENT;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.criu4j.CriuVersion;
import io.criu4j.ProtocolException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Synthetic page-server streams, cut into random chunks, corrupted and mutated. */
@Timeout(value = 60, unit = SECONDS)
class PageStreamParserTest {
  private static final int PAGE = 4096;
  private static final long PID_PAGEMAP = 1;
  private static final long SHMEM_PAGEMAP = 2;

  /** Writes a page-server stream the way CRIU does; tracks what a parser must count. */
  static final class Encoder {
    final int headerSize;
    final int pageSize;
    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final List<Long> headerOffsets = new ArrayList<>();
    final List<Integer> commands = new ArrayList<>();
    long present;
    long parent;
    long lazy;
    long replyBytes;
    private final Random random;

    Encoder(int headerSize, int pageSize, long seed) {
      this.headerSize = headerSize;
      this.pageSize = pageSize;
      this.random = new Random(seed);
    }

    Encoder header(int command, int flags, long nrPages, long vaddr, long dstId) {
      ByteBuffer b = ByteBuffer.allocate(headerSize).order(ByteOrder.nativeOrder());
      b.putInt(flags << 16 | command);
      if (headerSize == 24) {
        b.putInt((int) nrPages);
      } else {
        b.putInt(random.nextInt()); // padding: CRIU leaves stack garbage here
        b.putLong(nrPages);
      }
      b.putLong(vaddr).putLong(dstId);
      headerOffsets.add((long) out.size());
      commands.add(command);
      out.write(b.array(), 0, headerSize);
      return this;
    }

    Encoder open2(long id) {
      replyBytes += 1;
      return header(PS_IOV_OPEN2, 0, 0, 0, id << 8 | PID_PAGEMAP);
    }

    Encoder data(int command, int flags, int nrPages, long vaddr, long dstId) {
      header(command, flags, nrPages, vaddr, dstId);
      byte[] page = new byte[nrPages * pageSize];
      random.nextBytes(page);
      out.write(page, 0, page.length);
      present += nrPages;
      return this;
    }

    Encoder close(int command) {
      replyBytes += 4;
      return header(command, 0, 0, 0, 0);
    }

    /** A dump of a few tasks: OPEN2 per pagemap, then a mix of ADD_F, holes and lazy pages. */
    Encoder randomDump(int pagemaps, int maxEntries) {
      for (int id = 1; id <= pagemaps; id++) {
        long dst = random.nextInt(5) == 0 ? (long) id << 8 | SHMEM_PAGEMAP
            : (long) id << 8 | PID_PAGEMAP;
        if (random.nextInt(10) == 0) {
          replyBytes += 4;
          header(PS_IOV_PARENT, 0, 0, 0, dst);
        }
        replyBytes += 1;
        header(PS_IOV_OPEN2, 0, 0, 0, dst);
        long vaddr = 0x400000L;
        int entries = 1 + random.nextInt(maxEntries);
        for (int e = 0; e < entries; e++) {
          int n = 1 + random.nextInt(random.nextInt(8) == 0 ? 300 : 16);
          switch (random.nextInt(7)) {
            case 0 -> data(PS_IOV_ADD, 0, n, vaddr, dst);
            case 1 -> {
              header(PS_IOV_HOLE, 0, n, vaddr, dst);
              parent += n;
            }
            case 2 -> {
              header(PS_IOV_ADD_F, PE_PARENT, n, vaddr, dst);
              parent += n;
            }
            case 3 -> {
              header(PS_IOV_ADD_F, PE_LAZY, n, vaddr, dst);
              lazy += n;
            }
            case 4 -> data(PS_IOV_ADD_F, PE_LAZY | PE_PRESENT, n, vaddr, dst);
            default -> data(PS_IOV_ADD_F, PE_PRESENT, n, vaddr, dst);
          }
          vaddr += (long) (n + random.nextInt(4)) * pageSize;
        }
      }
      return this;
    }

    byte[] bytes() {
      return out.toByteArray();
    }
  }

  /** Feeds {@code stream} in chunks of random size (1 byte up to {@code maxChunk}). */
  static void feedInChunks(PageStreamParser parser, byte[] stream, Random random, int maxChunk)
      throws ProtocolException {
    ByteBuffer buf = ByteBuffer.wrap(stream);
    while (buf.hasRemaining()) {
      int n = Math.min(buf.remaining(), 1 + random.nextInt(maxChunk));
      int limit = buf.position() + n;
      ByteBuffer chunk = buf.duplicate().limit(limit);
      parser.feed(chunk);
      assertThat(chunk.position()).isEqualTo(limit);
      buf.position(limit);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {24, 32})
  void randomChunkingGivesExactCounts(int headerSize) throws Exception {
    for (long seed = 1; seed <= 20; seed++) {
      Encoder enc = new Encoder(headerSize, PAGE, seed).randomDump(6, 40).close(PS_IOV_CLOSE);
      byte[] stream = enc.bytes();
      List<Long> offsets = new ArrayList<>();
      List<Integer> commands = new ArrayList<>();
      PageStreamParser parser = new PageStreamParser(headerSize, PAGE, ByteOrder.nativeOrder(),
          (command, flags, nrPages, vaddr, dstId, offset) -> {
            offsets.add(offset);
            commands.add(command);
          });
      Random chunks = new Random(seed * 31);
      feedInChunks(parser, stream, chunks, seed % 2 == 0 ? 64 : 3 * PAGE);
      parser.finish();

      PageStreamParser.Stats stats = parser.stats();
      assertThat(stats.bytes()).isEqualTo(stream.length);
      assertThat(stats.headers()).isEqualTo(enc.headerOffsets.size());
      assertThat(stats.presentPages()).isEqualTo(enc.present);
      assertThat(stats.payloadBytes()).isEqualTo(enc.present * PAGE);
      assertThat(stats.parentPages()).isEqualTo(enc.parent);
      assertThat(stats.lazyPages()).isEqualTo(enc.lazy);
      assertThat(stats.replyBytes()).isEqualTo(enc.replyBytes);
      assertThat(stats.closeSeen()).isTrue();
      assertThat(stats.count(PS_IOV_CLOSE)).isEqualTo(1);
      assertThat(stats.count(PS_IOV_OPEN2)).isEqualTo(6);
      assertThat(offsets).isEqualTo(enc.headerOffsets);
      assertThat(commands).isEqualTo(enc.commands);
      assertThat(stats.commands().values().stream().mapToLong(Long::longValue).sum())
          .isEqualTo(stats.headers());
      assertThat(parser.atMessageBoundary()).isTrue();
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {24, 32})
  void byteByByteFeedingMatchesOneShot(int headerSize) throws Exception {
    byte[] stream = new Encoder(headerSize, PAGE, 7).randomDump(2, 5)
        .close(PS_IOV_FORCE_CLOSE).bytes();
    PageStreamParser oneShot = new PageStreamParser(headerSize, PAGE);
    oneShot.feed(ByteBuffer.wrap(stream));
    PageStreamParser bytewise = new PageStreamParser(headerSize, PAGE);
    for (byte b : stream) {
      bytewise.feed(ByteBuffer.wrap(new byte[] {b}));
    }
    assertThat(bytewise.stats()).isEqualTo(oneShot.stats());
    assertThat(oneShot.stats().count(PS_IOV_FORCE_CLOSE)).isEqualTo(1);
  }

  @Test
  void aLargerPageSizeScalesThePayload() throws Exception {
    int page = 65536;
    Encoder enc = new Encoder(24, page, 3);
    enc.open2(1).data(PS_IOV_ADD_F, PE_PRESENT, 3, 0x10000L * 5, 1L << 8 | PID_PAGEMAP)
        .close(PS_IOV_CLOSE);
    PageStreamParser parser = new PageStreamParser(24, page);
    feedInChunks(parser, enc.bytes(), new Random(1), 5000);
    assertThat(parser.stats().presentPages()).isEqualTo(3);
    assertThat(parser.stats().payloadBytes()).isEqualTo(3L * page);
  }

  @Test
  void theFeedSkipsPageDataWithoutTouchingTheBuffer() throws Exception {
    Encoder enc = new Encoder(32, PAGE, 5).open2(1);
    enc.data(PS_IOV_ADD_F, PE_PRESENT, 2, 0x1000, 1L << 8 | PID_PAGEMAP);
    byte[] stream = enc.bytes();
    byte[] copy = stream.clone();
    ByteBuffer direct = ByteBuffer.allocateDirect(stream.length).put(stream).flip();
    direct.order(ByteOrder.BIG_ENDIAN).mark();
    new PageStreamParser(32, PAGE).feed(direct);
    assertThat(direct.position()).isEqualTo(direct.limit());
    assertThat(direct.order()).isEqualTo(ByteOrder.BIG_ENDIAN);
    direct.reset(); // the mark survived
    assertThat(stream).isEqualTo(copy);
  }

  @ParameterizedTest
  @CsvSource({"24", "32"})
  void skippingPageDataUnseenCountsLikeFeedingIt(int headerSize) throws Exception {
    Encoder enc = new Encoder(headerSize, PAGE, 5).open2(1);
    enc.data(PS_IOV_ADD_F, PE_PRESENT, 3, 0x1000, 1L << 8 | PID_PAGEMAP);
    enc.header(PS_IOV_CLOSE, 0, 0, 0, 0);
    byte[] stream = enc.bytes();
    PageStreamParser fed = new PageStreamParser(headerSize, PAGE);
    fed.feed(ByteBuffer.wrap(stream));

    PageStreamParser skipping = new PageStreamParser(headerSize, PAGE);
    assertThat(skipping.headerBytesLeft()).isEqualTo(headerSize);
    skipping.feed(ByteBuffer.wrap(stream, 0, headerSize + 5)); // OPEN2, part of ADD_F's header
    assertThat(skipping.headerBytesLeft()).isEqualTo(headerSize - 5);
    assertThat(skipping.payloadLeft()).isZero();
    skipping.feed(ByteBuffer.wrap(stream, headerSize + 5, headerSize - 5 + 100));
    assertThat(skipping.payloadLeft()).isEqualTo(3 * PAGE - 100);
    assertThat(skipping.headerBytesLeft()).isZero();
    skipping.skipPayload(2 * PAGE);
    skipping.skipPayload(PAGE - 100);
    assertThat(skipping.payloadLeft()).isZero();
    assertThat(skipping.headerBytesLeft()).isEqualTo(headerSize);
    skipping.feed(ByteBuffer.wrap(stream, stream.length - headerSize, headerSize));

    assertThat(skipping.closeSeen()).isTrue();
    assertThat(skipping.headerBytesLeft()).isZero();
    assertThat(skipping.offset()).isEqualTo(stream.length);
    assertThat(skipping.stats()).isEqualTo(fed.stats());
    assertThatThrownBy(() -> skipping.skipPayload(1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0..0");
  }

  @ParameterizedTest
  @CsvSource({"24, 64", "32, 64", "24, 1", "32, 1"})
  void oneGibibyteParsesQuickly(int headerSize, int maxRun) throws Exception {
    // 16 MiB of traffic (runs of 1..maxRun pages), fed 64 times in 64 KiB chunks = 1 GiB.
    Encoder enc = new Encoder(headerSize, PAGE, 11).open2(1);
    Random random = new Random(12);
    long vaddr = 0x400000;
    while (enc.out.size() < 16 << 20) {
      int n = 1 + random.nextInt(maxRun);
      enc.header(PS_IOV_ADD_F, PE_PRESENT, n, vaddr, 1L << 8 | PID_PAGEMAP);
      enc.out.write(new byte[n * PAGE], 0, n * PAGE);
      vaddr += (long) n * PAGE;
    }
    byte[] pattern = enc.bytes();
    ByteBuffer buf = ByteBuffer.allocateDirect(pattern.length).put(pattern).flip();
    PageStreamParser parser = null;
    int rounds = 64;
    long total = 0;
    long best = Long.MAX_VALUE;
    for (int warm = 0; warm < 2; warm++) {
      parser = new PageStreamParser(headerSize, PAGE);
      long start = System.nanoTime();
      for (int r = 0; r < rounds; r++) {
        buf.clear();
        int end = pattern.length;
        for (int pos = 0; pos < end; pos += 65536) {
          buf.limit(Math.min(end, pos + 65536)).position(pos);
          parser.feed(buf);
        }
      }
      best = Math.min(best, System.nanoTime() - start);
      total = parser.offset();
    }
    double seconds = best / 1e9;
    System.out.printf("PageStreamParser (%d-byte headers, runs of 1..%d pages): %d MiB in %.1f ms"
        + " = %.1f GB/s, %d headers%n", headerSize, maxRun, total >> 20, seconds * 1e3,
        total / seconds / 1e9, parser.stats().headers());
    assertThat(total).isEqualTo((long) pattern.length * rounds);
    assertThat(parser.stats().count(PS_IOV_OPEN2)).isEqualTo(rounds);
    parser.finish();
  }

  private static PageStreamParser expectRejected(int headerSize, byte[] stream, long offset,
      String... messageParts) {
    PageStreamParser parser = new PageStreamParser(headerSize, PAGE);
    assertThatThrownBy(() -> {
      feedInChunks(parser, stream, new Random(9), 17);
      parser.finish();
    }).isExactlyInstanceOf(ProtocolException.class)
        .hasMessageContaining("at stream offset " + offset + "")
        .hasMessageContainingAll(messageParts);
    return parser;
  }

  @ParameterizedTest
  @ValueSource(ints = {24, 32})
  void corruptedStreamsNameTheOffenceAndTheOffset(int headerSize) {
    long dst = 1L << 8 | PID_PAGEMAP;
    Encoder e = new Encoder(headerSize, PAGE, 1).open2(1).data(PS_IOV_ADD_F, PE_PRESENT, 1, 0, dst);
    long at = e.out.size();
    e.header(0x77, 0, 0, 0, dst);
    expectRejected(headerSize, e.bytes(), at, "unknown page-server command 0x77");

    e = new Encoder(headerSize, PAGE, 1).open2(1);
    at = e.out.size();
    e.header(PS_IOV_ADD_F, 0x10, 1, 0, dst);
    expectRejected(headerSize, e.bytes(), at, "PS_IOV_ADD_F with unknown flags 0x10");

    e = new Encoder(headerSize, PAGE, 1).open2(1);
    at = e.out.size();
    e.header(PS_IOV_HOLE, PE_PRESENT, 1, 0, dst);
    expectRejected(headerSize, e.bytes(), at, "PS_IOV_HOLE with flags 0x4");

    e = new Encoder(headerSize, PAGE, 1).open2(1);
    at = e.out.size();
    e.header(PS_IOV_ADD_F, PE_PRESENT, (1L << 31) / PAGE + 1, 0, dst);
    expectRejected(headerSize, e.bytes(), at, "PS_IOV_ADD_F with absurd nr_pages 524289");

    e = new Encoder(headerSize, PAGE, 1).open2(1);
    at = e.out.size();
    e.header(PS_IOV_ADD, 0, 1, 0x1234, dst);
    expectRejected(headerSize, e.bytes(), at, "vaddr 0x1234 not aligned");

    e = new Encoder(headerSize, PAGE, 1);
    at = e.out.size();
    e.header(PS_IOV_OPEN2, 0, 0, 0, 1L << 8 | 99);
    expectRejected(headerSize, e.bytes(), at, "unknown pagemap type 99");

    e = new Encoder(headerSize, PAGE, 1).open2(1).close(PS_IOV_CLOSE);
    at = e.out.size();
    e.open2(2);
    expectRejected(headerSize, e.bytes(), at, "after PS_IOV_CLOSE (sent at stream offset "
        + e.headerOffsets.get(1) + ")");

    e = new Encoder(headerSize, PAGE, 1).open2(1).data(PS_IOV_ADD_F, PE_PRESENT, 2, 0, dst);
    byte[] cut = Arrays.copyOf(e.bytes(), e.out.size() - 100);
    expectRejected(headerSize, cut, e.headerOffsets.get(1), "100 byte(s) short");

    e = new Encoder(headerSize, PAGE, 1).open2(1);
    cut = Arrays.copyOf(e.bytes(), 10);
    expectRejected(headerSize, cut, 0, "inside a header (10 of " + headerSize + " bytes)");
  }

  @Test
  void aHugeNrPagesOnlyFitsTheWideHeader() {
    long dst = 1L << 8 | PID_PAGEMAP;
    Encoder e = new Encoder(32, PAGE, 1).open2(1);
    long at = e.out.size();
    e.header(PS_IOV_HOLE, 0, -1L, 0, dst);
    expectRejected(32, e.bytes(), at, "absurd nr_pages 18446744073709551615");

    // A u32 nr_pages of 0xffffffff is a 16 TiB hole: odd but legal for CRIU 4.1.
    Encoder narrow = new Encoder(24, PAGE, 1).open2(1);
    narrow.header(PS_IOV_HOLE, 0, 0xffffffffL, 0, dst);
    PageStreamParser parser = new PageStreamParser(24, PAGE);
    try {
      parser.feed(ByteBuffer.wrap(narrow.bytes()));
    } catch (ProtocolException ex) {
      fail("rejected a legal header", ex);
    }
    assertThat(parser.stats().parentPages()).isEqualTo(0xffffffffL);
  }

  @Test
  void aSpentParserRefusesMoreInput() {
    Encoder e = new Encoder(24, PAGE, 1).header(0x99, 0, 0, 0, 0);
    PageStreamParser parser = expectRejected(24, e.bytes(), 0, "unknown");
    assertThatThrownBy(() -> parser.feed(ByteBuffer.allocate(1)))
        .isInstanceOf(IllegalStateException.class);
  }

  @ParameterizedTest
  @ValueSource(ints = {24, 32})
  void mutatedStreamsOnlyEverThrowProtocolException(int headerSize) {
    Random random = new Random(20240601L + headerSize);
    int rejected = 0;
    int runs = 3000;
    for (int run = 0; run < runs; run++) {
      Encoder enc = new Encoder(headerSize, PAGE, run).randomDump(2, 6).close(PS_IOV_CLOSE);
      byte[] stream = enc.bytes();
      switch (random.nextInt(5)) {
        case 4 -> { // flip bits inside one header
          long header = enc.headerOffsets.get(random.nextInt(enc.headerOffsets.size()));
          stream[(int) header + random.nextInt(headerSize)] ^= (byte) (1 << random.nextInt(8));
        }
        case 0 -> { // flip bytes anywhere
          for (int k = 1 + random.nextInt(4); k > 0; k--) {
            stream[random.nextInt(stream.length)] ^= (byte) (1 + random.nextInt(255));
          }
        }
        case 1 -> stream = Arrays.copyOf(stream, random.nextInt(stream.length));
        case 2 -> { // insert junk
          int at = random.nextInt(stream.length);
          byte[] junk = new byte[1 + random.nextInt(40)];
          random.nextBytes(junk);
          byte[] out = new byte[stream.length + junk.length];
          System.arraycopy(stream, 0, out, 0, at);
          System.arraycopy(junk, 0, out, at, junk.length);
          System.arraycopy(stream, at, out, at + junk.length, stream.length - at);
          stream = out;
        }
        default -> { // overwrite a header field with extreme values
          ByteBuffer b = ByteBuffer.wrap(stream).order(ByteOrder.nativeOrder());
          int pos = random.nextInt(Math.max(1, stream.length - 8));
          b.putLong(pos, random.nextBoolean() ? -1L : random.nextLong());
        }
      }
      PageStreamParser parser = new PageStreamParser(headerSize, PAGE);
      try {
        feedInChunks(parser, stream, random, 2 * PAGE);
        parser.finish();
      } catch (ProtocolException expected) {
        rejected++;
      } catch (Throwable t) {
        throw new AssertionError("run " + run + " threw " + t, t);
      }
    }
    System.out.printf("mutation test (%d-byte headers): %d of %d mutated streams rejected%n",
        headerSize, rejected, runs);
    assertThat(rejected).isGreaterThan(runs / 3); // many flips hit page data or free fields
  }

  @Test
  void replyBytesPerCommand() {
    assertThat(PageStreamParser.replyBytes(PS_IOV_OPEN2)).isEqualTo(1);
    assertThat(PageStreamParser.replyBytes(PS_IOV_PARENT)).isEqualTo(4);
    assertThat(PageStreamParser.replyBytes(PS_IOV_CLOSE)).isEqualTo(4);
    assertThat(PageStreamParser.replyBytes(PS_IOV_FORCE_CLOSE)).isEqualTo(4);
    assertThat(PageStreamParser.replyBytes(PS_IOV_GET)).isEqualTo(-1);
    for (int c : new int[] {PS_IOV_ADD, PS_IOV_HOLE, PS_IOV_OPEN, PS_IOV_ADD_F}) {
      assertThat(PageStreamParser.replyBytes(c)).isZero();
    }
    assertThatThrownBy(() -> PageStreamParser.replyBytes(8))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0x8");
  }

  @Test
  void theHeaderSizeFollowsTheCriuVersion() {
    assertThat(PageStreamParser.forVersion(CriuVersion.of(4, 1, 1), PAGE).headerSize())
        .isEqualTo(24);
    assertThat(PageStreamParser.forVersion(CriuVersion.of(4, 2, 0), PAGE).headerSize())
        .isEqualTo(32);
    assertThatThrownBy(() -> new PageStreamParser(28, PAGE))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("28");
    assertThatThrownBy(() -> new PageStreamParser(24, 3000))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("3000");
  }

}

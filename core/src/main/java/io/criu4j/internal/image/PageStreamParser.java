package io.criu4j.internal.image;

import io.criu4j.CriuVersion;
import io.criu4j.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An incremental parser of CRIU's page-server byte stream in the client-to-server direction
 * (what {@code criu dump --page-server} or {@code criu pre-dump --page-server} sends). The
 * relay feeds it every chunk it forwards; the parser counts what went by and checks the framing,
 * so a relay notices a broken or desynchronised stream at the byte where it broke.
 *
 * <p>Page payloads are skipped, never copied or inspected: {@link #feed(ByteBuffer)} only moves
 * the buffer's position over them, so the cost per chunk is constant plus a small amount per
 * request header. Headers may be split across chunks in any way.
 *
 * <h2>Wire format</h2>
 *
 * Every request starts with a {@code struct page_server_iov}, written raw in the host's byte
 * order ({@code criu/page-xfer.c}). Its size depends on the CRIU version, which the caller knows
 * ({@link CriuVersion#pageServerHeaderSize()}); it is never guessed from the bytes:
 *
 * <pre>
 * CRIU &lt;= 4.1: 24 bytes                CRIU &gt;= 4.2: 32 bytes
 * struct page_server_iov {             struct page_server_iov {
 *   u32 cmd;       // offset 0           u32 cmd;       // offset 0
 *                                        // 4 bytes of padding at offset 4, contents unspecified
 *   u32 nr_pages;  // offset 4           u64 nr_pages;  // offset 8
 *   u64 vaddr;     // offset 8           u64 vaddr;     // offset 16
 *   u64 dst_id;    // offset 16          u64 dst_id;    // offset 24
 * };                                   };
 * </pre>
 *
 * In 4.2 {@code nr_pages} became {@code u64} (the change the project notes cite as afb2e6c3f;
 * checked against {@code criu/page-xfer.c} sources carrying the {@code u64} field and against PR
 * #2757, "page-xfer: fix incompatible pointer type on armv7", merged before the 4.2 release,
 * which kept it {@code u64}). The struct is not packed, so the compiler puts 4 bytes of padding
 * after {@code cmd}: 32 bytes on every ABI CRIU runs on (x86-64, aarch64, ppc64le, s390x,
 * riscv64, and armv7 EABI, which aligns {@code u64} to 8; only i386, which CRIU does not run on,
 * would give 28). CRIU may leave whatever its stack held in the padding, so the parser never
 * looks at it. A 4.1 peer and a 4.2 peer cannot talk to each other.
 *
 * <p>{@code cmd} is {@code flags << 16 | command}. After the header:
 *
 * <ul>
 *   <li>{@link #PS_IOV_ADD}: {@code nr_pages * pageSize} bytes of page data (legacy, implies
 *       {@link #PE_PRESENT});
 *   <li>{@link #PS_IOV_ADD_F}: page data if and only if the flags carry {@link #PE_PRESENT};
 *   <li>every other command: nothing.
 * </ul>
 *
 * The server answers some commands on the same connection (see {@link #replyBytes(int)}).
 *
 * <h2>Checks</h2>
 *
 * A header is rejected with a {@link ProtocolException} naming the stream offset of the header
 * when: the command is unknown; a command other than {@code PS_IOV_ADD_F} carries flags, or
 * {@code PS_IOV_ADD_F} carries flags other than {@code PE_PARENT|PE_LAZY|PE_PRESENT}; a request
 * that describes pages has an address that is not page-aligned or a pagemap type in
 * {@code dst_id} that CRIU does not know; {@code nr_pages} is absurd (see
 * {@link #MAX_DATA_BYTES} and {@link #MAX_SPAN_BYTES}); or any byte follows
 * {@code PS_IOV_CLOSE}/{@code PS_IOV_FORCE_CLOSE} (the server stops reading there, so one parser
 * covers one page-server session). CRIU itself sends nothing these checks reject; they exist to
 * catch a desynchronised stream early. After a {@code ProtocolException} the parser is spent.
 *
 * <p>Not thread-safe: one relay thread feeds it. {@link #stats()} returns an immutable snapshot
 * that may be handed to other threads.
 */
public final class PageStreamParser {
  /** Header size of CRIU 4.1 and older. */
  public static final int HEADER_SIZE_V1 = 24;
  /** Header size of CRIU 4.2 and newer. */
  public static final int HEADER_SIZE_V2 = 32;

  public static final int PS_IOV_ADD = 1;
  public static final int PS_IOV_HOLE = 2;
  public static final int PS_IOV_OPEN = 3;
  public static final int PS_IOV_OPEN2 = 4;
  public static final int PS_IOV_PARENT = 5;
  public static final int PS_IOV_ADD_F = 6;
  public static final int PS_IOV_GET = 7;
  public static final int PS_IOV_CLOSE = 0x1023;
  public static final int PS_IOV_FORCE_CLOSE = 0x1024;

  /** Pagemap flag: the pages are in the parent (pre-dump) image; no data follows. */
  public static final int PE_PARENT = 1;
  /** Pagemap flag: the pages may be restored lazily (post-copy). */
  public static final int PE_LAZY = 2;
  /** Pagemap flag: the page data follows the header. */
  public static final int PE_PRESENT = 4;

  /**
   * Largest payload one request may carry: 2 GiB. CRIU sends the pages of one request from one
   * pipe, and Linux refuses pipes larger than 2^31 bytes ({@code round_pipe_size}).
   */
  public static final long MAX_DATA_BYTES = 1L << 31;

  /**
   * Largest address range a request without payload (a hole, lazy pages, a lazy fetch) may
   * describe: 2^57 bytes, the user address space of 5-level paging.
   */
  public static final long MAX_SPAN_BYTES = 1L << 57;

  private static final int CMD_BITS = 16;
  private static final int CMD_MASK = (1 << CMD_BITS) - 1;
  private static final int KNOWN_FLAGS = PE_PARENT | PE_LAZY | PE_PRESENT;
  private static final int TYPE_MASK = 0xff;

  /** Slots of the per-command counters: commands 1..7, then CLOSE and FORCE_CLOSE. */
  private static final int CLOSE_SLOT = 8;
  private static final int FORCE_CLOSE_SLOT = 9;
  private static final int SLOTS = 10;

  /**
   * Receives every header once it passed the checks, before its payload is skipped. Runs on the
   * thread calling {@link #feed(ByteBuffer)}; it must not call back into the parser.
   */
  @FunctionalInterface
  public interface Listener {
    /**
     * @param command the command ({@code cmd & 0xffff})
     * @param flags the flags ({@code cmd >>> 16})
     * @param nrPages the page count, unsigned in the stream, here at most 2^57 / page size
     * @param vaddr the address (an offset for shared memory)
     * @param dstId the destination id ({@code image id << 8 | type}; a pid for {@code GET})
     * @param offset stream offset of the first byte of the header
     */
    void onHeader(int command, int flags, long nrPages, long vaddr, long dstId, long offset);
  }

  private final int headerSize;
  private final int pageSize;
  private final long maxDataPages;
  private final long maxSpanPages;
  private final Listener listener;
  private final byte[] headerBytes;
  private final ByteBuffer header;

  // Parser state.
  private long offset;
  private int headerFill;
  private long headerOffset;
  private long payloadLeft;
  private boolean closed;
  private boolean failed;

  // Counters.
  private long headers;
  private long presentPages;
  private long parentPages;
  private long lazyPages;
  private long payloadBytes;
  private long expectedReplyBytes;
  private final long[] commandCounts = new long[SLOTS];

  /**
   * A parser for a stream in this host's byte order, with no listener.
   *
   * @param headerSize {@value #HEADER_SIZE_V1} (CRIU up to 4.1) or {@value #HEADER_SIZE_V2} (4.2
   *     on); see {@link CriuVersion#pageServerHeaderSize()}
   * @param pageSize the page size of the dumping host, a power of two of at least 4096
   */
  public PageStreamParser(int headerSize, int pageSize) {
    this(headerSize, pageSize, ByteOrder.nativeOrder(), null);
  }

  /**
   * A parser with an explicit byte order (that of the host running the dumping CRIU) and an
   * optional listener.
   */
  public PageStreamParser(int headerSize, int pageSize, ByteOrder order, Listener listener) {
    if (headerSize != HEADER_SIZE_V1 && headerSize != HEADER_SIZE_V2) {
      throw new IllegalArgumentException("headerSize must be 24 or 32: " + headerSize);
    }
    if (pageSize < 4096 || Integer.bitCount(pageSize) != 1) {
      throw new IllegalArgumentException("pageSize is not a power of two >= 4096: " + pageSize);
    }
    this.headerSize = headerSize;
    this.pageSize = pageSize;
    this.maxDataPages = MAX_DATA_BYTES / pageSize;
    this.maxSpanPages = MAX_SPAN_BYTES / pageSize;
    this.listener = listener;
    this.headerBytes = new byte[headerSize];
    this.header = ByteBuffer.wrap(headerBytes).order(order);
  }

  /** A parser for the stream the given CRIU version sends, in this host's byte order. */
  public static PageStreamParser forVersion(CriuVersion version, int pageSize) {
    return new PageStreamParser(version.pageServerHeaderSize(), pageSize);
  }

  public int headerSize() {
    return headerSize;
  }

  public int pageSize() {
    return pageSize;
  }

  /**
   * Consumes all remaining bytes of {@code chunk}: on return its position equals its limit. The
   * buffer's contents, limit, mark and byte order are left alone; page data in it is skipped.
   *
   * @throws ProtocolException if the bytes break the protocol; the message names the offence and
   *     the stream offset of the offending header. The chunk's position is then unspecified and
   *     the parser must not be fed again.
   * @throws IllegalStateException if an earlier call threw {@code ProtocolException}
   */
  public void feed(ByteBuffer chunk) throws ProtocolException {
    if (failed) {
      throw new IllegalStateException("the page stream was rejected earlier; parser is spent");
    }
    while (chunk.hasRemaining()) {
      if (payloadLeft > 0) {
        int skip = (int) Math.min(payloadLeft, chunk.remaining());
        chunk.position(chunk.position() + skip);
        payloadLeft -= skip;
        offset += skip;
        continue;
      }
      if (closed) {
        // No byte count: it would be the rest of this chunk, which depends on the chunking.
        throw fail(String.format("data after %s (sent at stream offset %d)",
            commandName(commandCounts[FORCE_CLOSE_SLOT] > 0 ? PS_IOV_FORCE_CLOSE : PS_IOV_CLOSE),
            headerOffset), offset);
      }
      if (headerFill == 0) {
        headerOffset = offset;
      }
      int take = Math.min(headerSize - headerFill, chunk.remaining());
      chunk.get(headerBytes, headerFill, take);
      headerFill += take;
      offset += take;
      if (headerFill == headerSize) {
        headerFill = 0;
        onHeader();
      }
    }
  }

  /**
   * How many bytes of page data the current request still has to bring (0 when the next byte
   * starts or continues a header).
   */
  public long payloadLeft() {
    return payloadLeft;
  }

  /**
   * How many bytes the header being read still lacks: up to the header size when the payload
   * is complete, or 0 while page data is due.
   */
  public int headerBytesLeft() {
    return payloadLeft > 0 || closed ? 0 : headerSize - headerFill;
  }

  /**
   * Consumes {@code n} bytes of page data without seeing them, as {@link #feed} would: for a
   * caller that moves page data past user space (with {@code splice(2)}) and feeds only the
   * headers.
   *
   * @throws IllegalArgumentException if {@code n} is negative or more than {@link
   *     #payloadLeft()}
   */
  public void skipPayload(long n) {
    if (n < 0 || n > payloadLeft) {
      throw new IllegalArgumentException("skipPayload(" + n + ") outside 0.." + payloadLeft);
    }
    payloadLeft -= n;
    offset += n;
  }

  private void onHeader() throws ProtocolException {
    int cmd = header.getInt(0);
    long nrPages;
    long vaddr;
    long dstId;
    if (headerSize == HEADER_SIZE_V1) {
      nrPages = header.getInt(4) & 0xffffffffL;
      vaddr = header.getLong(8);
      dstId = header.getLong(16);
    } else {
      nrPages = header.getLong(8);
      vaddr = header.getLong(16);
      dstId = header.getLong(24);
    }
    int command = cmd & CMD_MASK;
    int flags = cmd >>> CMD_BITS;
    int slot = slot(command);
    if (slot < 0) {
      throw fail(String.format("unknown page-server command 0x%x (cmd 0x%08x)", command, cmd),
          headerOffset);
    }
    if (command == PS_IOV_ADD_F) {
      if ((flags & ~KNOWN_FLAGS) != 0) {
        throw fail(String.format("PS_IOV_ADD_F with unknown flags 0x%x", flags), headerOffset);
      }
    } else if (flags != 0) {
      throw fail(String.format("%s with flags 0x%x (only PS_IOV_ADD_F has flags)",
          commandName(command), flags), headerOffset);
    }
    boolean data = command == PS_IOV_ADD || (command == PS_IOV_ADD_F && (flags & PE_PRESENT) != 0);
    long maxPages = data ? maxDataPages : maxSpanPages;
    if (nrPages < 0 || nrPages > maxPages) {
      throw fail(String.format("%s with absurd nr_pages %s (at most %d %s)", commandName(command),
          Long.toUnsignedString(nrPages), maxPages,
          data ? "pages of data per request" : "pages per request"), headerOffset);
    }
    if (describesPages(command)) {
      if ((vaddr & (pageSize - 1)) != 0) {
        throw fail(String.format("%s with vaddr 0x%x not aligned to %d", commandName(command),
            vaddr, pageSize), headerOffset);
      }
      if (command != PS_IOV_GET && !knownPagemapType((int) (dstId & TYPE_MASK))) {
        throw fail(String.format("%s with unknown pagemap type %d in dst_id 0x%x",
            commandName(command), dstId & TYPE_MASK, dstId), headerOffset);
      }
    } else if (command != PS_IOV_CLOSE && command != PS_IOV_FORCE_CLOSE
        && !knownPagemapType((int) (dstId & TYPE_MASK))) {
      throw fail(String.format("%s with unknown pagemap type %d in dst_id 0x%x",
          commandName(command), dstId & TYPE_MASK, dstId), headerOffset);
    }

    headers++;
    commandCounts[slot]++;
    int reply = replyBytes(command);
    if (reply > 0) {
      expectedReplyBytes += reply;
    }
    if (data) {
      presentPages += nrPages;
      payloadLeft = nrPages * pageSize;
      payloadBytes += payloadLeft;
    } else if (command == PS_IOV_HOLE || (command == PS_IOV_ADD_F && (flags & PE_PARENT) != 0)) {
      parentPages += nrPages;
    } else if (command == PS_IOV_ADD_F && (flags & PE_LAZY) != 0) {
      lazyPages += nrPages;
    }
    if (command == PS_IOV_CLOSE || command == PS_IOV_FORCE_CLOSE) {
      closed = true;
    }
    if (listener != null) {
      listener.onHeader(command, flags, nrPages, vaddr, dstId, headerOffset);
    }
  }

  private ProtocolException fail(String what, long at) {
    failed = true;
    return new ProtocolException("page-server stream: " + what + " at stream offset " + at);
  }

  /**
   * Declares the end of the stream.
   *
   * @throws ProtocolException if the stream stopped inside a header or inside page data
   */
  public void finish() throws ProtocolException {
    if (failed) {
      throw new IllegalStateException("the page stream was rejected earlier; parser is spent");
    }
    if (headerFill != 0) {
      throw fail(String.format("stream ended inside a header (%d of %d bytes)",
          headerFill, headerSize), headerOffset);
    }
    if (payloadLeft > 0) {
      throw fail(String.format("stream ended %d byte(s) short of the page data of the header",
          payloadLeft), headerOffset);
    }
  }

  /** Bytes consumed so far. */
  public long offset() {
    return offset;
  }

  /** True if the bytes so far end exactly after a header or after its page data. */
  public boolean atMessageBoundary() {
    return headerFill == 0 && payloadLeft == 0;
  }

  /** True once {@code PS_IOV_CLOSE} or {@code PS_IOV_FORCE_CLOSE} went by. */
  public boolean closeSeen() {
    return closed;
  }

  /** A snapshot of the counters. */
  public Stats stats() {
    Map<String, Long> counts = new LinkedHashMap<>();
    for (int command : new int[] {PS_IOV_OPEN, PS_IOV_OPEN2, PS_IOV_PARENT, PS_IOV_ADD,
        PS_IOV_HOLE, PS_IOV_ADD_F, PS_IOV_GET, PS_IOV_CLOSE, PS_IOV_FORCE_CLOSE}) {
      long n = commandCounts[slot(command)];
      if (n > 0) {
        counts.put(commandName(command), n);
      }
    }
    return new Stats(offset, headers, presentPages, parentPages, lazyPages, payloadBytes,
        expectedReplyBytes, Collections.unmodifiableMap(counts), closed);
  }

  /**
   * What the parser counted.
   *
   * @param bytes stream bytes consumed
   * @param headers request headers
   * @param presentPages pages whose data went through the stream ({@code ADD}, and
   *     {@code ADD_F} with {@code PE_PRESENT}); equals the size of the server's
   *     {@code pages-*.img} files divided by the page size
   * @param parentPages pages recorded as being in the parent image ({@code HOLE}, and
   *     {@code ADD_F} with {@code PE_PARENT}); no data
   * @param lazyPages pages recorded as lazy without data ({@code ADD_F} with {@code PE_LAZY}
   *     only)
   * @param payloadBytes page data bytes, {@code presentPages * pageSize}
   * @param replyBytes bytes the server answers with for the requests seen so far
   *     ({@link #replyBytes(int)}; a {@code GET} answer is not included)
   * @param commands request count per command name, in protocol order, without zero counts
   * @param closeSeen whether {@code PS_IOV_CLOSE} or {@code PS_IOV_FORCE_CLOSE} went by
   */
  public record Stats(long bytes, long headers, long presentPages, long parentPages,
      long lazyPages, long payloadBytes, long replyBytes, Map<String, Long> commands,
      boolean closeSeen) {
    /** The count for {@code command}, for example {@link #PS_IOV_ADD_F}. */
    public long count(int command) {
      return commands.getOrDefault(commandName(command), 0L);
    }
  }

  /**
   * How many bytes the page server writes back after receiving {@code command}: 1 (a
   * {@code has_parent} byte) for {@code OPEN2}; 4 (an {@code int32}) for {@code PARENT} and for
   * {@code CLOSE}/{@code FORCE_CLOSE}; -1 for {@code GET}, which the dump-side server of a
   * post-copy migration answers with a {@code PS_IOV_ADD_F|PE_PRESENT} header plus data (or
   * nothing when it has no pages); 0 for the rest.
   *
   * @throws IllegalArgumentException for an unknown command
   */
  public static int replyBytes(int command) {
    switch (command) {
      case PS_IOV_OPEN2:
        return 1;
      case PS_IOV_PARENT:
      case PS_IOV_CLOSE:
      case PS_IOV_FORCE_CLOSE:
        return 4;
      case PS_IOV_GET:
        return -1;
      case PS_IOV_ADD:
      case PS_IOV_HOLE:
      case PS_IOV_OPEN:
      case PS_IOV_ADD_F:
        return 0;
      default:
        throw new IllegalArgumentException("unknown page-server command: 0x"
            + Integer.toHexString(command));
    }
  }

  /** The symbolic name of {@code command}, such as {@code PS_IOV_ADD_F}. */
  public static String commandName(int command) {
    switch (command) {
      case PS_IOV_ADD:
        return "PS_IOV_ADD";
      case PS_IOV_HOLE:
        return "PS_IOV_HOLE";
      case PS_IOV_OPEN:
        return "PS_IOV_OPEN";
      case PS_IOV_OPEN2:
        return "PS_IOV_OPEN2";
      case PS_IOV_PARENT:
        return "PS_IOV_PARENT";
      case PS_IOV_ADD_F:
        return "PS_IOV_ADD_F";
      case PS_IOV_GET:
        return "PS_IOV_GET";
      case PS_IOV_CLOSE:
        return "PS_IOV_CLOSE";
      case PS_IOV_FORCE_CLOSE:
        return "PS_IOV_FORCE_CLOSE";
      default:
        return "command 0x" + Integer.toHexString(command);
    }
  }

  private static int slot(int command) {
    if (command >= PS_IOV_ADD && command <= PS_IOV_GET) {
      return command - 1;
    } else if (command == PS_IOV_CLOSE) {
      return CLOSE_SLOT;
    } else if (command == PS_IOV_FORCE_CLOSE) {
      return FORCE_CLOSE_SLOT;
    }
    return -1;
  }

  private static boolean describesPages(int command) {
    return command == PS_IOV_ADD || command == PS_IOV_HOLE || command == PS_IOV_ADD_F
        || command == PS_IOV_GET;
  }

  /**
   * Pagemap types {@code decode_pm} in {@code criu/page-xfer.c} accepts: 1 (task pagemap) and 2
   * (shared memory), plus the numbers CRIU 1.0 to 3.2 used.
   */
  private static boolean knownPagemapType(int type) {
    switch (type) {
      case 1: case 10: case 11: case 16: case 17:
      case 2: case 27: case 28: case 29: case 32: case 33: case 34:
        return true;
      default:
        return false;
    }
  }
}

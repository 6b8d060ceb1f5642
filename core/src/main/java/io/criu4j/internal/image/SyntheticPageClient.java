package io.criu4j.internal.image;

import io.criu4j.ProtocolException;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;

/**
 * Plays the client side of a CRIU page-server session, as {@code criu dump --page-server} does,
 * for tests and benchmarks: {@code PS_IOV_OPEN2} (waits for the 1-byte answer), page data in
 * {@code PS_IOV_ADD_F|PE_PRESENT} requests, then {@code PS_IOV_CLOSE} (waits for the 4-byte
 * answer). Headers are written in the host's byte order with the given header size (24 for CRIU
 * up to 4.1, 32 from 4.2 on). Page contents are a fixed pattern.
 *
 * <p>Not thread-safe; one session per instance.
 */
public final class SyntheticPageClient {
  private final int headerSize;
  private final int pageSize;
  private final ByteBuffer header;
  private final ByteBuffer reply = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());

  public SyntheticPageClient(int headerSize, int pageSize) {
    if (headerSize != PageStreamParser.HEADER_SIZE_V1
        && headerSize != PageStreamParser.HEADER_SIZE_V2) {
      throw new IllegalArgumentException("header size must be 24 or 32: " + headerSize);
    }
    this.headerSize = headerSize;
    this.pageSize = pageSize;
    this.header = ByteBuffer.allocateDirect(headerSize).order(ByteOrder.nativeOrder());
  }

  /** The bytes {@link #run} sends for {@code pages} pages in requests of {@code perRequest}. */
  public long streamBytes(long pages, int perRequest) {
    long requests = (pages + perRequest - 1) / perRequest;
    return headerSize * (2 + requests) + pages * pageSize;
  }

  /**
   * Sends one session of {@code pages} pages, {@code perRequest} per request, for pagemap image
   * {@code id}, reading the server's answers from {@code channel}.
   *
   * @return the bytes sent
   */
  public long run(ByteChannel channel, int id, long pages, int perRequest) throws IOException {
    long dstId = ((long) id << 8) | 1; // PS_TYPE_PID
    long sent = 0;
    sent += sendHeader(channel, PageStreamParser.PS_IOV_OPEN2, 0, 0, dstId, null);
    awaitReply(channel, 1);
    ByteBuffer data = ByteBuffer.allocateDirect(perRequest * pageSize);
    for (int i = 0; i < data.capacity(); i += 8) {
      data.putLong(i, 0x5045474150454741L ^ i);
    }
    long vaddr = 0x7f0000000000L;
    for (long done = 0; done < pages; ) {
      int n = (int) Math.min(perRequest, pages - done);
      int cmd = (PageStreamParser.PE_PRESENT << 16) | PageStreamParser.PS_IOV_ADD_F;
      data.clear().limit(n * pageSize);
      sent += sendHeader(channel, cmd, n, vaddr, dstId, data);
      vaddr += (long) n * pageSize;
      done += n;
    }
    sent += sendHeader(channel, PageStreamParser.PS_IOV_CLOSE, 0, 0, 0, null);
    awaitReply(channel, 4);
    return sent;
  }

  /**
   * Ends a page-server session in which nothing was sent: only {@code PS_IOV_CLOSE}, then waits
   * for its answer. This is what a dump that keeps its memory elsewhere (lazy pages) leaves the
   * page-server relay to say.
   */
  public void closeEmpty(ByteChannel channel) throws IOException {
    sendHeader(channel, PageStreamParser.PS_IOV_CLOSE, 0, 0, 0, null);
    awaitReply(channel, 4);
  }

  private long sendHeader(ByteChannel channel, int cmd, long nrPages, long vaddr, long dstId,
      ByteBuffer data) throws IOException {
    header.clear();
    header.putInt(cmd);
    if (headerSize == PageStreamParser.HEADER_SIZE_V1) {
      header.putInt((int) nrPages);
    } else {
      header.putInt(0).putLong(nrPages);
    }
    header.putLong(vaddr).putLong(dstId).flip();
    long total = header.remaining() + (data == null ? 0 : data.remaining());
    if (data != null && channel instanceof GatheringByteChannel g) {
      ByteBuffer[] both = {header, data};
      while (data.hasRemaining()) {
        g.write(both);
      }
    } else {
      while (header.hasRemaining()) {
        channel.write(header);
      }
      while (data != null && data.hasRemaining()) {
        channel.write(data);
      }
    }
    return total;
  }

  private void awaitReply(ByteChannel channel, int bytes) throws IOException {
    reply.clear().limit(bytes);
    while (reply.hasRemaining()) {
      if (channel.read(reply) < 0) {
        throw new EOFException("page server closed before answering (" + reply.position()
            + " of " + bytes + " bytes)");
      }
    }
    reply.flip();
    int value = bytes == 1 ? reply.get() : reply.getInt();
    if (bytes == 4 && value != 0) {
      throw new ProtocolException("page server answered PS_IOV_CLOSE with status " + value);
    }
  }
}

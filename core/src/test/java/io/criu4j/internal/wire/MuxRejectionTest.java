package io.criu4j.internal.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.criu4j.TransportException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Every kind of bad input, one test each: the side under test rejects it with an exception
 * naming the offence, the peer receives an ERROR frame with the same reason, and the side under
 * test frees its buffers and stops its threads. Nothing hangs.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MuxRejectionTest {
  private static final UUID SESSION = RawPeer.SESSION;
  private ChannelPair channels;
  private RawPeer peer;
  private MuxConnection mux;

  @AfterEach
  void tearDown() {
    if (peer != null) {
      peer.close();
    }
    if (mux != null) {
      mux.close();
    }
    if (channels != null) {
      channels.close();
    }
  }

  // ------------------------------------------------------------------ names

  @Test
  void fileNameWithASlashIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "images/pages-1.img", 10, 0));

    assertRejected(ErrorCode.BAD_NAME, "bad file name \"images/pages-1.img\": contains '/'");
  }

  @Test
  void fileNameDotDotIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "..", 10, 0));

    assertRejected(ErrorCode.BAD_NAME, "bad file name \"..\": '..' is not a file name");
  }

  @Test
  void absoluteFileNameIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "/etc/shadow", 10, 0));

    assertRejected(ErrorCode.BAD_NAME, "bad file name \"/etc/shadow\": absolute path");
  }

  @Test
  void fileNameWithNulIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "pages-1.img\0.sh", 10, 0));

    assertRejected(ErrorCode.BAD_NAME, "bad file name \"pages-1.img\\x00.sh\": contains NUL");
  }

  // ------------------------------------------------------------------ framing

  @Test
  void oversizeFrameIsRejectedBeforeItsPayloadIsRead() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "pages-1.img", 8 << 20, 0));
    peer.sendRaw(FrameCodec.header(FrameType.DATA.code(), 0, 0, 1, 2 << 20));

    assertRejected(
        ErrorCode.FRAME_TOO_LARGE,
        "DATA frame of 2097152 bytes on stream 1 exceeds the maximum frame payload of "
            + FrameCodec.DEFAULT_MAX_FRAME_PAYLOAD);
  }

  @Test
  void unknownFrameTypeIsRejected() throws Exception {
    openReceiver();
    peer.sendRaw(FrameCodec.header(0x42, 0, 0, 0, 0));

    assertRejected(ErrorCode.UNKNOWN_FRAME_TYPE, "unknown frame type 0x42");
  }

  @Test
  void truncatedStreamIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "pages-1.img", 1000, 0));
    peer.sendRaw(FrameCodec.header(FrameType.DATA.code(), 0, 0, 1, 1000));
    peer.sendRaw(new byte[10]);
    peer.shutdownOutput();

    assertRejected(
        ErrorCode.PROTOCOL_ERROR,
        "truncated frame: the stream ended after 10 of 1000 payload bytes of a DATA frame");
  }

  @Test
  void dataOnAnUnknownStreamIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.Data(7, ByteBuffer.wrap(new byte[3])));

    assertRejected(ErrorCode.STREAM_STATE, "DATA on unknown stream 7");
  }

  @Test
  void peerThatIsNotACriu4jPeerIsRejected() throws Exception {
    channels = ChannelPair.pipes();
    peer = new RawPeer(channels.b);
    peer.sendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));

    Throwable t = catchThrowable(() -> open(quickToGiveUp(Muxes.receiverConfig())));

    assertThat(t)
        .isInstanceOf(WireProtocolException.class)
        .hasMessageContaining(
            "not a criu4j wire peer: the first frame must be HELLO, got bytes 47 45 54 20");
    assertThat(peer.awaitError().reason()).contains("not a criu4j wire peer");
  }

  // ------------------------------------------------------------------ versions

  @Test
  void peerSpeakingAnotherProtocolVersionIsRejectedNamingBothVersions() throws Exception {
    channels = ChannelPair.pipes();
    peer = new RawPeer(channels.b);
    peer.send(new Frame.Hello(2, Role.SENDER, 1, SESSION, 1 << 18, 1 << 20, 1 << 24, 64));

    Throwable t = catchThrowable(() -> open(quickToGiveUp(Muxes.receiverConfig())));

    assertThat(t).isInstanceOf(WireProtocolException.class);
    assertThat(((WireProtocolException) t).code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION);
    assertThat(t).hasMessageContaining("version 2").hasMessageContaining("version 1");
    Frame.ErrorFrame error = peer.awaitError();
    assertThat(error.code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION.code());
    assertThat(error.reason()).contains("version 2").contains("version 1");
    assertThat(channels.a.in().isOpen()).as("open() closed the channels it owns").isFalse();
  }

  @Test
  void senderRejectsAReceiverSpeakingAnotherProtocolVersion() throws Exception {
    channels = ChannelPair.pipes();
    peer = new RawPeer(channels.b);
    peer.send(new Frame.Hello(3, Role.RECEIVER, 1, SESSION, 1 << 18, 1 << 20, 1 << 24, 64));

    Throwable t = catchThrowable(() -> open(quickToGiveUp(Muxes.senderConfig())));

    assertThat(t).isInstanceOf(WireProtocolException.class).hasMessageContaining("version 3");
    assertThat(peer.awaitError().reason())
        .isEqualTo(
            "protocol version mismatch: peer's HELLO speaks version 3, this side speaks"
                + " version 1");
  }

  // ------------------------------------------------------------------ files

  @Test
  void fileSentTwiceIsRejected() throws Exception {
    openReceiver();
    byte[] data = {1, 2, 3};
    peer.send(
        new Frame.OpenFile(1, "pages-1.img", 3, 0),
        new Frame.Data(1, ByteBuffer.wrap(data)),
        new Frame.EndOfFile(1, crc(data)),
        new Frame.OpenFile(3, "pages-1.img", 3, 0));

    assertRejected(ErrorCode.DUPLICATE_FILE, "file sent twice: \"pages-1.img\"");
  }

  @Test
  void checksumMismatchIsRejectedAndTheFileNeverReadsToAnEnd() throws Exception {
    openReceiver();
    byte[] data = new byte[100_000];
    peer.send(new Frame.OpenFile(1, "pages-1.img", data.length, 0));
    InboundFile file = (InboundFile) mux.accept();
    peer.send(new Frame.Data(1, ByteBuffer.wrap(data)), new Frame.EndOfFile(1, 0xBAD));

    Throwable t = catchThrowable(() -> MuxConnectionTest.readAll(file));

    assertThat(t)
        .isInstanceOf(WireProtocolException.class)
        .hasMessageContaining("checksum mismatch for file \"pages-1.img\"");
    assertRejected(ErrorCode.CHECKSUM_MISMATCH, "checksum mismatch for file \"pages-1.img\"");
  }

  @Test
  void fileWithMoreBytesThanAnnouncedIsRejected() throws Exception {
    openReceiver();
    peer.send(
        new Frame.OpenFile(1, "core-1.img", 4, 0), new Frame.Data(1, ByteBuffer.allocate(5)));

    assertRejected(
        ErrorCode.SIZE_MISMATCH,
        "file \"core-1.img\" (stream 1): more bytes than announced: DATA brings it to 5 bytes,"
            + " announced size 4");
  }

  @Test
  void fileWithFewerBytesThanAnnouncedIsRejected() throws Exception {
    openReceiver();
    byte[] data = {1, 2, 3};
    peer.send(
        new Frame.OpenFile(1, "core-1.img", 4, 0),
        new Frame.Data(1, ByteBuffer.wrap(data)),
        new Frame.EndOfFile(1, crc(data)));

    assertRejected(
        ErrorCode.SIZE_MISMATCH,
        "file \"core-1.img\" (stream 1): fewer bytes than announced: END_OF_FILE after 3 bytes,"
            + " announced size 4");
  }

  @Test
  void dataBeyondTheGrantedCreditIsRejected() throws Exception {
    openReceiver(Muxes.receiverConfig().initialStreamWindow(4096).build());
    peer.send(
        new Frame.OpenFile(1, "pages-1.img", 10_000, 0),
        new Frame.Data(1, ByteBuffer.allocate(4096)),
        new Frame.Data(1, ByteBuffer.allocate(1)));

    assertRejected(
        ErrorCode.FLOW_CONTROL,
        "DATA of 1 bytes on file \"pages-1.img\" (stream 1) exceeds its credit of 0 bytes");
  }

  @Test
  void endOfImageWithWrongCountsIsRejected() throws Exception {
    openReceiver();
    peer.send(
        new Frame.OpenFile(1, "a.img", 0, 0),
        new Frame.EndOfFile(1, 0),
        new Frame.EndOfImage(false, 0, 2, 0));

    assertRejected(
        ErrorCode.IMAGE_MISMATCH,
        "END_OF_IMAGE 0 announces 2 files / 0 bytes, received 1 files / 0 bytes");
  }

  @Test
  void endOfImageWhileAFileIsStillOpenIsRejected() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "a.img", 5, 0), new Frame.EndOfImage(false, 0, 1, 5));

    assertRejected(
        ErrorCode.IMAGE_MISMATCH, "END_OF_IMAGE 0 while file \"a.img\" (stream 1) is still open");
  }

  // ------------------------------------------------------------------ stalls, peer errors

  @Test
  void receiverFailsWithPeerStalledWhenTheSenderGoesQuiet() throws Exception {
    openReceiver(Muxes.receiverConfig().stallTimeout(Duration.ofMillis(600)).build());
    peer.stopAnsweringPings();
    long start = System.nanoTime();

    Throwable t = catchThrowable(mux::accept);

    assertThat(t).isInstanceOf(TransportException.class).hasMessageContaining("peer stalled");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
    Frame.ErrorFrame error = peer.awaitError();
    assertThat(error.code()).isEqualTo(ErrorCode.STALLED.code());
    assertThat(error.reason()).contains("peer stalled");
    peer.close();
    assertReleased();
  }

  @Test
  void senderBlockedOnCreditFailsWithPeerStalledWhenTheReceiverGoesQuiet() throws Exception {
    openSender(
        Muxes.senderConfig().stallTimeout(Duration.ofMillis(600)).build(),
        new Frame.Hello(1, Role.RECEIVER, 1, new UUID(0, 0), 1 << 18, 4096, 4096, 64));
    peer.stopAnsweringPings();
    OutboundFile file = mux.openFile("pages-1.img", 8 << 20, 0);

    Throwable t = catchThrowable(() -> Muxes.writeAll(file, new byte[8 << 20], 1 << 20));

    assertThat(t).isInstanceOf(TransportException.class).hasMessageContaining("peer stalled");
    assertThat(peer.awaitError().code()).isEqualTo(ErrorCode.STALLED.code());
    peer.close();
    assertReleased();
  }

  @Test
  void peersErrorFailsABlockedWriteWithThePeersReason() throws Exception {
    openSender(
        Muxes.senderConfig().build(),
        new Frame.Hello(1, Role.RECEIVER, 1, new UUID(0, 0), 1 << 18, 4096, 4096, 64));
    OutboundFile file = mux.openFile("pages-1.img", 8 << 20, 0);
    CompletableFuture<Void> writing =
        CompletableFuture.runAsync(
            () -> {
              try {
                Muxes.writeAll(file, new byte[8 << 20], 1 << 20);
              } catch (Exception e) {
                throw new java.util.concurrent.CompletionException(e);
              }
            });
    peer.expect(Frame.OpenFile.class);
    peer.expect(Frame.Data.class);
    Thread.sleep(100);
    assertThat(writing).isNotDone();

    peer.send(new Frame.ErrorFrame(0, ErrorCode.INTERNAL.code(), "no space left on /dev/shm"));

    Throwable t = MuxConnectionTest.failureOf(writing);
    assertThat(t).isInstanceOf(WireProtocolException.class);
    WireProtocolException e = (WireProtocolException) t;
    assertThat(e.remote()).isTrue();
    assertThat(e.reason()).isEqualTo("no space left on /dev/shm");
    assertThat(e).hasMessage("peer reported INTERNAL: no space left on /dev/shm");
    assertReleased(); // the queued send buffers are freed too
  }

  @Test
  void peerClosingWithoutGoodbyeFailsABlockedRead() throws Exception {
    openReceiver();
    peer.send(new Frame.OpenFile(1, "pages-1.img", 10, 0));
    InboundFile file = (InboundFile) mux.accept();
    peer.shutdownOutput();

    assertThatThrownBy(() -> MuxConnectionTest.readAll(file))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining("peer closed the connection without GOODBYE");
    assertReleased();
  }

  // ------------------------------------------------------------------ helpers

  private static int crc(byte[] data) {
    CRC32C c = new CRC32C();
    c.update(data);
    return (int) c.getValue();
  }

  /**
   * After rejecting a handshake, a side lingers (draining) until the peer closes, so the peer
   * reads the ERROR; the raw peer never closes by itself, so keep that short.
   */
  private static MuxConfig quickToGiveUp(MuxConfig.Builder config) {
    return config.closeTimeout(Duration.ofMillis(300)).build();
  }

  private void open(MuxConfig config) throws Exception {
    mux = null;
    mux = MuxConnection.open(channels.a.in(), channels.a.out(), config);
  }

  private void openReceiver() throws Exception {
    openReceiver(Muxes.receiverConfig().build());
  }

  /** The receiver under test, after a handshake with the raw peer as the sender. */
  private void openReceiver(MuxConfig config) throws Exception {
    channels = ChannelPair.pipes();
    peer = new RawPeer(channels.b);
    peer.send(RawPeer.hello(Role.SENDER, SESSION));
    open(config);
    peer.expect(Frame.Hello.class);
    peer.expect(Frame.Accept.class);
  }

  /** The sender under test, after a handshake with the raw peer as the receiver. */
  private void openSender(MuxConfig config, Frame.Hello receiverHello) throws Exception {
    channels = ChannelPair.pipes();
    peer = new RawPeer(channels.b);
    peer.send(receiverHello, new Frame.Accept(1, 1, SESSION));
    open(config);
    peer.expect(Frame.Hello.class);
  }

  /**
   * The application's calls fail with {@code offence}, the peer receives ERROR {@code code}
   * with it, and the connection under test frees everything.
   */
  private void assertRejected(ErrorCode code, String offence) throws Exception {
    Throwable t = catchThrowable(this::consumeEverything);
    assertThat(t).isInstanceOf(WireProtocolException.class).hasMessageContaining(offence);
    WireProtocolException e = (WireProtocolException) t;
    assertThat(e.code()).isEqualTo(code);
    assertThat(e.remote()).isFalse();

    Frame.ErrorFrame error = peer.awaitError();
    assertThat(ErrorCode.of(error.code())).isEqualTo(code);
    assertThat(error.reason()).contains(offence);

    peer.close();
    assertReleased();
    assertThat(mux.failure().orElseThrow()).isSameAs(e.getCause());
  }

  /**
   * What a receiving application does: accept everything and read every file, but without
   * granting credit, so a test's frames meet exactly the initial windows.
   */
  private void consumeEverything() throws Exception {
    Inbound next;
    while ((next = mux.accept()) != null) {
      if (next instanceof InboundFile f) {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        while (f.read(buf.clear()) >= 0) {
          // discard
        }
      }
    }
  }

  private void assertReleased() throws Exception {
    assertThat(mux.awaitTermination(10, TimeUnit.SECONDS)).as("terminated").isTrue();
    assertThat(mux.buffersHeld()).as("buffers held").isZero();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (mux.threadsAlive() && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(mux.threadsAlive()).as("threads alive").isFalse();
    assertThat(channels.a.in().isOpen()).as("input open").isFalse();
  }
}

package io.criu4j.internal.criu;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.criu4j.CriuException;
import io.criu4j.MigrationException;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.Pipe;
import io.criu4j.internal.posix.UnixSocket;
import io.criu4j.internal.rpc.CriuRpc.DumpResponse;
import io.criu4j.internal.rpc.CriuRpc.Notify;
import io.criu4j.internal.rpc.CriuRpc.Request;
import io.criu4j.internal.rpc.CriuRpc.RequestType;
import io.criu4j.internal.rpc.CriuRpc.Response;
import io.criu4j.testing.Fuzz;
import io.criu4j.testing.Fuzz.Verdict;
import io.criu4j.testing.FuzzTarget;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzz target "criu-reply": {@link SwrkConnection#call} receiving arbitrary packets where CRIU's
 * {@code criu_resp} replies belong: notifications with and without descriptors, mutated and
 * undecodable replies, empty packets, an early close. A thread plays CRIU on the other end of an
 * in-process SOCK_SEQPACKET socketpair ({@link SwrkConnection#overSocket}), so no process is
 * spawned per input.
 *
 * <p>Input layout: byte 0 picks the client's side (bit 0: notify mode on, bit 1: the handler
 * vetoes every notification, bit 2: the handler asks for externals); then packets, each
 * {@code u8 control} (bits 0-1: how many pipe descriptors ride along), {@code u16 length}
 * (big-endian) and the packet's bytes. After the last packet the fake CRIU closes its end.
 *
 * <p>Oracle: the call returns a reply of the expected type or throws a
 * {@link MigrationException}; it ends within the deadline; every descriptor that came with a
 * packet is closed (handed to the handler, which closes it, or closed by the connection), and
 * the fake CRIU's thread ends.
 */
class SwrkReplyFuzzTest extends FuzzTarget {
  private static final List<String> THREADS = List.of("fake-criu-fuzz");

  SwrkReplyFuzzTest() {
    super("criu-reply", Duration.ofSeconds(10));
  }

  @FuzzTest(maxDuration = "5s")
  void replyHandling(byte[] input) {
    check(input);
  }

  private record Packet(int fds, byte[] data) {}

  @Override
  protected Verdict run(byte[] input) throws Exception {
    ByteBuffer in = ByteBuffer.wrap(input);
    int mode = in.hasRemaining() ? in.get() : 0;
    List<Packet> packets = new ArrayList<>();
    while (in.remaining() >= 3) {
      int control = in.get() & 3;
      int length = Math.min(in.getShort() & 0xFFFF, in.remaining());
      byte[] data = new byte[length];
      in.get(data);
      packets.add(new Packet(control, data));
    }

    int fdsBefore = Fuzz.openFds();
    UnixSocket.Pair pair = UnixSocket.pair(Native.SOCK_SEQPACKET);
    UnixSocket criuEnd = pair.second();
    Thread criu = new Thread(() -> playCriu(criuEnd, packets), "fake-criu-fuzz");
    criu.setDaemon(true);
    criu.start();
    List<Integer> handedOver = new ArrayList<>();
    SwrkConnection.NotifyHandler handler = (mode & 1) == 0 ? null : (script, pid, fds) -> {
      for (Fd fd : fds) {
        handedOver.add(fd.get());
        fd.close(); // the handler owns them
      }
      if ((mode & 2) != 0) {
        throw new IllegalStateException("vetoed " + script);
      }
      return (mode & 4) != 0 ? List.of("mnt[]:fuzz") : null;
    };
    Verdict verdict;
    try (SwrkConnection c = SwrkConnection.overSocket(pair.first(), Duration.ofSeconds(3))) {
      Response r = c.call(Request.newBuilder().setType(RequestType.DUMP).build(),
          RequestType.DUMP, handler, (resp, veto) -> new CriuException("DUMP",
              resp.getCrErrno(), resp.hasCrErrmsg() ? resp.getCrErrmsg() : null, null, null,
              veto));
      if (r.getType() != RequestType.DUMP) {
        throw new AssertionError("call returned a reply of type " + r.getType());
      }
      verdict = Verdict.ACCEPTED;
    } catch (MigrationException e) {
      verdict = Verdict.REJECTED;
    } finally {
      criu.join(5_000);
    }
    if (criu.isAlive()) {
      throw new AssertionError("the fake CRIU is still blocked");
    }
    Fuzz.assertNoLeaks(fdsBefore, THREADS);
    return verdict;
  }

  /** Reads the request, sends every packet (with pipe descriptors), then closes. */
  private static void playCriu(UnixSocket socket, List<Packet> packets) {
    try (socket) {
      if (socket.receive(1 << 20) == null) {
        return;
      }
      for (Packet p : packets) {
        List<Pipe> pipes = new ArrayList<>();
        try {
          int[] fds = new int[p.fds()];
          for (int i = 0; i < fds.length; i++) {
            Pipe pipe = Pipe.open();
            pipes.add(pipe);
            fds[i] = pipe.readEnd().get();
          }
          socket.send(p.data(), fds);
        } finally {
          pipes.forEach(Pipe::close);
        }
        if (isNotify(p.data()) && (!socket.awaitReadable(3_000) || socket.receive(1 << 20) == null)) {
          return; // like CRIU, wait for the acknowledgement of a notification
        }
      }
      // Like CRIU, leave nothing unread: closing over unread packets resets the connection.
      while (socket.awaitReadable(0) && socket.receive(1 << 20) != null) {
        // drain
      }
    } catch (MigrationException e) {
      // the client hung up or aborted: what a real CRIU would see too
    }
  }

  private static boolean isNotify(byte[] data) {
    try {
      return Response.parseFrom(data).getType() == RequestType.NOTIFY;
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      return false;
    }
  }

  /** Notifications with and without descriptors, then the final reply; a failed reply. */
  @Override
  protected List<byte[]> seeds() {
    Response preDump = notify("pre-dump");
    Response ext = notify("query-ext-files");
    Response post = notify("post-dump");
    Response done = Response.newBuilder().setType(RequestType.DUMP).setSuccess(true)
        .setDump(DumpResponse.newBuilder().setRestored(false)).build();
    Response failed = Response.newBuilder().setType(RequestType.DUMP).setSuccess(false)
        .setCrErrno(22).setCrErrmsg("Invalid argument").build();
    return List.of(
        seed(1, new Object[] {preDump, 0}, new Object[] {ext, 0}, new Object[] {post, 1},
            new Object[] {done, 0}),
        seed(5, new Object[] {ext, 2}, new Object[] {done, 0}),
        seed(3, new Object[] {preDump, 1}, new Object[] {failed, 0}),
        seed(0, new Object[] {done, 0}));
  }

  private static Response notify(String script) {
    return Response.newBuilder().setType(RequestType.NOTIFY).setSuccess(true)
        .setNotify(Notify.newBuilder().setScript(script).setPid(4242)).build();
  }

  private static byte[] seed(int mode, Object[]... packets) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(mode);
    for (Object[] p : packets) {
      byte[] data = ((Response) p[0]).toByteArray();
      out.write((Integer) p[1]);
      out.write(data.length >> 8);
      out.write(data.length);
      out.write(data, 0, data.length);
    }
    return out.toByteArray();
  }
}

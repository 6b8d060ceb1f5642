package io.criu4j.internal.posix;

import io.criu4j.MigrationException;
import io.criu4j.ProtocolException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * One end of an {@code AF_UNIX} socket made with {@code socketpair(2)}: whole-packet send and
 * receive for {@code SOCK_SEQPACKET} (each receive is sized with {@code MSG_PEEK|MSG_TRUNC}, so a
 * large packet is never truncated), file-descriptor passing with {@code SCM_RIGHTS}, and plain
 * reads and writes for {@code SOCK_STREAM}.
 *
 * <p>Owns its descriptor; {@link #close()} is idempotent. Not safe for concurrent use by several
 * readers or several writers; one reader and one writer thread may work at the same time.
 * Blocking calls run in native code, so call them from platform threads.
 */
public final class UnixSocket implements AutoCloseable {
  /** Fds a single received packet may carry; more are closed and reported as an error. */
  private static final int MAX_FDS = 16;
  private static final int MSGHDR_SIZE = 56;
  private static final int IOVEC_SIZE = 16;
  private static final int CMSGHDR_SIZE = 16;

  private final Fd fd;

  private UnixSocket(Fd fd) {
    this.fd = fd;
  }

  /** A connected pair, both ends close-on-exec. */
  public static Pair pair(int type) throws MigrationException {
    int[] sv = new int[2];
    Native.check("socketpair(AF_UNIX, " + typeName(type) + ")",
        () -> Native.libc().socketpair(Native.AF_UNIX, type | Native.SOCK_CLOEXEC, 0, sv));
    return new Pair(new UnixSocket(Fd.adopt(sv[0])), new UnixSocket(Fd.adopt(sv[1])));
  }

  /** Wraps a descriptor the caller hands over (for example one inherited from a parent). */
  public static UnixSocket adopt(int fd) {
    return new UnixSocket(Fd.adopt(fd));
  }

  public Fd fd() {
    return fd;
  }

  /** Sends {@code data} as one packet, with {@code fds} attached as SCM_RIGHTS if any. */
  public void send(byte[] data, int... fds) throws MigrationException {
    int sock = fd.get();
    Pointer buf = Memory.allocateDirect(Native.runtime(), Math.max(1, data.length));
    buf.put(0, data, 0, data.length);
    Pointer iov = Memory.allocateDirect(Native.runtime(), IOVEC_SIZE);
    iov.putAddress(0, buf.address());
    iov.putLong(8, data.length);
    Pointer msg = Memory.allocateDirect(Native.runtime(), MSGHDR_SIZE, true);
    msg.putAddress(16, iov.address());
    msg.putLong(24, 1);
    if (fds.length > 0) {
      int controlLen = cmsgSpace(fds.length);
      Pointer control = Memory.allocateDirect(Native.runtime(), controlLen, true);
      control.putLong(0, CMSGHDR_SIZE + 4L * fds.length);
      control.putInt(8, Native.SOL_SOCKET);
      control.putInt(12, Native.SCM_RIGHTS);
      for (int i = 0; i < fds.length; i++) {
        control.putInt(CMSGHDR_SIZE + 4L * i, fds[i]);
      }
      msg.putAddress(32, control.address());
      msg.putLong(40, controlLen);
    }
    long sent = Native.check("sendmsg(fd " + sock + ", " + data.length + " bytes)",
        () -> Native.libc().sendmsg(sock, msg, Native.MSG_NOSIGNAL));
    if (sent != data.length) {
      throw new MigrationException("sendmsg sent " + sent + " of " + data.length + " bytes");
    }
  }

  /**
   * Waits up to {@code timeoutMillis} (negative: forever) until the socket is readable or the peer
   * hung up.
   *
   * @return false on timeout
   */
  public boolean awaitReadable(long timeoutMillis) throws MigrationException {
    return await(Native.POLLIN, timeoutMillis);
  }

  private boolean await(int events, long timeoutMillis) throws MigrationException {
    int sock = fd.get();
    Pointer pfd = Memory.allocateDirect(Native.runtime(), 8, true);
    pfd.putInt(0, sock);
    pfd.putShort(4, (short) events);
    long deadline = timeoutMillis < 0 ? Long.MAX_VALUE : System.nanoTime() + timeoutMillis * 1_000_000;
    while (true) {
      int wait = timeoutMillis < 0 ? -1
          : (int) Math.min(Integer.MAX_VALUE, Math.max(0, (deadline - System.nanoTime()) / 1_000_000));
      int rc = Native.libc().poll(pfd, 1, wait);
      if (rc > 0) {
        if ((pfd.getShort(6) & Native.POLLNVAL) != 0) {
          throw new MigrationException("poll: fd " + sock + " is not open", 9, null);
        }
        return true;
      }
      if (rc == 0) {
        if (System.nanoTime() >= deadline) {
          return false;
        }
        continue;
      }
      int errno = Native.lastErrno();
      if (errno != Native.EINTR) {
        throw Native.failure("poll(fd " + sock + ")", errno);
      }
    }
  }

  /**
   * Receives one whole packet with any descriptors it carries.
   *
   * @param maxSize the largest packet accepted; a bigger one is consumed and reported as a
   *     {@link ProtocolException}
   * @return the packet, or {@code null} when the peer closed its end
   */
  public Packet receive(int maxSize) throws MigrationException {
    int sock = fd.get();
    long size = Native.check("recv(fd " + sock + ", MSG_PEEK|MSG_TRUNC)",
        () -> Native.libc().recv(sock, null, 0, Native.MSG_PEEK | Native.MSG_TRUNC));
    // A zero-length packet and end of stream look alike; CRIU never sends empty packets.
    int length = (int) Math.min(size, Integer.MAX_VALUE);
    boolean tooBig = size > maxSize;
    int bufLen = tooBig ? 1 : Math.max(1, length);
    Pointer buf = Memory.allocateDirect(Native.runtime(), bufLen);
    Pointer iov = Memory.allocateDirect(Native.runtime(), IOVEC_SIZE);
    iov.putAddress(0, buf.address());
    iov.putLong(8, bufLen);
    int controlLen = cmsgSpace(MAX_FDS);
    Pointer control = Memory.allocateDirect(Native.runtime(), controlLen, true);
    Pointer msg = Memory.allocateDirect(Native.runtime(), MSGHDR_SIZE, true);
    msg.putAddress(16, iov.address());
    msg.putLong(24, 1);
    msg.putAddress(32, control.address());
    msg.putLong(40, controlLen);
    long got = Native.check("recvmsg(fd " + sock + ")",
        () -> Native.libc().recvmsg(sock, msg, Native.MSG_CMSG_CLOEXEC));
    List<Fd> fds = collectFds(msg, control);
    int flags = msg.getInt(48);
    if (got == 0 && size == 0) {
      fds.forEach(Fd::close);
      return null;
    }
    if (tooBig) {
      fds.forEach(Fd::close);
      throw new ProtocolException("packet of " + size + " bytes exceeds the limit of " + maxSize);
    }
    if ((flags & Native.MSG_CTRUNC) != 0) {
      fds.forEach(Fd::close);
      throw new ProtocolException("packet carried more than " + MAX_FDS + " descriptors");
    }
    byte[] data = new byte[(int) got];
    buf.get(0, data, 0, data.length);
    return new Packet(data, fds);
  }

  private static List<Fd> collectFds(Pointer msg, Pointer control) {
    List<Fd> fds = new ArrayList<>();
    long controlLen = msg.getLong(40);
    long offset = 0;
    while (offset + CMSGHDR_SIZE <= controlLen) {
      long len = control.getLong(offset);
      if (len < CMSGHDR_SIZE) {
        break;
      }
      int level = control.getInt(offset + 8);
      int type = control.getInt(offset + 12);
      if (level == Native.SOL_SOCKET && type == Native.SCM_RIGHTS) {
        int count = (int) ((len - CMSGHDR_SIZE) / 4);
        for (int i = 0; i < count; i++) {
          fds.add(Fd.adopt(control.getInt(offset + CMSGHDR_SIZE + 4L * i)));
        }
      }
      offset += align(len);
    }
    return fds;
  }

  /**
   * Reads into {@code dst} (stream sockets). Blocks until at least one byte arrives.
   *
   * @return bytes read, or -1 at end of stream
   */
  public int read(ByteBuffer dst) throws MigrationException {
    int sock = fd.get();
    if (!dst.hasRemaining()) {
      return 0;
    }
    if (dst.isDirect()) {
      // jnr's pointer to a direct buffer already starts at the buffer's position.
      Pointer p = Pointer.wrap(Native.runtime(), dst);
      int pos = dst.position();
      long n = Native.check("read(fd " + sock + ")",
          () -> Native.libc().read(sock, p, dst.remaining()));
      if (n == 0) {
        return -1;
      }
      dst.position(pos + (int) n);
      return (int) n;
    }
    Pointer tmp = Memory.allocateDirect(Native.runtime(), dst.remaining());
    long n = Native.check("read(fd " + sock + ")",
        () -> Native.libc().read(sock, tmp, dst.remaining()));
    if (n == 0) {
      return -1;
    }
    byte[] bytes = new byte[(int) n];
    tmp.get(0, bytes, 0, bytes.length);
    dst.put(bytes);
    return (int) n;
  }

  /** Writes some of {@code src} (stream sockets); blocks until at least one byte is written. */
  public int write(ByteBuffer src) throws MigrationException {
    int sock = fd.get();
    if (!src.hasRemaining()) {
      return 0;
    }
    Pointer p;
    int pos = src.position();
    int len = src.remaining();
    if (src.isDirect()) {
      // jnr's pointer to a direct buffer already starts at the buffer's position.
      p = Pointer.wrap(Native.runtime(), src);
    } else {
      p = Memory.allocateDirect(Native.runtime(), len);
      byte[] bytes = new byte[len];
      src.duplicate().get(bytes);
      p.put(0, bytes, 0, len);
    }
    Pointer from = p;
    long n = Native.check("send(fd " + sock + ")",
        () -> Native.libc().send(sock, from, len, Native.MSG_NOSIGNAL));
    src.position(pos + (int) n);
    return (int) n;
  }

  /**
   * Sets {@code SO_SNDBUF} (and, if {@code receiveBytes > 0}, {@code SO_RCVBUF}); the kernel
   * caps the values at {@code net.core.wmem_max}/{@code rmem_max} and doubles them for its
   * bookkeeping. For a stream socket, the writer's send buffer bounds the bytes in flight.
   *
   * @return the send buffer size the kernel reports afterwards
   */
  public int setBufferSizes(int sendBytes, int receiveBytes) throws MigrationException {
    int sock = fd.get();
    Native.check("setsockopt(fd " + sock + ", SO_SNDBUF)", () -> Native.libc().setsockopt(sock,
        Native.SOL_SOCKET, Native.SO_SNDBUF, new int[] {sendBytes}, 4));
    if (receiveBytes > 0) {
      Native.check("setsockopt(fd " + sock + ", SO_RCVBUF)", () -> Native.libc().setsockopt(
          sock, Native.SOL_SOCKET, Native.SO_RCVBUF, new int[] {receiveBytes}, 4));
    }
    int[] value = new int[1];
    Native.check("getsockopt(fd " + sock + ", SO_SNDBUF)", () -> Native.libc().getsockopt(sock,
        Native.SOL_SOCKET, Native.SO_SNDBUF, value, new int[] {4}));
    return value[0];
  }

  /** Half-closes: the peer reads end of stream, and can still send to us. */
  public void shutdownOutput() throws MigrationException {
    int sock = fd.get();
    Native.check("shutdown(fd " + sock + ", SHUT_WR)",
        () -> Native.libc().shutdown(sock, Native.SHUT_WR));
  }

  /** Wakes any thread blocked reading or writing this socket, without closing it. */
  public void shutdown() {
    if (fd.isOpen()) {
      try {
        Native.libc().shutdown(fd.get(), Native.SHUT_RDWR);
      } catch (IllegalStateException alreadyClosed) {
        // nothing to wake
      }
    }
  }

  @Override
  public void close() {
    fd.close();
  }

  @Override
  public String toString() {
    return "UnixSocket(" + fd + ")";
  }

  private static int cmsgSpace(int fdCount) {
    return CMSGHDR_SIZE + (int) align(4L * fdCount);
  }

  private static long align(long len) {
    return (len + 7) & ~7L;
  }

  private static String typeName(int type) {
    return type == Native.SOCK_SEQPACKET ? "SOCK_SEQPACKET"
        : type == Native.SOCK_STREAM ? "SOCK_STREAM" : String.valueOf(type);
  }

  /** A received packet; the receiver owns {@link #fds()}. */
  public record Packet(byte[] data, List<Fd> fds) {
    public Packet {
      fds = List.copyOf(fds);
    }
  }

  /** Both ends of a socketpair; closing the pair closes both. */
  public record Pair(UnixSocket first, UnixSocket second) implements AutoCloseable {
    @Override
    public void close() {
      first.close();
      second.close();
    }
  }
}

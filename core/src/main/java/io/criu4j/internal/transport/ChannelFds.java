package io.criu4j.internal.transport;

import io.criu4j.internal.posix.Native;
import java.io.IOException;
import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The file descriptor number behind a JDK {@link SocketChannel}, for the one thing the JDK does
 * not offer: {@code splice(2)} into the socket. There is no public API for it; this reads the
 * JDK's own record of the number ({@code sun.nio.ch.SocketChannelImpl.fdVal}, through {@code
 * sun.misc.Unsafe} of module {@code jdk.unsupported}, which needs no {@code --add-opens}), and
 * trusts it only if the descriptor is a stream socket of the channel's family bound to the
 * channel's local address. Where any of that fails (another JDK, another channel class),
 * {@link #of} returns empty and callers write through the channel.
 *
 * <p>The system property {@value #DISABLE_PROPERTY}{@code =false} turns this off (every
 * connection then copies), for comparison and as a way out should splicing misbehave.
 *
 * <p>The number stays valid only while the channel is open; callers duplicate it at once.
 * Thread-safe; stateless.
 */
public final class ChannelFds {
  private static final Logger log = LoggerFactory.getLogger(ChannelFds.class);
  private static final int SOCKADDR_BYTES = 128;
  /** The system property that turns descriptor access, hence splicing, off when "false". */
  public static final String DISABLE_PROPERTY = "io.criu4j.splice";

  private static final Access ACCESS =
      "false".equalsIgnoreCase(System.getProperty(DISABLE_PROPERTY)) ? null : Access.load();

  private ChannelFds() {}

  /** The descriptor of {@code channel}, a connected stream socket, or empty if unknown. */
  public static OptionalInt of(SocketChannel channel) {
    if (ACCESS == null || !channel.isOpen()) {
      return OptionalInt.empty();
    }
    try {
      int fd = ACCESS.fdOf(channel);
      if (fd < 0 || !matches(fd, channel.getLocalAddress())) {
        log.debug("the descriptor of {} could not be confirmed; splicing disabled", channel);
        return OptionalInt.empty();
      }
      return OptionalInt.of(fd);
    } catch (IOException | ReflectiveOperationException | RuntimeException e) {
      log.debug("no descriptor for {}: {}", channel, e.toString());
      return OptionalInt.empty();
    }
  }

  private static boolean matches(int fd, SocketAddress local) {
    int[] value = new int[1];
    int[] len = {4};
    if (Native.libc().getsockopt(fd, Native.SOL_SOCKET, Native.SO_TYPE, value, len) != 0
        || value[0] != Native.SOCK_STREAM) {
      return false;
    }
    Pointer addr = Memory.allocateDirect(Native.runtime(), SOCKADDR_BYTES, true);
    int[] addrLen = {SOCKADDR_BYTES};
    if (Native.libc().getsockname(fd, addr, addrLen) != 0) {
      return false;
    }
    int family = addr.getShort(0) & 0xffff;
    if (local instanceof InetSocketAddress inet) {
      int port = ((addr.getByte(2) & 0xff) << 8) | (addr.getByte(3) & 0xff);
      return (family == Native.AF_INET || family == Native.AF_INET6) && port == inet.getPort();
    }
    if (local instanceof UnixDomainSocketAddress unix) {
      int pathBytes = Math.max(0, addrLen[0] - 2);
      byte[] raw = new byte[pathBytes];
      addr.get(2, raw, 0, pathBytes);
      int end = 0;
      while (end < raw.length && raw[end] != 0) {
        end++;
      }
      String path = new String(raw, 0, end, StandardCharsets.UTF_8);
      return family == Native.AF_UNIX && path.equals(unix.getPath().toString());
    }
    return false;
  }

  /** Reads the JDK's private descriptor field; null where that is not possible. */
  private static final class Access {
    private final Object unsafe;
    private final java.lang.reflect.Method getInt;
    private final Class<?> implClass;
    private final long offset;

    private Access(Object unsafe, java.lang.reflect.Method getInt, Class<?> implClass,
        long offset) {
      this.unsafe = unsafe;
      this.getInt = getInt;
      this.implClass = implClass;
      this.offset = offset;
    }

    static Access load() {
      try {
        Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
        Field theUnsafe = unsafeClass.getDeclaredField("theUnsafe");
        theUnsafe.setAccessible(true);
        Object unsafe = theUnsafe.get(null);
        Class<?> impl = Class.forName("sun.nio.ch.SocketChannelImpl");
        Field fdVal = impl.getDeclaredField("fdVal");
        if (fdVal.getType() != int.class) {
          return null;
        }
        long offset = (long) unsafeClass.getMethod("objectFieldOffset", Field.class)
            .invoke(unsafe, fdVal);
        java.lang.reflect.Method getInt =
            unsafeClass.getMethod("getInt", Object.class, long.class);
        return new Access(unsafe, getInt, impl, offset);
      } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
        log.debug("socket descriptors are not accessible on this JDK: {}", e.toString());
        return null;
      }
    }

    int fdOf(SocketChannel channel) throws ReflectiveOperationException {
      if (!implClass.isInstance(channel)) {
        return -1;
      }
      return (int) getInt.invoke(unsafe, channel, offset);
    }
  }
}

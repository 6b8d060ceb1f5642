package io.criu4j.internal.posix;

import java.util.Map;

/**
 * Symbolic names of Linux error numbers, for messages and exceptions.
 *
 * <p>Thread-safe; stateless.
 */
public final class Errno {
  private static final Map<Integer, String> NAMES = Map.ofEntries(
      Map.entry(1, "EPERM"), Map.entry(2, "ENOENT"), Map.entry(3, "ESRCH"),
      Map.entry(4, "EINTR"), Map.entry(5, "EIO"), Map.entry(6, "ENXIO"),
      Map.entry(7, "E2BIG"), Map.entry(8, "ENOEXEC"), Map.entry(9, "EBADF"),
      Map.entry(10, "ECHILD"), Map.entry(11, "EAGAIN"), Map.entry(12, "ENOMEM"),
      Map.entry(13, "EACCES"), Map.entry(14, "EFAULT"), Map.entry(16, "EBUSY"),
      Map.entry(17, "EEXIST"), Map.entry(18, "EXDEV"), Map.entry(19, "ENODEV"),
      Map.entry(20, "ENOTDIR"), Map.entry(21, "EISDIR"), Map.entry(22, "EINVAL"),
      Map.entry(23, "ENFILE"), Map.entry(24, "EMFILE"), Map.entry(25, "ENOTTY"),
      Map.entry(26, "ETXTBSY"), Map.entry(27, "EFBIG"), Map.entry(28, "ENOSPC"),
      Map.entry(29, "ESPIPE"), Map.entry(30, "EROFS"), Map.entry(31, "EMLINK"),
      Map.entry(32, "EPIPE"), Map.entry(34, "ERANGE"), Map.entry(36, "ENAMETOOLONG"),
      Map.entry(38, "ENOSYS"), Map.entry(39, "ENOTEMPTY"), Map.entry(40, "ELOOP"),
      Map.entry(56, "EBADRQC"), Map.entry(61, "ENODATA"), Map.entry(62, "ETIME"),
      Map.entry(71, "EPROTO"), Map.entry(74, "EBADMSG"), Map.entry(75, "EOVERFLOW"),
      Map.entry(88, "ENOTSOCK"), Map.entry(90, "EMSGSIZE"), Map.entry(91, "EPROTOTYPE"),
      Map.entry(93, "EPROTONOSUPPORT"), Map.entry(95, "EOPNOTSUPP"),
      Map.entry(97, "EAFNOSUPPORT"), Map.entry(98, "EADDRINUSE"),
      Map.entry(99, "EADDRNOTAVAIL"), Map.entry(100, "ENETDOWN"),
      Map.entry(101, "ENETUNREACH"), Map.entry(103, "ECONNABORTED"),
      Map.entry(104, "ECONNRESET"), Map.entry(105, "ENOBUFS"), Map.entry(106, "EISCONN"),
      Map.entry(107, "ENOTCONN"), Map.entry(110, "ETIMEDOUT"),
      Map.entry(111, "ECONNREFUSED"), Map.entry(113, "EHOSTUNREACH"),
      Map.entry(114, "EALREADY"), Map.entry(115, "EINPROGRESS"), Map.entry(125, "ECANCELED"));

  private Errno() {}

  /** The symbolic name of {@code errno}, or {@code "errno <n>"} if it has none here. */
  public static String name(int errno) {
    String name = NAMES.get(Math.abs(errno));
    return name != null ? name : "errno " + errno;
  }
}

package io.criu4j.internal.posix;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * The libc calls criu4j makes, bound with jnr-ffi. Call only through {@link Native}, which turns
 * failures into exceptions and retries {@code EINTR}.
 */
@SaveError
public interface LibC {
  int socketpair(int domain, int type, int protocol, @Out int[] sv);

  int close(int fd);

  int fcntl(int fd, int cmd, int arg);

  int dup(int fd);

  int pipe2(@Out int[] fds, int flags);

  int open(String path, int flags, int mode);

  @ssize_t long read(int fd, Pointer buf, @size_t long count);

  @ssize_t long write(int fd, Pointer buf, @size_t long count);

  @ssize_t long recv(int fd, Pointer buf, @size_t long len, int flags);

  @ssize_t long send(int fd, Pointer buf, @size_t long len, int flags);

  @ssize_t long sendmsg(int fd, Pointer msghdr, int flags);

  @ssize_t long recvmsg(int fd, Pointer msghdr, int flags);

  int poll(Pointer fds, long nfds, int timeoutMillis);

  /** Offsets are always null here: both ends are pipes or sockets. */
  @ssize_t long splice(int fdIn, Pointer offIn, int fdOut, Pointer offOut, @size_t long len,
      int flags);

  int setsockopt(int fd, int level, int optname, @In int[] optval, int optlen);

  int getsockopt(int fd, int level, int optname, @Out int[] optval, @In @Out int[] optlen);

  int getsockname(int fd, Pointer addr, @In @Out int[] addrlen);

  int shutdown(int fd, int how);

  int kill(int pid, int signal);

  int waitpid(int pid, @Out int[] status, int options);

  int getpid();

  String strerror(int errnum);

  int posix_spawn(@Out int[] pid, String path, Pointer fileActions, Pointer attr,
      @In Pointer argv, @In Pointer envp);

  int posix_spawn_file_actions_init(Pointer fileActions);

  int posix_spawn_file_actions_destroy(Pointer fileActions);

  int posix_spawn_file_actions_adddup2(Pointer fileActions, int fd, int newFd);

  int posix_spawn_file_actions_addclosefrom_np(Pointer fileActions, int lowFd);

  int posix_spawnattr_init(Pointer attr);

  int posix_spawnattr_destroy(Pointer attr);

  int posix_spawnattr_setflags(Pointer attr, short flags);

  int posix_spawnattr_setsigmask(Pointer attr, Pointer sigset);

  int posix_spawnattr_setpgroup(Pointer attr, int pgroup);

  int posix_spawnattr_setsigdefault(Pointer attr, Pointer sigset);

  int sigemptyset(Pointer set);

  int sigfillset(Pointer set);
}

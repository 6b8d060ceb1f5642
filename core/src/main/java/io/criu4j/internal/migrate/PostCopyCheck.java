package io.criu4j.internal.migrate;

import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.ImageProxy;
import io.criu4j.MigrationException;
import io.criu4j.internal.image.SocketChannels;
import io.criu4j.internal.image.SyntheticPageClient;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.UnixSocket;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Locale;

/** What post-copy (CRIU lazy pages) needs on the source, and the small steps it takes there. */
final class PostCopyCheck {
  /**
   * The pipe size CRIU's lazy page server asks for ({@code F_SETPIPE_SZ} of 1024 pages). Above
   * {@code /proc/sys/fs/pipe-max-size} only a process with CAP_SYS_RESOURCE gets it; without,
   * the server fails on its first page request and the source's tree resumes.
   */
  static final long LAZY_PIPE_BYTES = 4L << 20;
  private static final int CAP_SYS_RESOURCE = 24;
  private static final Path PIPE_MAX_SIZE = Paths.get("/proc/sys/fs/pipe-max-size");

  private PostCopyCheck() {}

  /**
   * Null if this host can dump with lazy pages, else why not. The pipes are judged by
   * {@code hooks} ({@link #hostPipeRefusal()} unless a test stands in for this host).
   */
  static String sourceRefusal(boolean criuLazyPages, SourceSettings.TestHooks hooks)
      throws MigrationException {
    if (!criuLazyPages) {
      return "this host's CRIU cannot dump with lazy pages (it lacks userfaultfd with "
          + "non-cooperative events)";
    }
    return hooks.pipeRefusal();
  }

  /** {@link #pipeRefusal(long, long)} for this host's limit and this process's capabilities. */
  static String hostPipeRefusal() throws MigrationException {
    return pipeRefusal(readLong(PIPE_MAX_SIZE), effectiveCapabilities());
  }

  /** Null if CRIU's lazy page server can size its pipes, given those two values, else why not. */
  static String pipeRefusal(long pipeMaxSize, long capEff) {
    if (pipeMaxSize >= LAZY_PIPE_BYTES || (capEff & (1L << CAP_SYS_RESOURCE)) != 0) {
      return null;
    }
    return String.format(Locale.ROOT, "CRIU's lazy page server needs pipes of %d bytes, but "
        + "%s is %d and this process lacks CAP_SYS_RESOURCE; raise the limit with "
        + "'sysctl fs.pipe-max-size=%d'", LAZY_PIPE_BYTES, PIPE_MAX_SIZE, pipeMaxSize,
        LAZY_PIPE_BYTES);
  }

  private static long readLong(Path p) throws MigrationException {
    // One read into a buffer large enough: a sysctl file read in pieces returns only the first.
    byte[] b = new byte[64];
    try (java.io.InputStream in = Files.newInputStream(p)) {
      int n = in.read(b);
      return Long.parseLong(new String(b, 0, Math.max(0, n),
          java.nio.charset.StandardCharsets.US_ASCII).trim());
    } catch (IOException | NumberFormatException e) {
      throw new MigrationException("cannot read " + p + ": " + e, e);
    }
  }

  private static long effectiveCapabilities() throws MigrationException {
    Path status = Paths.get("/proc/self/status");
    try {
      List<String> lines = Files.readAllLines(status);
      for (String l : lines) {
        if (l.startsWith("CapEff:")) {
          return Long.parseUnsignedLong(l.substring(7).trim(), 16);
        }
      }
      return 0;
    } catch (IOException | NumberFormatException e) {
      throw new MigrationException("cannot read " + status + ": " + e, e);
    }
  }

  /**
   * A TCP port free on every address now, for CRIU's lazy page server (on loopback, or on every
   * address when the caller's configuration file keeps CRIU from being told otherwise).
   */
  static int freeTcpPort() throws MigrationException {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(0));
      return s.getLocalPort();
    } catch (IOException e) {
      throw new MigrationException("cannot find a free TCP port: " + e, e);
    }
  }

  /**
   * {@code options} for the final dump of a post-copy: lazy pages served on {@code port}. Over
   * RPC CRIU ignores the page server's address with lazy pages and would listen on every
   * address, handing the memory to whoever connects first; an address in a configuration file,
   * which CRIU reads after the RPC options, binds it to loopback. That file goes into the
   * dump's work directory. When the caller set a configuration file of its own, it stays, and
   * so does the wide listening socket (logged).
   */
  static CriuOptions lazyDumpOptions(CriuOptions options, int port, String label)
      throws MigrationException {
    CriuOptions.Builder b = options.toBuilder()
        .pageServer(CriuOptions.PageServerTarget.port(port));
    if (options.configFile() != null || options.workDir() == null) {
      org.slf4j.LoggerFactory.getLogger(PostCopyCheck.class).warn("{}: CRIU's lazy page server "
          + "listens on every address of this host until the source connects to it", label);
      return b.build();
    }
    Path conf = options.workDir().resolve("criu4j-lazy.conf");
    try {
      Files.writeString(conf, "address 127.0.0.1\n");
    } catch (IOException e) {
      throw new MigrationException("cannot write " + conf + ": " + e, e);
    }
    return b.configFile(conf.toString()).build();
  }

  /**
   * A lazy dump sends no page stream, so the proxy's page tunnel would wait for one: end it as
   * an empty session ({@code PS_IOV_CLOSE}), which the destination's page server answers.
   */
  static void endUnusedPageStream(ImageProxy proxy, CriuVersion criu) throws MigrationException {
    int fd = proxy.configure(CriuOptions.DEFAULTS).pageServer().fd();
    try (UnixSocket s = UnixSocket.adopt(Fd.duplicate(fd, 3).release())) {
      new SyntheticPageClient(criu.pageServerHeaderSize(), 4096).closeEmpty(SocketChannels.of(s));
    } catch (IOException e) {
      throw new MigrationException("cannot end the unused page stream: " + e, e);
    }
  }
}

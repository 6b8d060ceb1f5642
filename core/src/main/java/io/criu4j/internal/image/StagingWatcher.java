package io.criu4j.internal.image;

import static io.criu4j.internal.image.Inotify.IN_CLOSE_WRITE;
import static io.criu4j.internal.image.Inotify.IN_CREATE;
import static io.criu4j.internal.image.Inotify.IN_DELETE_SELF;
import static io.criu4j.internal.image.Inotify.IN_DONT_FOLLOW;
import static io.criu4j.internal.image.Inotify.IN_IGNORED;
import static io.criu4j.internal.image.Inotify.IN_ISDIR;
import static io.criu4j.internal.image.Inotify.IN_MOVED_TO;
import static io.criu4j.internal.image.Inotify.IN_MOVE_SELF;
import static io.criu4j.internal.image.Inotify.IN_ONLYDIR;
import static io.criu4j.internal.image.Inotify.IN_Q_OVERFLOW;
import static io.criu4j.internal.image.Inotify.IN_UNMOUNT;

import io.criu4j.MigrationException;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.Pipe;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches one staging directory with inotify and reports, in the order they happen, the plain
 * names of the regular files in it that were closed after writing ({@code IN_CLOSE_WRITE}) or
 * moved in whole ({@code IN_MOVED_TO}). The source side uses it to ship each image file as soon
 * as CRIU has written it, instead of waiting for the dump to end.
 *
 * <pre>{@code
 * try (StagingWatcher watcher = StagingWatcher.open(stagingDir)) {
 *   // start CRIU; while it dumps:
 *   while (!dumpFinished()) {
 *     String name = watcher.take(Duration.ofMillis(100));
 *     if (name != null) {
 *       ship(name);
 *     }
 *   }
 *   // after CRIU's DUMP reply (or its post-dump notification):
 *   for (String name : watcher.drain()) {
 *     ship(name);
 *   }
 * }
 * }</pre>
 *
 * <h2>What is reported, and when</h2>
 *
 * <ul>
 *   <li>Each name is reported at most once, by {@link #take(Duration)} or by {@link #drain()}. A
 *       file closed after writing a second time is not reported again; the watcher logs a warning,
 *       since whatever shipped the first version is now stale.
 *   <li>Subdirectories, symbolic links (such as the {@code parent} link of a pre-dump) and other
 *       non-regular entries are never reported. Files inside subdirectories are not watched.
 *   <li>Files that already exist when the watcher opens are reported only by {@link #drain()}.
 * </ul>
 *
 * <p><b>Assumption about the writer.</b> CRIU writes each image file once: it creates it, writes
 * it and closes it, and never reopens it for writing or appends to it afterwards. So a file is
 * complete when its first {@code IN_CLOSE_WRITE} arrives. A writer that breaks this rule gets
 * partial files shipped.
 *
 * <p><b>Queue overflow.</b> The kernel queues at most {@code fs.inotify.max_queued_events}
 * (16384 by default) events per instance; beyond that it drops events and queues one
 * {@code IN_Q_OVERFLOW}. A dedicated reader thread drains the kernel queue into memory, so this
 * happens only when the reader cannot keep up. When it does, the watcher rescans the directory
 * but does <em>not</em> report what it finds: a rescan cannot tell a file whose close event was
 * lost from a file CRIU still has open and is still writing, and reporting the latter would ship
 * a partial image that could never be reported again. Files still open at that point produce
 * their {@code IN_CLOSE_WRITE} later and are reported as usual; files whose close event was lost
 * are reported by {@link #drain()}. Hence {@code drain()}, called once CRIU has finished writing
 * (after the DUMP reply or the post-dump notification), is the authority: it lists every regular
 * file not yet reported, whatever happened to the events.
 *
 * <p>Owns an inotify descriptor, a wake-up pipe and one named daemon platform thread (it blocks
 * in {@code poll(2)}); {@link #close()} stops the thread and closes both descriptors, and is
 * idempotent. Thread-safe: typically one thread takes names while another closes.
 */
public final class StagingWatcher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StagingWatcher.class);

  private static final int WATCH_MASK =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
          | IN_DONT_FOLLOW;
  private static final int READ_BUFFER = 64 * 1024;
  private static final long JOIN_MILLIS = 10_000;
  private static final Charset FILE_NAMES = fileNameCharset();

  private final Path dir;
  private final Fd inotify;
  private final Pipe wakeup;
  private final Thread reader;

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  /** Accepted, not yet handed out; in event order. */
  private final LinkedHashSet<String> pending = new LinkedHashSet<>();
  /** Every name ever accepted (pending, taken or drained): each is reported once. */
  private final Set<String> accepted = new HashSet<>();
  /** Created, close not seen: files CRIU presumably still writes (for diagnostics). */
  private final Set<String> writing = new HashSet<>();
  private long overflows;
  private long rewrites;
  private MigrationException failure;
  private boolean closed;
  private boolean noWait;

  /** Test hook: while set, the reader thread does not read events (to provoke an overflow). */
  private volatile CountDownLatch hold;

  private StagingWatcher(Path dir, Fd inotify, Pipe wakeup) {
    this.dir = dir;
    this.inotify = inotify;
    this.wakeup = wakeup;
    this.reader = new Thread(this::readLoop, "criu4j-staging-watcher-" + dir.getFileName());
    this.reader.setDaemon(true);
  }

  /**
   * Starts watching {@code dir}. Events are collected from the moment this method returns, so
   * open the watcher before CRIU starts writing.
   *
   * @param dir an existing directory (a symbolic link to one is not accepted); the caller keeps
   *     owning it, the watcher never writes to it
   * @throws IllegalArgumentException if {@code dir} is not a directory
   * @throws MigrationException if inotify cannot be set up (for example the per-user limit
   *     {@code fs.inotify.max_user_instances} is reached)
   */
  public static StagingWatcher open(Path dir) throws MigrationException {
    Path abs = dir.toAbsolutePath().normalize();
    if (!Files.isDirectory(abs, LinkOption.NOFOLLOW_LINKS)) {
      throw new IllegalArgumentException("not a directory: " + abs);
    }
    Fd fd = Inotify.init();
    Pipe pipe = null;
    try {
      Inotify.addWatch(fd, abs.toString(), WATCH_MASK);
      pipe = Pipe.open();
      StagingWatcher watcher = new StagingWatcher(abs, fd, pipe);
      watcher.reader.start();
      return watcher;
    } catch (MigrationException | RuntimeException | Error e) {
      fd.close();
      if (pipe != null) {
        pipe.close();
      }
      throw e;
    }
  }

  /** The watched directory, absolute. */
  public Path directory() {
    return dir;
  }

  /**
   * Returns the next name, waiting up to {@code timeout} for one.
   *
   * @return the plain name of a file closed after writing, or {@code null} if none arrived in
   *     time or the watcher is closed (also when {@link #close()} is called during the wait)
   * @throws MigrationException once the names collected so far are taken, if the watch broke:
   *     the directory was deleted, moved or unmounted, or reading events failed
   */
  public String take(Duration timeout) throws MigrationException, InterruptedException {
    long nanos = timeout.toNanos();
    lock.lock();
    try {
      while (true) {
        if (!pending.isEmpty()) {
          Iterator<String> first = pending.iterator();
          String name = first.next();
          first.remove();
          return name;
        }
        if (closed || noWait) {
          return null;
        }
        if (failure != null) {
          throw new MigrationException(failure.getMessage(), failure.errno(), failure);
        }
        if (nanos <= 0) {
          return null;
        }
        nanos = changed.awaitNanos(nanos);
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Makes {@link #take(Duration)} stop waiting, now and later: it returns a pending name, or
   * {@code null} at once. Threads that take names call it when the writer is done, before
   * {@link #drain()}. Idempotent.
   */
  public void stopWaiting() {
    lock.lock();
    try {
      noWait = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** {@link #take(Duration)} without waiting. */
  public String poll() throws MigrationException {
    try {
      return take(Duration.ZERO);
    } catch (InterruptedException e) {
      throw new AssertionError("take(0) does not wait", e);
    }
  }

  /**
   * Lists every regular file in the directory not reported yet and marks them reported: first
   * the names collected from events but not taken (in event order), then those only a rescan of
   * the directory finds (oldest modification first). Call it once the writer is done, that is
   * after CRIU's DUMP reply or post-dump notification; a file the writer still has open would be
   * listed half-written (a warning names such files when the watcher knows of them).
   *
   * <p>It does not depend on inotify: it still works after an overflow or a failed watch, as long
   * as the directory exists. The watcher keeps running afterwards.
   *
   * @throws MigrationException if the directory cannot be listed
   * @throws IllegalStateException if the watcher is closed
   */
  public List<String> drain() throws MigrationException {
    ensureOpen();
    List<String> onDisk = scan(dir);
    lock.lock();
    try {
      ensureOpen();
      List<String> result = new ArrayList<>(pending);
      pending.clear();
      for (String name : onDisk) {
        if (accepted.add(name)) {
          result.add(name);
        }
      }
      List<String> stillWriting = new ArrayList<>();
      for (String name : result) {
        if (writing.contains(name)) {
          stillWriting.add(name);
        }
      }
      if (!stillWriting.isEmpty()) {
        log.warn("drain() of {} lists {} file(s) whose close was not seen, possibly still being "
            + "written: {}", dir, stillWriting.size(), stillWriting);
      }
      return result;
    } finally {
      lock.unlock();
    }
  }

  /** How many times the kernel event queue overflowed (each triggers a rescan). */
  public long overflows() {
    lock.lock();
    try {
      return overflows;
    } finally {
      lock.unlock();
    }
  }

  /** How many times an already reported file was closed after writing (or moved in) again. */
  public long rewrites() {
    lock.lock();
    try {
      return rewrites;
    } finally {
      lock.unlock();
    }
  }

  /** True until {@link #close()}. */
  public boolean isOpen() {
    lock.lock();
    try {
      return !closed;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Stops the reader thread, waits for it and closes the inotify descriptor and the wake-up pipe.
   * A thread blocked in {@link #take(Duration)} returns {@code null}. Idempotent; safe to call
   * from any thread.
   */
  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    CountDownLatch h = hold;
    if (h != null) {
      h.countDown();
    }
    if (Thread.currentThread() != reader) {
      wake();
      if (!join(reader, JOIN_MILLIS)) {
        // Cannot happen short of a JVM bug: the thread only blocks in poll(2) on the pipe.
        log.error("{} did not stop within {} ms; closing its descriptors anyway", reader.getName(),
            JOIN_MILLIS);
      }
    }
    inotify.close();
    wakeup.close();
  }

  @Override
  public String toString() {
    return "StagingWatcher(" + dir + (isOpen() ? ")" : ", closed)");
  }

  // ---- test hooks --------------------------------------------------------------------------

  /** Makes the reader thread stop reading events until {@link #releaseReader()}. */
  void holdReader() {
    hold = new CountDownLatch(1);
  }

  void releaseReader() {
    CountDownLatch h = hold;
    hold = null;
    if (h != null) {
      h.countDown();
    }
  }

  // ---- reader thread -----------------------------------------------------------------------

  private void readLoop() {
    int ifd = inotify.get();
    int wfd = wakeup.readEnd().get();
    Pointer pfds = Memory.allocateDirect(Native.runtime(), 16, true);
    Pointer buf = Memory.allocateDirect(Native.runtime(), READ_BUFFER);
    try {
      while (true) {
        pfds.putInt(0, ifd);
        pfds.putShort(4, (short) Native.POLLIN);
        pfds.putShort(6, (short) 0);
        pfds.putInt(8, wfd);
        pfds.putShort(12, (short) Native.POLLIN);
        pfds.putShort(14, (short) 0);
        Native.check("poll(inotify fd " + ifd + ")", () -> Native.libc().poll(pfds, 2, -1));
        if (pfds.getShort(14) != 0 || isClosed()) {
          return;
        }
        int revents = pfds.getShort(6);
        if ((revents & (Native.POLLERR | Native.POLLNVAL)) != 0) {
          throw new MigrationException("poll on inotify fd " + ifd + " reported revents 0x"
              + Integer.toHexString(revents & 0xffff));
        }
        if ((revents & Native.POLLIN) != 0 && !readAvailable(ifd, buf)) {
          return;
        }
      }
    } catch (MigrationException e) {
      fail(e);
    } catch (InterruptedException e) {
      fail(new MigrationException("staging watcher of " + dir + " interrupted", e));
    } catch (RuntimeException | Error e) {
      fail(new MigrationException("staging watcher of " + dir + " failed: " + e, e));
    }
  }

  /** Reads until the queue is empty. Returns false when the watch is gone or we are closed. */
  private boolean readAvailable(int ifd, Pointer buf)
      throws MigrationException, InterruptedException {
    while (true) {
      CountDownLatch h = hold;
      if (h != null) {
        h.await();
      }
      if (isClosed()) {
        return false;
      }
      long n = Native.libc().read(ifd, buf, READ_BUFFER);
      if (n < 0) {
        int errno = Native.lastErrno();
        if (errno == Native.EINTR) {
          continue;
        }
        if (errno == Native.EAGAIN) {
          return true;
        }
        throw Native.failure("read(inotify fd " + ifd + ")", errno);
      }
      if (n == 0) {
        throw new MigrationException("read(inotify fd " + ifd + ") returned end of file");
      }
      if (!dispatch(buf, (int) n)) {
        return false;
      }
    }
  }

  /** Handles one read's worth of events. Returns false when the watch is gone. */
  private boolean dispatch(Pointer buf, int length) throws MigrationException {
    boolean overflowed = false;
    String lost = null;
    lock.lock();
    try {
      int pos = 0;
      while (pos + Inotify.EVENT_HEADER_SIZE <= length) {
        int mask = buf.getInt(pos + 4);
        int nameLen = buf.getInt(pos + 12);
        String name = nameLen == 0 ? null : name(buf, pos + Inotify.EVENT_HEADER_SIZE, nameLen);
        pos += Inotify.EVENT_HEADER_SIZE + nameLen;
        if ((mask & IN_Q_OVERFLOW) != 0) {
          overflows++;
          overflowed = true;
        } else if ((mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED)) != 0) {
          lost = (mask & IN_MOVE_SELF) != 0 ? "was moved"
              : (mask & IN_UNMOUNT) != 0 ? "was unmounted" : "was deleted";
          break;
        } else if (name == null || (mask & IN_ISDIR) != 0) {
          continue;
        } else if ((mask & IN_CREATE) != 0) {
          writing.add(name);
        } else if ((mask & IN_CLOSE_WRITE) != 0) {
          writing.remove(name);
          accept(name, "closed after writing");
        } else if ((mask & IN_MOVED_TO) != 0) {
          if (Files.isRegularFile(dir.resolve(name), LinkOption.NOFOLLOW_LINKS)) {
            writing.remove(name);
            accept(name, "moved in");
          }
        }
      }
      if (lost != null) {
        failure = new MigrationException("staging directory " + dir + " " + lost
            + " while being watched");
        changed.signalAll();
        return false;
      }
    } finally {
      lock.unlock();
    }
    if (overflowed) {
      onOverflow();
    }
    return true;
  }

  /** Called with the lock held. */
  private void accept(String name, String how) {
    if (accepted.add(name)) {
      pending.add(name);
      changed.signalAll();
    } else if (!pending.contains(name)) {
      rewrites++;
      log.warn("{} in {} was {} again after it was reported; what was shipped may be stale", name,
          dir, how);
    } else {
      log.debug("{} in {} was {} again before it was taken", name, dir, how);
    }
  }

  private void onOverflow() throws MigrationException {
    List<String> onDisk = scan(dir);
    int unseen = 0;
    lock.lock();
    try {
      for (String name : onDisk) {
        if (!accepted.contains(name)) {
          unseen++;
        }
      }
    } finally {
      lock.unlock();
    }
    log.warn("inotify queue of {} overflowed (raise fs.inotify.max_queued_events?); {} file(s) "
        + "not reported yet, of which those already closed will be reported by drain()", dir,
        unseen);
  }

  private void fail(MigrationException e) {
    lock.lock();
    try {
      if (!closed) {
        log.warn("staging watcher of {} stopped: {}", dir, e.getMessage());
        failure = e;
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private boolean isClosed() {
    lock.lock();
    try {
      return closed;
    } finally {
      lock.unlock();
    }
  }

  private void ensureOpen() {
    if (isClosed()) {
      throw new IllegalStateException("staging watcher of " + dir + " is closed");
    }
  }

  private void wake() {
    Pointer one = Memory.allocateDirect(Native.runtime(), 1, true);
    int fd = wakeup.writeEnd().get();
    if (Native.libc().write(fd, one, 1) != 1) {
      log.debug("write to wake-up pipe of {} failed: errno {}", dir, Native.lastErrno());
    }
  }

  private static boolean join(Thread thread, long millis) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    boolean interrupted = false;
    try {
      while (thread.isAlive()) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        try {
          thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      return true;
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The name in an event: {@code len} bytes, NUL-padded. */
  private static String name(Pointer buf, int offset, int len) {
    byte[] bytes = new byte[len];
    buf.get(offset, bytes, 0, len);
    int end = 0;
    while (end < len && bytes[end] != 0) {
      end++;
    }
    return new String(bytes, 0, end, FILE_NAMES);
  }

  /** Regular files in {@code dir}, oldest modification first, then by name. */
  private static List<String> scan(Path dir) throws MigrationException {
    record Found(String name, long modified) {}
    List<Found> found = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path entry : entries) {
        BasicFileAttributes attrs;
        try {
          attrs = Files.readAttributes(entry, BasicFileAttributes.class,
              LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException gone) {
          continue;
        }
        if (attrs.isRegularFile()) {
          found.add(new Found(entry.getFileName().toString(),
              attrs.lastModifiedTime().to(TimeUnit.NANOSECONDS)));
        }
      }
    } catch (IOException e) {
      throw new MigrationException("cannot list staging directory " + dir + ": " + e, e);
    }
    found.sort(Comparator.comparingLong(Found::modified).thenComparing(Found::name));
    List<String> names = new ArrayList<>(found.size());
    for (Found f : found) {
      names.add(f.name());
    }
    return names;
  }

  /** The charset the JDK decodes file names with, so names match those of {@link #scan}. */
  private static Charset fileNameCharset() {
    try {
      return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
    } catch (RuntimeException e) {
      return StandardCharsets.UTF_8;
    }
  }
}

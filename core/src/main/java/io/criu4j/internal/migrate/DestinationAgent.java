package io.criu4j.internal.migrate;

import io.criu4j.ImageCache;
import io.criu4j.MigrationException;
import io.criu4j.TransportException;
import io.criu4j.internal.image.OwnedDirs;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination agent: accepts connections, reads each one's preamble, and starts an
 * {@link AgentSession} for a control connection or hands an image connection to its session.
 * Owns the listener, the sessions and their threads.
 */
public final class DestinationAgent implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DestinationAgent.class);
  private static final AtomicLong IDS = new AtomicLong();

  private final AgentSettings settings;
  private final Listener listener;
  private final String label;
  private final Thread acceptor;
  private final Map<UUID, AgentSession> sessions = new ConcurrentHashMap<>();
  private final List<Thread> threads = new ArrayList<>();
  private final AtomicInteger completed = new AtomicInteger();
  private final AtomicLong maxSessionPeakHeld = new AtomicLong();
  private final AtomicLong sumSessionPeakHeld = new AtomicLong();
  private volatile boolean closed;

  private DestinationAgent(AgentSettings settings, Listener listener) {
    this.settings = settings;
    this.listener = listener;
    this.label = "agent-" + IDS.incrementAndGet();
    this.acceptor = new Thread(this::acceptLoop, "criu4j-" + label + "-accept");
    acceptor.setDaemon(true);
  }

  /**
   * Deletes what agents that no longer run left in {@code dir} (session, work and CPU-check
   * directories of a SIGKILLed agent); directories of live agents sharing it carry their
   * owner's name and stay. Done by every agent at start; returns what was deleted.
   */
  public static List<Path> reclaimLeftovers(Path dir) {
    List<Path> removed = new ArrayList<>(OwnedDirs.reclaim(dir, AgentSession.SESSION_PREFIX));
    removed.addAll(OwnedDirs.reclaim(dir, ImageCache.WORK_DIR_PREFIX));
    removed.addAll(OwnedDirs.reclaim(dir, AgentSession.CPU_CHECK_PREFIX));
    return removed;
  }

  public static DestinationAgent start(AgentSettings settings) throws MigrationException {
    if (!Files.isDirectory(settings.directory())) {
      throw new MigrationException("the agent's directory " + settings.directory()
          + " does not exist or is not a directory");
    }
    reclaimLeftovers(settings.directory());
    Listener l = settings.transport().listen(settings.listen());
    DestinationAgent a = new DestinationAgent(settings, l);
    a.acceptor.start();
    log.info("{}: listening on {}, images in {}", a.label, l.address(), settings.directory());
    return a;
  }

  AgentSettings settings() {
    return settings;
  }

  public URI address() {
    return listener.address();
  }

  public int activeSessions() {
    return sessions.size();
  }

  public int completedSessions() {
    return completed.get();
  }

  void recordPeakHeld(long bytes) {
    maxSessionPeakHeld.accumulateAndGet(bytes, Math::max);
    sumSessionPeakHeld.addAndGet(bytes);
  }

  /**
   * Image file data held in memory by ended sessions: the largest peak of one session, and the
   * sum of the sessions' peaks (a bound of what they held at once). For tests and benchmarks.
   */
  public long[] peakHeldBytes() {
    return new long[] {maxSessionPeakHeld.get(), sumSessionPeakHeld.get()};
  }

  void completed() {
    completed.incrementAndGet();
  }

  /** Registers a session; false if the agent is full (the session refuses at pre-flight). */
  synchronized boolean register(AgentSession s) {
    if (closed) {
      return false;
    }
    if (sessions.size() >= settings.maxConcurrentSessions()) {
      return false;
    }
    return sessions.putIfAbsent(s.id(), s) == null;
  }

  void unregister(AgentSession s) {
    sessions.remove(s.id(), s);
  }

  private void acceptLoop() {
    while (!closed) {
      Connection c;
      try {
        c = listener.accept();
      } catch (TransportException | RuntimeException e) {
        if (!closed) {
          log.warn("{}: accept failed, no longer accepting: {}", label, e.getMessage());
        }
        return;
      }
      Thread t = new Thread(() -> serve(c), "criu4j-" + label + "-conn");
      t.setDaemon(true);
      synchronized (this) {
        if (closed) {
          c.close();
          return;
        }
        threads.removeIf(x -> !x.isAlive());
        threads.add(t);
      }
      t.start();
    }
  }

  private void serve(Connection c) {
    long handshakeDeadline = System.nanoTime() + settings.handshakeTimeout().toNanos();
    try {
      c.setReadTimeout(settings.handshakeTimeout());
      ByteBuffer pre = ControlChannel.readFully(c, 8);
      if (pre == null) {
        c.close();
        return;
      }
      byte[] magic = new byte[4];
      pre.get(magic);
      int version = pre.getInt();
      String m = new String(magic, StandardCharsets.US_ASCII);
      if (version != Wire.PROTOCOL) {
        log.warn("{}: refusing a connection of protocol {} (this agent speaks {})", label,
            version, Wire.PROTOCOL);
        c.close();
        return;
      }
      if (m.equals(Wire.CONTROL_MAGIC)) {
        c.setReadTimeout(Duration.ZERO);
        new AgentSession(this, c, handshakeDeadline).run();
      } else if (m.equals(Wire.IMAGE_MAGIC)) {
        ByteBuffer h = ControlChannel.readFully(c, 20);
        if (h == null) {
          c.close();
          return;
        }
        UUID id = new UUID(h.getLong(), h.getLong());
        int round = h.getInt();
        c.setReadTimeout(Duration.ZERO);
        AgentSession s = sessions.get(id);
        if (s == null || !s.offerImages(round, c)) {
          log.warn("{}: image connection for unknown session {} round {}", label, id, round);
          c.close();
        }
      } else {
        log.warn("{}: refusing a connection with preamble '{}'", label, m);
        c.close();
      }
    } catch (MigrationException | RuntimeException e) {
      log.warn("{}: connection from {} failed before its session started (handshakeTimeout={} "
          + "ms): {}", label, c.peer(), settings.handshakeTimeout().toMillis(), e.getMessage());
      c.close();
    }
  }

  @Override
  public void close() {
    List<Thread> ts;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      ts = new ArrayList<>(threads);
    }
    listener.close();
    for (AgentSession s : sessions.values()) {
      s.abort("the agent is closing");
    }
    join(acceptor);
    for (Thread t : ts) {
      join(t);
    }
    log.info("{}: closed", label);
  }

  private void join(Thread t) {
    if (t == Thread.currentThread()) {
      return;
    }
    try {
      t.join(60_000);
      if (t.isAlive()) {
        log.warn("{}: thread {} did not stop", label, t.getName());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

package io.criu4j.internal.transport.mem;

import io.criu4j.TransportException;
import io.criu4j.internal.transport.Errnos;
import io.criu4j.internal.transport.Timeouts;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.PeerIdentity;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@code mem://name} listener: a bounded queue of connected-but-not-accepted server ends.
 *
 * <p>Thread-safe as described at {@link Listener}.
 */
final class MemListener implements Listener {
  private final MemTransport transport;
  private final String name;
  private final URI address;
  private final int backlog;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition hasPending = lock.newCondition();
  private final Condition hasRoom = lock.newCondition();
  private final ArrayDeque<MemConnection> pending = new ArrayDeque<>();
  private long connections; // guarded by lock
  private volatile boolean closed;

  MemListener(MemTransport transport, String name, URI address, int backlog) {
    this.transport = transport;
    this.name = name;
    this.address = address;
    this.backlog = backlog;
  }

  @Override
  public URI address() {
    return address;
  }

  /** Creates a connected pair, queues the server end, and returns the client end. */
  Connection connect(URI requested, long timeoutNanos, int pipeCapacity)
      throws TransportException {
    long start = System.nanoTime();
    try {
      lock.lockInterruptibly();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw interruptedConnect(requested, e);
    }
    try {
      while (!closed && pending.size() >= backlog) {
        if (timeoutNanos == 0) {
          hasRoom.await();
        } else {
          long left = timeoutNanos - (System.nanoTime() - start);
          if (left <= 0) {
            throw new TransportException("connect to " + requested + " timed out after "
                + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
          }
          hasRoom.awaitNanos(left);
        }
      }
      if (closed) {
        throw new TransportException("cannot connect to " + requested
            + ": connection refused (the listener closed)", Errnos.ECONNREFUSED, null);
      }
      long number = ++connections;
      MemPipe toServer = new MemPipe(pipeCapacity);
      MemPipe toClient = new MemPipe(pipeCapacity);
      String clientName = address + "#" + number;
      MemConnection client = new MemConnection(
          toClient, toServer, PeerIdentity.of(address.toString()), clientName + " (client)");
      MemConnection server = new MemConnection(
          toServer, toClient, PeerIdentity.of(clientName), clientName + " (server)");
      pending.addLast(server);
      hasPending.signal();
      return client;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw interruptedConnect(requested, e);
    } finally {
      lock.unlock();
    }
  }

  private static TransportException interruptedConnect(URI requested, InterruptedException e) {
    return new TransportException(
        "interrupted while connecting to " + requested, Errnos.ECANCELED, e);
  }

  @Override
  public Connection accept() throws TransportException {
    return accept(Duration.ZERO);
  }

  @Override
  public Connection accept(Duration timeout) throws TransportException {
    long timeoutNanos = Timeouts.toNanos("timeout", timeout);
    long start = System.nanoTime();
    try {
      lock.lockInterruptibly();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw interruptedAccept(e);
    }
    try {
      while (true) {
        if (closed) {
          throw new TransportException("listener closed: " + address);
        }
        MemConnection next = pending.pollFirst();
        if (next != null) {
          hasRoom.signal();
          return next;
        }
        if (timeoutNanos == 0) {
          hasPending.await();
        } else {
          long left = timeoutNanos - (System.nanoTime() - start);
          if (left <= 0) {
            throw new TransportException("no connection to " + address + " within "
                + Timeouts.format(timeoutNanos), Errnos.ETIMEDOUT, null);
          }
          hasPending.await(left, TimeUnit.NANOSECONDS);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw interruptedAccept(e);
    } finally {
      lock.unlock();
    }
  }

  private TransportException interruptedAccept(InterruptedException e) {
    return new TransportException(
        "interrupted while accepting on " + address, Errnos.ECANCELED, e);
  }

  @Override
  public boolean isOpen() {
    return !closed;
  }

  @Override
  public void close() {
    List<MemConnection> discarded;
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      transport.remove(name, this);
      discarded = new ArrayList<>(pending);
      pending.clear();
      hasPending.signalAll();
      hasRoom.signalAll();
    } finally {
      lock.unlock();
    }
    for (MemConnection connection : discarded) {
      connection.close();
    }
  }

  @Override
  public String toString() {
    return "listener on " + address;
  }
}

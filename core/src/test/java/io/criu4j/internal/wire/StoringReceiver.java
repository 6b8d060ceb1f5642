package io.criu4j.internal.wire;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The receiving application for tests: accepts everything, stores each file in memory on its own
 * thread (granting credit after each read), echoes tunnels, acknowledges images once their files
 * are stored, and closes the connection when the sender said GOODBYE.
 */
final class StoringReceiver {
  final Map<String, byte[]> files = new ConcurrentHashMap<>();
  final List<String> completionOrder = Collections.synchronizedList(new ArrayList<>());
  final List<ImageEnd> images = Collections.synchronizedList(new ArrayList<>());
  final AtomicReference<Throwable> failure = new AtomicReference<>();
  final Map<String, Long> tunnelBytes = new ConcurrentHashMap<>();
  private final MuxConnection connection;
  private final Thread acceptor;
  private final List<Thread> workers = Collections.synchronizedList(new ArrayList<>());

  StoringReceiver(MuxConnection connection) {
    this.connection = connection;
    this.acceptor = new Thread(this::acceptLoop, "storing-receiver");
    acceptor.start();
  }

  private void acceptLoop() {
    try {
      Inbound next;
      while ((next = connection.accept()) != null) {
        if (next instanceof InboundFile f) {
          spawn("store-" + f.name(), () -> store(f));
        } else if (next instanceof Tunnel t) {
          spawn("echo-" + t.name(), () -> echo(t));
        } else if (next instanceof ImageEnd e) {
          for (Thread w : new ArrayList<>(workers)) {
            if (w.getName().startsWith("store-")) {
              w.join();
            }
          }
          images.add(e);
          connection.acknowledgeImage(e);
        }
      }
      for (Thread w : new ArrayList<>(workers)) {
        w.join();
      }
    } catch (Throwable e) {
      failure.compareAndSet(null, e);
    } finally {
      connection.close();
    }
  }

  private interface Body {
    void run() throws Exception;
  }

  private void spawn(String name, Body body) {
    Thread t =
        new Thread(
            () -> {
              try {
                body.run();
              } catch (Throwable e) {
                failure.compareAndSet(null, e);
              }
            },
            name);
    workers.add(t);
    t.start();
  }

  private void store(InboundFile f) throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    int n;
    while ((n = f.read(buf.clear())) >= 0) {
      bytes.write(buf.array(), 0, n);
      f.grant(n);
    }
    files.put(f.name(), bytes.toByteArray());
    completionOrder.add(f.name());
  }

  private void echo(Tunnel t) throws Exception {
    ByteBuffer buf = ByteBuffer.allocateDirect(32 * 1024);
    long total = 0;
    int n;
    while ((n = t.read(buf.clear())) >= 0) {
      buf.flip();
      t.write(buf);
      t.grant(n);
      total += n;
    }
    t.shutdownOutput();
    tunnelBytes.put(t.name(), total);
  }

  /** Waits until the sender ended the connection and everything was stored. */
  void awaitDone() throws Exception {
    acceptor.join(TimeUnit.SECONDS.toMillis(30));
    if (acceptor.isAlive()) {
      throw new AssertionError("the receiver did not finish");
    }
    if (failure.get() != null) {
      throw new AssertionError("the receiver failed", failure.get());
    }
  }
}

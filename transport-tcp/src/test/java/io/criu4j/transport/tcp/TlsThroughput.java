package io.criu4j.transport.tcp;

import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * Prints loopback throughput of plain TCP and TLS, one connection each, the same bytes through
 * both in the same run. Not a test: figures depend on the machine. Run from the module directory
 * after {@code mvn test-compile}:
 *
 * <pre>
 * java -cp "target/classes:target/test-classes:$(cat target/test-classpath.txt)" \
 *     io.criu4j.transport.tcp.TlsThroughput [MiB] [rounds]
 * </pre>
 */
public final class TlsThroughput {
  private static final int BLOCK = 1 << 20;

  private TlsThroughput() {}

  public static void main(String[] args) throws Exception {
    long mib = args.length > 0 ? Long.parseLong(args[0]) : 1024;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    Transport tcp = TcpTransport.create();
    Transport tls = TestCertificates.transport(TestCertificates.CA_A, "node",
        TestCertificates.CA_A).build();
    measure("tcp", tcp, mib); // warm-up
    measure("tls", tls, mib);
    double bestTcp = 0;
    double bestTls = 0;
    for (int i = 0; i < rounds; i++) {
      bestTcp = Math.max(bestTcp, measure("tcp", tcp, mib));
      bestTls = Math.max(bestTls, measure("tls", tls, mib));
    }
    System.out.printf("best of %d: tcp %.0f MiB/s, tls %.0f MiB/s, tls/tcp = %.2f%n",
        rounds, bestTcp, bestTls, bestTls / bestTcp);
  }

  private static double measure(String name, Transport transport, long mib) throws Exception {
    URI uri = URI.create(transport.scheme() + "://127.0.0.1:0");
    long total = mib << 20;
    try (Listener listener = transport.listen(uri);
        Connection client = transport.connect(listener.address(), Duration.ofSeconds(10));
        Connection server = listener.accept(Duration.ofSeconds(10))) {
      ByteBuffer block = ByteBuffer.allocateDirect(BLOCK);
      Random random = new Random(1);
      while (block.hasRemaining()) {
        block.putLong(random.nextLong());
      }
      CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
        try {
          for (long sent = 0; sent < total; sent += BLOCK) {
            block.clear();
            client.write(block);
          }
          client.shutdownOutput();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      ByteBuffer in = ByteBuffer.allocateDirect(BLOCK);
      long start = System.nanoTime();
      long received = 0;
      for (int n; (n = server.read(in.clear())) >= 0; ) {
        received += n;
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      writer.join();
      if (received != total) {
        throw new IllegalStateException(name + ": received " + received + " of " + total);
      }
      double rate = mib / seconds;
      System.out.printf("%s: %d MiB in %.2f s = %.0f MiB/s%n", name, mib, seconds, rate);
      return rate;
    }
  }
}

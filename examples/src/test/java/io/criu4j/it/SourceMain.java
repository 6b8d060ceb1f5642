package io.criu4j.it;

import io.criu4j.MigrationEvent;
import io.criu4j.MigrationPhase;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import io.criu4j.spi.Transport;
import io.criu4j.transport.tcp.TcpTransport;
import io.criu4j.transport.unix.UnixTransport;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The source side of a migration in a JVM of its own, so a test can SIGKILL it at a chosen
 * moment: {@code SourceMain PID AGENT_URI STAGING_DIR [pause=EVENT] [hold=BYTES]
 * [timeout=PHASE:MILLIS]... [pki=DIR] [postCopy]}. Runs one {@link MigrationSession} through a
 * {@link FaultyTransport} over the transport of the agent's address: {@code tcp://},
 * {@code unix://}, or {@code tls://} with the host certificate {@code source} of the
 * {@link Pki} in {@code DIR}, accepting only the agent's certificate ({@code CN=agent}).
 *
 * <p>Prints {@code EVENT <token>} for every migration event ({@code PhaseStarted:TRANSFER},
 * {@code Frozen}, ...); at the event named by {@code pause} it prints {@code PAUSED <token>} and
 * blocks the migration there until a {@code GO} line arrives. With {@code hold}, the connections
 * stall once {@code BYTES} were written through them and {@code HELD} is printed; {@code GO}
 * releases them. A {@code CUT} line closes every connection at once (and fails new ones) and
 * prints {@code CUT <n>}, n the connections that were open; a {@code RESET} line instead resets
 * the TCP connections to the agent in the kernel ({@code ss -K}: this side's sockets fail with
 * {@code ECONNABORTED}, the agent's receive a RST), under whatever runs on them (TLS), fails new
 * ones, and prints {@code RESET <n>}, n the sockets reset. A {@code STALL} line makes every
 * further write hold for good (a {@code GO} after it releases only the pause). Ends with
 * {@code OK <pid>} (the destination pid) or {@code FAILED <message>}, and exits 0. Logs go to
 * standard error.
 */
public final class SourceMain {
  private static volatile boolean stalled;

  private SourceMain() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: SourceMain PID AGENT_URI STAGING_DIR [pause=EVENT] "
          + "[hold=BYTES] [timeout=PHASE:MILLIS]... [pki=DIR]");
      System.exit(2);
    }
    String pause = null;
    long hold = -1;
    Pki pki = null;
    MigrationSession.Builder b = MigrationSession.builder().pid(Integer.parseInt(args[0]))
        .stagingDirectory(Paths.get(args[2]));
    for (int i = 3; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      switch (kv[0]) {
        case "pause" -> pause = kv[1];
        case "hold" -> hold = Long.parseLong(kv[1]);
        case "postCopy" -> b.postCopy(true);
        case "pki" -> pki = Pki.at(Paths.get(kv[1]));
        case "timeout" -> {
          String[] pm = kv[1].split(":");
          b.phaseTimeout(MigrationPhase.valueOf(pm[0]), Duration.ofMillis(Long.parseLong(pm[1])));
        }
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    URI agent = URI.create(args[1]);
    Transport real = switch (agent.getScheme()) {
      case "tcp" -> TcpTransport.create();
      case "unix" -> UnixTransport.create();
      case "tls" -> {
        if (pki == null) {
          throw new IllegalArgumentException("a tls:// agent needs pki=DIR");
        }
        yield pki.transport("source").allowPeers("CN=agent").build();
      }
      default -> throw new IllegalArgumentException("no transport for " + agent);
    };
    FaultyTransport transport = hold >= 0 ? FaultyTransport.holdAfter(real, hold)
        : FaultyTransport.passThrough(real);
    CountDownLatch go = new CountDownLatch(1);
    Thread input = new Thread(() -> {
      try {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in,
            StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
          if (line.equals("GO")) {
            go.countDown();
            if (!stalled) {
              transport.release();
            }
          } else if (line.equals("CUT")) {
            say("CUT " + transport.cutAll());
          } else if (line.equals("RESET")) {
            transport.refuseNew();
            say("RESET " + resetTcp(agent));
          } else if (line.equals("STALL")) {
            stalled = true;
            transport.holdNow();
          }
        }
      } catch (Exception e) {
        e.printStackTrace();
      }
    }, "source-input");
    input.setDaemon(true);
    input.start();
    if (hold >= 0) {
      Thread watch = new Thread(() -> {
        try {
          if (transport.awaitTriggered(Duration.ofMinutes(10))) {
            say("HELD " + transport.bytesWritten());
          }
        } catch (InterruptedException ignored) {
          // exiting
        }
      }, "source-hold-watch");
      watch.setDaemon(true);
      watch.start();
    }
    String pauseAt = pause;
    b.destination(transport, agent).listener(e -> {
      String token = token(e);
      if (token == null) {
        return;
      }
      say("EVENT " + token);
      if (token.equals(pauseAt)) {
        say("PAUSED " + token);
        try {
          go.await();
        } catch (InterruptedException ex) {
          Thread.currentThread().interrupt();
        }
      }
    });
    try (MigrationSession session = b.build()) {
      MigrationReport report = session.migrate();
      say("OK " + report.destinationPid());
    } catch (Exception e) {
      e.printStackTrace();
      say("FAILED " + String.valueOf(e.getMessage()).replace('\n', ' '));
    }
    System.exit(0);
  }

  /**
   * Destroys, in the kernel, every TCP socket of this network namespace connected to the
   * agent's port (the agent's own accepted sockets have it as their local port, so they are
   * spared and see the RST); returns how many were destroyed.
   */
  private static int resetTcp(URI agent) throws Exception {
    Process ss = new ProcessBuilder(List.of("ss", "-K", "-t", "-n", "dst", agent.getHost(),
        "dport", "=", ":" + agent.getPort())).redirectErrorStream(true).start();
    List<String> out = new String(ss.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
        .lines().filter(l -> !l.isBlank()).toList();
    if (!ss.waitFor(10, TimeUnit.SECONDS) || ss.exitValue() != 0) {
      throw new IllegalStateException("ss -K failed: " + out);
    }
    System.err.println("reset by ss -K: " + out);
    // The first line is the header; each destroyed socket is one line after it.
    return (int) out.stream().skip(1).count();
  }

  /** A short name of the event, or null for progress reports. */
  static String token(MigrationEvent e) {
    if (e instanceof MigrationEvent.PhaseStarted p) {
      return "PhaseStarted:" + p.phase();
    } else if (e instanceof MigrationEvent.PhaseFinished p) {
      return "PhaseFinished:" + p.phase();
    } else if (e instanceof MigrationEvent.Frozen) {
      return "Frozen";
    } else if (e instanceof MigrationEvent.Resumed r) {
      return "Resumed:" + (r.onDestination() ? "destination" : "source") + ":" + r.pid();
    }
    return null;
  }

  static synchronized void say(String line) {
    System.out.println(line);
    System.out.flush();
  }
}

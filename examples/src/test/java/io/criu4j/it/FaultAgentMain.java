package io.criu4j.it;

import io.criu4j.MigrationAgent;
import io.criu4j.Notifier;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * A migration agent in a JVM of its own that can stop at a chosen point, so a test can inject a
 * fault there: {@code FaultAgentMain LISTEN_URI DIRECTORY [pause=POINT]
 * [commitTimeout=MILLIS] [restoreTimeout=MILLIS] [pki=DIR]}; a {@code tls://} address needs
 * {@code pki}: the agent presents the host certificate {@code agent} of the {@link Pki} in
 * {@code DIR} and accepts only the source's ({@code CN=source}). POINT is a restore notification
 * ({@code notify:pre-restore}, {@code notify:post-restore}, {@code notify:pre-resume}) or an
 * agent event ({@code event:PhaseStarted:PREFLIGHT}, see {@link SourceMain#token}).
 *
 * <p>Prints {@code LISTENING <uri>} once it accepts sessions, {@code NOTIFY <name>} and
 * {@code EVENT <token>} as they happen, {@code PAUSED <point>} when it stops at the pause point,
 * and continues after a {@code GO} line. The end of its input closes the agent ({@code STOPPED}
 * is printed) and the JVM exits 0. Logs go to standard error.
 */
public final class FaultAgentMain {
  private FaultAgentMain() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: FaultAgentMain LISTEN_URI DIRECTORY [pause=POINT] "
          + "[commitTimeout=MILLIS] [restoreTimeout=MILLIS] [pki=DIR]");
      System.exit(2);
    }
    String pause = "";
    URI listen = URI.create(args[0]);
    MigrationAgent.Builder b = MigrationAgent.builder().directory(Paths.get(args[1]));
    Pki pki = null;
    for (int i = 2; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      switch (kv[0]) {
        case "pause" -> pause = kv[1];
        case "commitTimeout" -> b.commitTimeout(Duration.ofMillis(Long.parseLong(kv[1])));
        case "restoreTimeout" -> b.restoreTimeout(Duration.ofMillis(Long.parseLong(kv[1])));
        case "pki" -> pki = Pki.at(Paths.get(kv[1]));
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (pki != null) {
      b.listen(pki.transport("agent").allowPeers("CN=source").build(), listen);
    } else {
      b.listen(listen);
    }
    CountDownLatch go = new CountDownLatch(1);
    String pauseAt = pause;
    java.util.function.Consumer<String> point = name -> {
      if (name.equals(pauseAt)) {
        SourceMain.say("PAUSED " + name);
        try {
          go.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    };
    b.restoreNotifier(new Notifier() {
      @Override
      public void preRestore() {
        SourceMain.say("NOTIFY pre-restore");
        point.accept("notify:pre-restore");
      }

      @Override
      public void postSetupNamespaces() {
        SourceMain.say("NOTIFY post-setup-namespaces");
        point.accept("notify:post-setup-namespaces");
      }

      @Override
      public void postRestore(int pid) {
        SourceMain.say("NOTIFY post-restore " + pid);
        point.accept("notify:post-restore");
      }

      @Override
      public void preResume() {
        SourceMain.say("NOTIFY pre-resume");
        point.accept("notify:pre-resume");
      }
    });
    b.listener(e -> {
      String token = SourceMain.token(e);
      if (token != null) {
        SourceMain.say("EVENT " + token);
        point.accept("event:" + token);
      }
    });
    MigrationAgent agent;
    try {
      agent = b.start();
    } catch (Exception e) {
      e.printStackTrace();
      System.exit(1);
      return;
    }
    try (agent) {
      SourceMain.say(AgentMain.LISTENING + " " + agent.address());
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in,
          StandardCharsets.UTF_8));
      String line;
      while ((line = in.readLine()) != null) {
        if (line.equals("GO")) {
          go.countDown();
        }
      }
      go.countDown();
    }
    SourceMain.say(AgentMain.STOPPED);
  }
}

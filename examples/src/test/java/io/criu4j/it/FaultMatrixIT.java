package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.internal.image.OwnedDirs;
import io.criu4j.internal.migrate.DestinationAgent;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import java.io.IOException;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Faults injected into real migrations, one per case: at each phase of a migration, the source
 * JVM, the agent JVM, the connection, a CRIU process on either side, or the clock fails, and the
 * case checks what the invariant promises: the payload runs exactly once afterwards (one running
 * copy that keeps counting; never two, never none), and nothing is left behind (no CRIU process,
 * no descendant of a killed JVM, nothing in the session's and agent's directories, no descriptor
 * or child of this JVM, nobody listening at the agent's address).
 *
 * <p>The source ({@link SourceMain}) and the agent ({@link FaultAgentMain}) each run in a JVM of
 * their own, so either can be SIGKILLed; the case stops the side named by the phase at its pause
 * point (an event, a restore notification or a byte count on the image connection), injects the
 * fault, and lets it go on. Every outcome goes to {@code target/fault-matrix.txt}; the cells where
 * criu4j cannot keep the invariant are listed in {@link #KNOWN} with the reason, and documented
 * in {@code docs/faults.md}: such a case asserts its documented outcome, every other case asserts
 * survival with no leak.
 *
 * <p>Every cell runs over plain {@code tcp://}; the faults whose effect depends on the connection
 * ({@link #OTHER_TRANSPORT_CELLS}) run again over {@code tls://} (mutual TLS with certificates
 * from {@code scripts/certs.sh}) and {@code unix://}. A reset there hits the connection itself:
 * over TLS the kernel resets the TCP socket under the TLS session ({@code ss -K}), over Unix the
 * source closes its socket (a Unix connection has no reset of its own).
 */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FaultMatrixIT {
  private static final int MEM_MIB = 12;
  private static final long MIB = 1024 * 1024;
  /** Every source phase timeout; the timeout fault holds its pause this much longer. */
  private static final Duration PHASE_TIMEOUT = Duration.ofSeconds(4);
  private static final Duration AGENT_COMMIT_TIMEOUT = Duration.ofSeconds(4);
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final Path TABLE = Paths.get("target", "fault-matrix.txt");
  /** Each case's source and agent logs go to a directory named after its key in here. */
  private static final Path LOGS = Paths.get("target", "fault-logs");

  /** The moments a fault is injected at, in migration order. */
  enum Phase {
    PREFLIGHT("pre-flight", Side.AGENT, "event:PhaseStarted:PREFLIGHT"),
    PAGE_TRANSFER("page transfer", Side.SOURCE, "hold=" + (4 * MIB)),
    FILE_SHIPPING("file shipping", Side.SOURCE, "pause=PhaseStarted:TRANSFER"),
    POST_DUMP_HOLD("post-dump hold", Side.AGENT, "notify:pre-restore"),
    DURING_RESTORE("during restore", Side.AGENT, "notify:post-setup-namespaces"),
    BEFORE_COMMIT("restored, before commit", Side.AGENT, "event:PhaseStarted:COMMIT"),
    /**
     * Post-copy: the tree runs on the destination and its memory is on the way (the link holds
     * after 4 MiB of it); the original is still frozen at the source.
     */
    POST_COPY("post-copy, copy runs", Side.SOURCE, "hold=" + (4 * MIB));

    final String label;
    final Side pausing;
    final String point;

    Phase(String label, Side pausing, String point) {
      this.label = label;
      this.pausing = pausing;
      this.point = point;
    }
  }

  enum Side { SOURCE, AGENT }

  /** The transport a case migrates over. */
  enum Net {
    TCP("tcp"),
    TLS("tls"),
    UNIX("unix");

    final String scheme;

    Net(String scheme) {
      this.scheme = scheme;
    }
  }

  /**
   * The cells that also run over {@code tls://} and {@code unix://}: those where the connection's
   * own code (its timeouts, its reaction to a reset, a closed peer or a close during a blocked
   * call) decides what the session sees. The others (CRIU killed, a JVM killed before the
   * migration touched the connection, a pause in the source's own phase listener) act the same
   * whatever carries the bytes.
   */
  static final List<String> OTHER_TRANSPORT_CELLS = List.of(
      "PAGE_TRANSFER/RESET", "PAGE_TRANSFER/STALL", "PAGE_TRANSFER/TIMEOUT",
      "POST_DUMP_HOLD/RESET", "POST_DUMP_HOLD/STALL",
      "BEFORE_COMMIT/RESET", "BEFORE_COMMIT/STALL", "BEFORE_COMMIT/KILL_AGENT",
      "POST_COPY/RESET");

  enum Fault {
    KILL_SOURCE("source JVM killed"),
    KILL_AGENT("agent JVM killed"),
    RESET("connection reset"),
    STALL("agent stalled"),
    KILL_CRIU_SOURCE("source CRIU killed"),
    KILL_CRIU_DEST("destination CRIU killed"),
    TIMEOUT("phase timeout");

    final String label;

    Fault(String label) {
      this.label = label;
    }
  }

  /** Outcome of one case: where the payload runs (or why not), and what leaked. */
  record Result(Net net, Phase phase, Fault fault, String outcome, String leaks, String debris,
      String migrate, long millis) {
    boolean survived() {
      return outcome.startsWith("SURVIVED");
    }
  }

  /**
   * Cells whose outcome is not "survived, clean", each with the outcome observed and documented
   * in docs/faults.md. "n/a" marks a fault with nothing to hit at that moment.
   */
  static final Map<String, String> KNOWN = Map.of(
      // No CRIU process outlives the pre-flight messages on either side.
      "PREFLIGHT/KILL_CRIU_SOURCE", "n/a",
      "PREFLIGHT/KILL_CRIU_DEST", "n/a",
      // The destination's page server ends with the page stream, before the files ship.
      "FILE_SHIPPING/KILL_CRIU_DEST", "n/a");

  private static final Map<String, Result> RESULTS = new ConcurrentSkipListMap<>();

  /** Certificates for the TLS cells, made once for all of them; null until the first. */
  private static Path pkiDir;

  /**
   * The cases to run: all, or those whose key matches the regular expression in the system
   * property {@code criu4j.faults} (to repeat one cell). The key is {@code PHASE/FAULT} for the
   * TCP cells and {@code tls:PHASE/FAULT} or {@code unix:PHASE/FAULT} for the others.
   */
  static Stream<Arguments> cases() {
    String only = System.getProperty("criu4j.faults", "");
    List<Arguments> all = new ArrayList<>();
    for (Net n : Net.values()) {
      for (Phase p : Phase.values()) {
        for (Fault f : Fault.values()) {
          if (n != Net.TCP && !OTHER_TRANSPORT_CELLS.contains(key(Net.TCP, p, f))) {
            continue;
          }
          if (!only.isEmpty() && !key(n, p, f).matches(only)) {
            continue;
          }
          all.add(Arguments.of(n == Net.TCP ? "" : n.scheme + ": ", n, p, f));
        }
      }
    }
    return all.stream();
  }

  static String key(Net n, Phase p, Fault f) {
    return (n == Net.TCP ? "" : n.scheme + ":") + p.name() + "/" + f.name();
  }

  @ParameterizedTest(name = "{0}{2} x {3}")
  @MethodSource("cases")
  @DisplayName("a fault at any phase leaves the payload running exactly once and nothing behind")
  void faultLeavesExactlyOneCopyAndNoLeak(String prefix, Net net, Phase phase, Fault fault)
      throws Exception {
    Result r = runCase(net, phase, fault);
    RESULTS.put(String.format(Locale.ROOT, "%d-%02d-%02d", net.ordinal(), phase.ordinal(),
        fault.ordinal()), r);
    System.out.println("[FaultMatrixIT] " + prefix + phase.label + " x " + fault.label + ": "
        + r.outcome() + "; leaks: " + r.leaks() + "; migrate: " + r.migrate() + " ("
        + r.millis() + " ms)");
    String key = key(net, phase, fault);
    String expected = KNOWN.get(key);
    if (expected == null) {
      assertThat(r.outcome()).as("outcome of %s", key).startsWith("SURVIVED");
      assertThat(r.leaks()).as("leaks of %s", key).isEqualTo("none");
    } else {
      assertThat(r.outcome() + (r.leaks().equals("none") ? "" : " LEAK"))
          .as("documented outcome of %s", key).isEqualTo(expected);
    }
  }

  /** The certificate authority and the hosts {@code agent} and {@code source}, made once. */
  private static synchronized Path pki() throws IOException, InterruptedException {
    if (pkiDir == null) {
      Path dir = Files.createTempDirectory("criu4j-fault-pki-");
      Pki.init(dir.resolve("ca")).issue("agent", "127.0.0.1").issue("source", "127.0.0.1");
      pkiDir = dir;
    }
    return pkiDir.resolve("ca");
  }

  @AfterAll
  static void removePki() throws IOException {
    if (pkiDir != null) {
      try (Stream<Path> all = Files.walk(pkiDir)) {
        for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
      pkiDir = null;
    }
  }

  @AfterAll
  static void writeTable() throws IOException {
    if (RESULTS.isEmpty()) {
      return;
    }
    StringBuilder sb = new StringBuilder();
    StringBuilder details = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "%-9s %-24s %-24s %-24s %-5s %-7s %s%n", "transport",
        "phase", "fault", "outcome", "leak", "debris", "ms"));
    int tried = 0;
    int survived = 0;
    int lost = 0;
    int duplicated = 0;
    int leaks = 0;
    int debris = 0;
    for (Result r : RESULTS.values()) {
      sb.append(String.format(Locale.ROOT, "%-9s %-24s %-24s %-24s %-5s %-7s %d%n",
          r.net().scheme, r.phase().label, r.fault().label, r.outcome(),
          r.leaks().equals("none") ? "-" : "LEAK", r.debris().equals("-") ? "-" : "yes",
          r.millis()));
      details.append(String.format(Locale.ROOT, "# %s%s x %s: migrate(): %s%s%s%n",
          r.net() == Net.TCP ? "" : r.net().scheme + ": ", r.phase().label, r.fault().label,
          r.migrate(),
          r.leaks().equals("none") ? "" : "; leaks: " + r.leaks(),
          r.debris().equals("-") ? "" : "; debris of the killed JVM: " + r.debris()));
      if (r.outcome().equals("n/a")) {
        continue;
      }
      tried++;
      if (r.survived()) {
        survived++;
      } else if (r.outcome().startsWith("LOST")) {
        lost++;
      } else if (r.outcome().startsWith("DUPLICATED")) {
        duplicated++;
      }
      if (!r.leaks().equals("none")) {
        leaks++;
      }
      if (!r.debris().equals("-")) {
        debris++;
      }
    }
    sb.append(details);
    sb.append(String.format(Locale.ROOT, "debris: %d case(s) left the directories of the JVM "
        + "they SIGKILLed, each reclaimed by what the next start does (see docs/faults.md)%n",
        debris));
    sb.append(String.format(Locale.ROOT,
        "faults: tried=%d survived=%d lost=%d duplicated=%d leaks=%d%n", tried, survived, lost,
        duplicated, leaks));
    Files.createDirectories(TABLE.getParent());
    Files.writeString(TABLE, sb.toString(), StandardCharsets.UTF_8);
    System.out.print("[FaultMatrixIT] table:\n" + sb);
  }

  // ------------------------------------------------------------------------------ one case

  private Result runCase(Net net, Phase phase, Fault fault) throws Exception {
    Path pki = net == Net.TLS ? pki() : null;
    Path sockets = net == Net.UNIX ? Files.createTempDirectory("criu4j-fault-sock-") : null;
    try {
      return runCase(net, phase, fault, pki, sockets);
    } finally {
      if (sockets != null) {
        // Only a SIGKILLed agent leaves its socket file, counted as debris by then.
        Files.deleteIfExists(sockets.resolve("agent.sock"));
        Files.delete(sockets);
      }
    }
  }

  private Result runCase(Net net, Phase phase, Fault fault, Path pki, Path sockets)
      throws Exception {
    long t0 = System.nanoTime();
    LeakCheck leaks = LeakCheck.begin(Duration.ofSeconds(3));
    Set<Integer> criuSeen = new TreeSet<>();
    List<String> leaked = new ArrayList<>();
    String outcome;
    String migrate = "-";
    String debris = "";
    Path logs = LOGS.resolve(key(net, phase, fault).replaceAll("[^A-Za-z0-9_-]", "_"));
    Files.createDirectories(logs);
    try (TmpfsDir staging = TmpfsDir.create("criu4j-fault-staging-");
        TmpfsDir cache = TmpfsDir.create("criu4j-fault-cache-");
        Payload payload = Payload.builder().memMib(MEM_MIB).intervalMillis(10).start()) {
      // A SIGKILLed JVM cannot remove its own directories: those are checked apart (debris).
      if (fault != Fault.KILL_SOURCE) {
        leaks.watchDirectory(staging.path());
      }
      if (fault != Fault.KILL_AGENT) {
        leaks.watchDirectory(cache.path());
        if (sockets != null) {
          leaks.watchDirectory(sockets);
        }
      }
      Path killedDir = fault == Fault.KILL_SOURCE ? staging.path()
          : fault == Fault.KILL_AGENT ? cache.path() : null;
      payload.awaitCounterAbove(payload.counter() + 2, Duration.ofSeconds(10));

      String listen = switch (net) {
        case TCP -> "tcp://127.0.0.1:0";
        case TLS -> "tls://127.0.0.1:0";
        case UNIX -> "unix://" + sockets.resolve("agent.sock");
      };
      List<String> agentArgs = new ArrayList<>(List.of(listen,
          cache.path().toString(), "commitTimeout=" + AGENT_COMMIT_TIMEOUT.toMillis(),
          "restoreTimeout=10000"));
      if (pki != null) {
        agentArgs.add("pki=" + pki);
      }
      if (phase.pausing == Side.AGENT) {
        agentArgs.add("pause=" + phase.point);
      }
      ChildJvm agent = ChildJvm.start("agent", FaultAgentMain.class, agentArgs,
          logs.resolve("agent.log"));
      String listening = agent.awaitLine(AgentMain.LISTENING + " ", WAIT);
      if (listening == null) {
        agent.kill();
        throw new AssertionError("agent did not start: " + agent.logTail());
      }
      URI address = URI.create(listening.substring(AgentMain.LISTENING.length() + 1).trim());

      List<String> sourceArgs = new ArrayList<>(List.of(String.valueOf(payload.pid()),
          address.toString(), staging.path().toString()));
      for (String ph : List.of("PREFLIGHT", "FINAL_DUMP", "TRANSFER", "RESTORE", "COMMIT",
          "POST_COPY")) {
        sourceArgs.add("timeout=" + ph + ":" + PHASE_TIMEOUT.toMillis());
      }
      if (phase == Phase.POST_COPY) {
        sourceArgs.add("postCopy");
      }
      if (phase.pausing == Side.SOURCE) {
        sourceArgs.add(phase.point);
      }
      if (pki != null) {
        sourceArgs.add("pki=" + pki);
      }
      ChildJvm source = ChildJvm.start("source", SourceMain.class, sourceArgs,
          logs.resolve("source.log"));
      boolean agentStopped = false;
      try {
        ChildJvm pausing = phase.pausing == Side.SOURCE ? source : agent;
        String paused = pausing.awaitLine(phase.point.startsWith("hold=") ? "HELD" : "PAUSED",
            WAIT);
        if (paused == null) {
          throw new AssertionError(phase + ": the " + phase.pausing + " never paused; source "
              + source.seen() + "\n" + source.logTail() + "\nagent " + agent.seen() + "\n"
              + agent.logTail());
        }
        Set<Integer> sourceCriu = criuDescendants(source.pid());
        Set<Integer> agentCriu = criuDescendants(agent.pid());
        criuSeen.addAll(sourceCriu);
        criuSeen.addAll(agentCriu);

        boolean applicable = true;
        String resetNote = "";
        String early = null;
        switch (fault) {
          case KILL_SOURCE -> source.kill();
          case KILL_AGENT -> agent.kill();
          case RESET -> {
            if (net == Net.TCP) {
              source.send("CUT");
            } else {
              // The fault must have hit a connection of the transport under test.
              String word = net == Net.TLS ? "RESET" : "CUT";
              source.send(word);
              String done = source.awaitLine(word + " ", WAIT);
              if (done == null || done.equals(word + " 0")) {
                throw new AssertionError(key(net, phase, fault) + ": nothing to reset ("
                    + done + "); source " + source.seen() + "\n" + source.logTail());
              }
              resetNote = (net == Net.TLS ? "TCP sockets reset under TLS: "
                  : "Unix connections closed: ") + done.substring(word.length() + 1) + "; ";
              // The source may have failed before it reported the reset.
              early = source.seen().stream()
                  .filter(l -> l.startsWith("OK ") || l.startsWith("FAILED ")).findFirst()
                  .orElse(null);
            }
          }
          case STALL -> {
            agent.signal("STOP");
            agentStopped = true;
          }
          case KILL_CRIU_SOURCE -> applicable = killAll(sourceCriu);
          case KILL_CRIU_DEST -> applicable = killAll(agentCriu);
          case TIMEOUT -> {
            if (phase == Phase.FILE_SHIPPING) {
              // The pause is in the PhaseStarted listener, before the phase's timer starts:
              // the link stalls instead, so the transfer itself outlasts its timeout.
              source.send("STALL");
            } else {
              Thread.sleep(PHASE_TIMEOUT.plusSeconds(1).toMillis());
            }
          }
          default -> throw new AssertionError(fault);
        }
        if (!applicable) {
          String tree = describeTree(fault == Fault.KILL_CRIU_SOURCE ? source.pid()
              : agent.pid());
          source.kill();
          agent.kill();
          payload.close();
          return new Result(net, phase, fault, "n/a", "none", "-",
              "no CRIU process on that side: " + tree, (System.nanoTime() - t0) / 1_000_000);
        }
        source.send("GO");
        if (!agentStopped) {
          agent.send("GO");
        }
        if (fault != Fault.KILL_SOURCE) {
          String end = early != null ? early : awaitResult(source);
          migrate = end == null ? "no result (source " + (source.isAlive() ? "hung" : "died")
              + ")" : end;
        } else {
          migrate = "source killed";
        }
        if (agentStopped) {
          agent.signal("CONT");
          agent.send("GO");
          agentStopped = false;
        }
        outcome = settle(payload);
        // The invariant is about the end state, so the sides get their time to finish.
        source.close();
        agent.close();
        migrate = resetNote + shorten(migrate);
      } finally {
        if (agentStopped) {
          agent.signal("CONT");
        }
        source.close();
        agent.close();
      }
      for (int pid : criuSeen) {
        if (Payload.isRunning(pid)) {
          leaked.add("criu " + pid + " (" + LeakCheck.cmdline(pid) + ") outlived its JVM");
        }
      }
      if (fault == Fault.KILL_AGENT && sockets != null) {
        // A SIGKILLed agent cannot remove its socket file; nobody may answer at it, though.
        Path file = sockets.resolve("agent.sock");
        if (Files.exists(file)) {
          try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(file))) {
            leaked.add("something still listens at " + address);
          } catch (IOException refused) {
            debris = file.getFileName().toString();
            Files.delete(file);
          }
        }
      }
      try {
        leaks.assertClean(payload, address);
      } catch (AssertionError e) {
        leaked.add(e.getMessage().replace('\n', ' ').replaceAll(" +", " "));
      }
      if (killedDir != null) {
        String dirs;
        try (Stream<Path> left = Files.list(killedDir)) {
          dirs = left.map(f -> f.getFileName().toString()).sorted()
              .collect(Collectors.joining(","));
        }
        debris = debris.isEmpty() ? dirs : dirs.isEmpty() ? debris : debris + "," + dirs;
        // What the next source or agent does at start: delete what the killed JVM left.
        if (fault == Fault.KILL_SOURCE) {
          OwnedDirs.reclaim(killedDir, "criu4j-proxy-");
        } else {
          DestinationAgent.reclaimLeftovers(killedDir);
        }
        try (Stream<Path> left = Files.list(killedDir)) {
          String stays = left.map(f -> f.getFileName().toString()).sorted()
              .collect(Collectors.joining(","));
          if (!stays.isEmpty()) {
            leaked.add("left by the killed JVM and not reclaimed at the next start: " + stays);
          }
        }
      }
      for (int p : payload.findCopies()) {
        payload.registerRestored(p); // closing kills every copy
      }

    } finally {
      for (int pid : criuSeen) {
        kill(pid); // leave nothing for the next case, after recording it
      }
    }
    return new Result(net, phase, fault, outcome, leaked.isEmpty() ? "none"
        : String.join("; ", leaked), debris.isEmpty() ? "-" : debris, migrate,
        (System.nanoTime() - t0) / 1_000_000);
  }

  private static String awaitResult(ChildJvm source) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      String line = source.awaitLine("", Duration.ofMillis(200));
      if (line == null && !source.isAlive()) {
        return null;
      }
      if (line != null && (line.startsWith("OK ") || line.startsWith("FAILED "))) {
        return line;
      }
    }
    return null;
  }

  private static String shorten(String s) {
    return s.length() > 160 ? s.substring(0, 160) + "..." : s;
  }

  /**
   * Where the payload runs once things have settled: "SURVIVED (source)" or
   * "SURVIVED (destination)" when exactly one copy runs and counts, "DUPLICATED" when two run,
   * "LOST" when none does (or the one left stays stopped).
   */
  private static String settle(Payload payload) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    String last = "LOST";
    while (System.nanoTime() < deadline) {
      List<Integer> roots = RunningCopies.roots(payload);
      List<Integer> running = roots.stream().filter(p -> !stopped(p))
          .collect(Collectors.toList());
      if (running.size() >= 2) {
        // Two copies, both out of CRIU's hands: nothing will end one of them.
        Thread.sleep(500);
        List<Integer> again = RunningCopies.roots(payload).stream().filter(p -> !stopped(p))
            .collect(Collectors.toList());
        if (again.size() >= 2) {
          return "DUPLICATED";
        }
        continue;
      }
      if (running.size() == 1 && roots.size() == 1) {
        long now = payload.counter();
        long until = System.nanoTime() + Duration.ofSeconds(2).toNanos();
        while (payload.counter() <= now + 5 && System.nanoTime() < until) {
          Thread.sleep(20);
        }
        if (payload.counter() > now + 5 && RunningCopies.roots(payload).equals(running)) {
          return "SURVIVED (" + (running.get(0) == payload.pid() ? "source" : "destination")
              + ")";
        }
        last = "LOST (stuck)";
      } else {
        last = roots.isEmpty() ? "LOST" : "LOST (stopped " + roots + ")";
      }
      Thread.sleep(100);
    }
    return last;
  }

  /** Whether the process is stopped (by a signal or a tracer) or gone. */
  private static boolean stopped(int pid) {
    try {
      String stat = Files.readString(Paths.get("/proc", String.valueOf(pid), "stat"));
      char state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state == 'T' || state == 't' || state == 'Z' || state == 'X';
    } catch (IOException gone) {
      return true;
    }
  }

  /** CRIU processes among the descendants of {@code root}. */
  static Set<Integer> criuDescendants(long root) {
    Map<Integer, Integer> parent = new HashMap<>();
    try (Stream<Path> list = Files.list(Paths.get("/proc"))) {
      for (Path p : list.collect(Collectors.toList())) {
        String n = p.getFileName().toString();
        if (!n.chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          String stat = Files.readString(p.resolve("stat"));
          parent.put(Integer.parseInt(n),
              Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1]));
        } catch (IOException | RuntimeException gone) {
          // exited meanwhile
        }
      }
    } catch (IOException e) {
      throw new AssertionError("cannot list /proc", e);
    }
    Set<Integer> found = new TreeSet<>();
    for (int pid : parent.keySet()) {
      int p = pid;
      for (int depth = 0; depth < 64 && p > 1; depth++) {
        Integer pp = parent.get(p);
        if (pp == null) {
          break;
        }
        if (pp == root) {
          if (LeakCheck.isCriuProcess(pid)) {
            found.add(pid);
          }
          break;
        }
        p = pp;
      }
    }
    return found;
  }

  /** Descendants of {@code root} with their command lines, for a case that found no CRIU. */
  private static String describeTree(long root) {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> list = Files.list(Paths.get("/proc"))) {
      for (Path p : list.collect(Collectors.toList())) {
        String n = p.getFileName().toString();
        if (n.chars().allMatch(Character::isDigit)) {
          try {
            String stat = Files.readString(p.resolve("stat"));
            if (stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1].equals(
                String.valueOf(root))) {
              sb.append(n).append(":").append(LeakCheck.cmdline(Integer.parseInt(n)))
                  .append(' ');
            }
          } catch (IOException | RuntimeException gone) {
            // exited
          }
        }
      }
    } catch (IOException e) {
      return "?";
    }
    return "children of " + root + ": " + sb;
  }

  private static boolean killAll(Set<Integer> pids) {
    for (int pid : pids) {
      kill(pid);
    }
    // The fault is "CRIU is dead at this moment": wait until it is (exit takes a moment after
    // SIGKILL). Dying in the very instant of the agent's liveness check is the residual window
    // documented in docs/faults.md, not what this cell measures.
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    for (int pid : pids) {
      while (!isDead(pid) && System.nanoTime() < deadline) {
        try {
          Thread.sleep(5);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return !pids.isEmpty();
        }
      }
    }
    return !pids.isEmpty();
  }

  private static boolean isDead(int pid) {
    try {
      String stat = Files.readString(Paths.get("/proc", Integer.toString(pid), "stat"));
      char state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state == 'Z' || state == 'X';
    } catch (IOException | RuntimeException e) {
      return true; // gone
    }
  }

  private static void kill(int pid) {
    try {
      new ProcessBuilder("kill", "-9", String.valueOf(pid)).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
    } catch (IOException e) {
      throw new AssertionError("cannot run kill", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.testing.Payload;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * What a migration test must not leave behind, checked against a snapshot taken when the test
 * began: descriptors open in this JVM, child processes of this JVM, CRIU processes started since
 * the snapshot that belong to this test, anything under the directories the test handed to the
 * session and the agent, and listening sockets at the agent's address.
 *
 * <p>The machine may run other CRIU work at the same time, so a new CRIU process counts as this
 * test's when it descends from this JVM, or its command line, working directory or open files
 * point into one of the test's directories, or it lives in one of the test's network namespaces.
 * Checks poll for a few seconds, because processes and threads end asynchronously after
 * {@code close()}. Not thread-safe; one per test.
 */
final class LeakCheck {
  private static final long DEFAULT_SETTLE_MILLIS = 10_000;
  private static final long CLOCK_TICKS_PER_SECOND = 100;

  private final long settleMillis;
  private final Map<Integer, String> fdsBefore;
  private final Set<Long> childrenBefore;
  private final long startTicks;
  private final List<Path> dirs = new ArrayList<>();
  private final List<Path> netns = new ArrayList<>();

  private LeakCheck(long settleMillis) {
    this.settleMillis = settleMillis;
    this.fdsBefore = openFds();
    this.childrenBefore = children().keySet();
    this.startTicks = uptimeTicks() - CLOCK_TICKS_PER_SECOND / 10;
  }

  /** Takes the snapshot now: call before the test opens anything. */
  static LeakCheck begin() {
    return new LeakCheck(DEFAULT_SETTLE_MILLIS);
  }

  /** As {@link #begin()}, waiting at most {@code settle} for leaks to go away. */
  static LeakCheck begin(java.time.Duration settle) {
    return new LeakCheck(settle.toMillis());
  }

  /** A directory that must be empty at the end (a staging or cache parent of the test). */
  LeakCheck watchDirectory(Path dir) {
    dirs.add(dir);
    return this;
  }

  /** A network namespace file ({@code /run/netns/NAME}) in which no CRIU may remain. */
  LeakCheck watchNetns(Path file) {
    netns.add(file);
    return this;
  }

  /**
   * Asserts that nothing leaked; the payload's own processes (its {@code unshare} wrapper and
   * copies, which the test still needs) are not counted as leaked children.
   */
  void assertClean(Payload payload, URI... agentAddresses) {
    assertClean(payload.counterFile().toString(), agentAddresses);
  }

  /**
   * Asserts that nothing leaked, not counting child processes whose command line contains
   * {@code payloadMark}.
   */
  void assertClean(String payloadMark, URI... agentAddresses) {
    long deadline = System.nanoTime() + settleMillis * 1_000_000;
    Map<Integer, String> leakedFds;
    Map<Long, String> leakedChildren;
    Map<Integer, String> leakedCriu;
    Map<Path, List<String>> leftovers;
    while (true) {
      leakedFds = new TreeMap<>(openFds());
      leakedFds.entrySet().removeIf(e -> e.getValue().equals(fdsBefore.get(e.getKey())));
      leakedChildren = new TreeMap<>(children());
      leakedChildren.keySet().removeAll(childrenBefore);
      leakedChildren.keySet().removeIf(pid -> cmdline(pid).contains(payloadMark));
      leakedCriu = ourNewCriuProcesses();
      leftovers = new TreeMap<>();
      for (Path dir : dirs) {
        List<String> entries = list(dir);
        if (!entries.isEmpty()) {
          leftovers.put(dir, entries);
        }
      }
      boolean clean = leakedFds.isEmpty() && leakedChildren.isEmpty() && leakedCriu.isEmpty()
          && leftovers.isEmpty() && openFds().size() <= fdsBefore.size();
      if (clean || System.nanoTime() > deadline) {
        break;
      }
      sleep(50);
    }
    assertThat(leakedCriu).as("CRIU processes of this test still running (pid -> cmdline)")
        .isEmpty();
    assertThat(leakedChildren).as("child processes of this JVM left behind (pid -> state name)")
        .isEmpty();
    assertThat(leftovers).as("entries left in the session's and agent's directories").isEmpty();
    assertThat(leakedFds).as("descriptors left open in the test JVM (fd -> target)").isEmpty();
    assertThat(openFds().size()).as("open descriptors in the test JVM, before: %s",
        fdsBefore).isLessThanOrEqualTo(fdsBefore.size());
    for (URI address : agentAddresses) {
      assertNotListening(address);
    }
  }

  /** Asserts that nobody accepts connections at {@code address} any more. */
  static void assertNotListening(URI address) {
    switch (address.getScheme()) {
      case "tcp", "tls" -> {
        try (Socket s = new Socket()) {
          s.connect(new InetSocketAddress(address.getHost(), address.getPort()), 2_000);
          throw new AssertionError("something still listens at " + address);
        } catch (IOException expected) {
          // refused or unreachable: nothing listens
        }
      }
      case "unix" -> {
        Path socket = Paths.get(address.getPath());
        assertThat(socket).as("Unix socket file of the agent").doesNotExist();
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
          throw new AssertionError("something still listens at " + address);
        } catch (IOException expected) {
          // no such socket
        }
      }
      default -> throw new IllegalArgumentException("cannot check " + address);
    }
  }

  /** CRIU processes started after the snapshot that belong to this test (see class comment). */
  private Map<Integer, String> ourNewCriuProcesses() {
    Map<Integer, String> found = new TreeMap<>();
    long self = ProcessHandle.current().pid();
    for (int pid : pids()) {
      String cmd = cmdline(pid);
      if (!isCriuProcess(pid)) {
        continue;
      }
      String[] stat = statFields(pid);
      if (stat == null || Long.parseLong(stat[19]) < startTicks) {
        continue;
      }
      boolean ours = descendsFrom(pid, self) || dirs.stream().anyMatch(d -> refersTo(pid, d))
          || netns.stream().anyMatch(n -> sameNetns(pid, n));
      if (ours) {
        found.put(pid, cmd);
      }
    }
    return found;
  }

  /**
   * Whether process {@code pid} is CRIU: by its command line, or by its executable, since CRIU
   * overwrites its command line while it works (run through the loader of a private prefix,
   * only the loader's path is left of it).
   */
  static boolean isCriuProcess(int pid) {
    if (isCriu(cmdline(pid))) {
      return true;
    }
    String exe = link(Paths.get("/proc", String.valueOf(pid), "exe"));
    return exe.endsWith("/criu") || exe.contains("/criu/");
  }

  /** Whether the command line runs CRIU (directly or through the dynamic loader wrapper). */
  static boolean isCriu(String cmdline) {
    for (String arg : cmdline.split(" ")) {
      if (arg.equals("criu") || arg.endsWith("/criu")) {
        return true;
      }
    }
    return false;
  }

  private static boolean descendsFrom(int pid, long ancestor) {
    long p = pid;
    for (int depth = 0; depth < 64 && p > 1; depth++) {
      String[] stat = statFields(p);
      if (stat == null) {
        return false;
      }
      p = Long.parseLong(stat[1]);
      if (p == ancestor) {
        return true;
      }
    }
    return false;
  }

  private static boolean refersTo(int pid, Path dir) {
    String prefix = dir.toString();
    if (cmdline(pid).contains(prefix)) {
      return true;
    }
    Path proc = Paths.get("/proc", String.valueOf(pid));
    if (link(proc.resolve("cwd")).startsWith(prefix)) {
      return true;
    }
    try (Stream<Path> fds = Files.list(proc.resolve("fd"))) {
      return fds.anyMatch(fd -> link(fd).startsWith(prefix));
    } catch (IOException gone) {
      return false;
    }
  }

  private static boolean sameNetns(int pid, Path netnsFile) {
    try {
      Object a = Files.getAttribute(Paths.get("/proc", String.valueOf(pid), "ns", "net"),
          "unix:ino");
      Object b = Files.getAttribute(netnsFile, "unix:ino");
      return a.equals(b);
    } catch (IOException | UnsupportedOperationException gone) {
      return false;
    }
  }

  /** This JVM's open descriptors, number to target, without JVM noise (jars, JDK files). */
  static Map<Integer, String> openFds() {
    String self = "/proc/" + ProcessHandle.current().pid() + "/fd";
    String javaHome = System.getProperty("java.home");
    Map<Integer, String> fds = new HashMap<>();
    try (Stream<Path> list = Files.list(Path.of("/proc/self/fd"))) {
      for (Path p : list.collect(Collectors.toList())) {
        String target = link(p);
        if (target.isEmpty()) {
          continue; // closed meanwhile, e.g. the directory stream of this very listing
        }
        boolean noise = target.equals(self) || target.endsWith(".jar")
            || target.startsWith(javaHome) || target.equals("/dev/random")
            || target.equals("/dev/urandom");
        if (!noise) {
          fds.put(Integer.parseInt(p.getFileName().toString()), target);
        }
      }
    } catch (IOException e) {
      throw new AssertionError("cannot list /proc/self/fd", e);
    }
    return fds;
  }

  /** Child processes of this JVM, zombies included, as pid to "state name". */
  static Map<Long, String> children() {
    long self = ProcessHandle.current().pid();
    Map<Long, String> children = new HashMap<>();
    for (int pid : pids()) {
      String[] stat = statFields(pid);
      if (stat != null && Long.parseLong(stat[1]) == self) {
        children.put((long) pid, stat[0] + " " + cmdline(pid));
      }
    }
    return children;
  }

  private static List<Integer> pids() {
    try (Stream<Path> list = Files.list(Path.of("/proc"))) {
      return list.map(p -> p.getFileName().toString())
          .filter(n -> n.chars().allMatch(Character::isDigit)).map(Integer::parseInt)
          .collect(Collectors.toList());
    } catch (IOException e) {
      throw new AssertionError("cannot list /proc", e);
    }
  }

  /** Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [19] starttime. */
  private static String[] statFields(long pid) {
    try {
      String stat = Files.readString(Paths.get("/proc", String.valueOf(pid), "stat"));
      return stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
    } catch (IOException | RuntimeException gone) {
      return null;
    }
  }

  static String cmdline(long pid) {
    try (InputStream in = Files.newInputStream(Paths.get("/proc", String.valueOf(pid),
        "cmdline"))) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).replace('\0', ' ').trim();
    } catch (IOException gone) {
      return "";
    }
  }

  private static String link(Path p) {
    try {
      return Files.readSymbolicLink(p).toString();
    } catch (IOException gone) {
      return "";
    }
  }

  private static List<String> list(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
    } catch (IOException e) {
      return List.of("(cannot list: " + e + ")");
    }
  }

  private static long uptimeTicks() {
    try {
      String up = Files.readString(Paths.get("/proc/uptime")).split(" ")[0];
      return (long) (Double.parseDouble(up) * CLOCK_TICKS_PER_SECOND);
    } catch (IOException e) {
      throw new AssertionError("cannot read /proc/uptime", e);
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}

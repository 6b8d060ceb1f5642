package io.criu4j.it;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A second "host" on this machine: a network namespace joined to the test JVM's own namespace
 * (the first host) by a veth pair, each end with an address of a private /30, so the two hosts
 * reach each other over a real IP link and nothing else. Names carry this JVM's pid
 * ({@code c4jit-<pid>-<n>} for the namespace, {@code c4j<pid>x<n>a/b} for the links), so runs in
 * parallel do not collide and {@link #removeLeftovers()} can tell the leftovers of crashed runs
 * (whose JVM is gone) from those of live ones.
 *
 * <p>Programs are started inside with {@code nsenter --net=/run/netns/NAME}, which changes the
 * network namespace only; {@code ip netns exec} would also make a new mount namespace, which
 * CRIU does not accept for the processes it restores there. Needs root and {@code ip}.
 * {@link #close()} deletes the namespace and the links (idempotent). Not thread-safe.
 */
final class NetnsHost implements AutoCloseable {
  private static final String PREFIX = "c4jit-";
  private static final Pattern NETNS = Pattern.compile("^c4jit-(\\d+)-(\\d+)\\b.*");
  private static final Pattern LINK = Pattern.compile("^(c4j(\\d+)x\\d+[ab])\\b.*");
  private static int created;

  private final String name;
  private final String localLink;
  private final String localAddress;
  private final String remoteAddress;
  private boolean closed;

  private NetnsHost(String name, String localLink, String localAddress, String remoteAddress) {
    this.name = name;
    this.localLink = localLink;
    this.localAddress = localAddress;
    this.remoteAddress = remoteAddress;
  }

  /** Creates namespace, veth pair and addresses; on failure removes what it made. */
  static synchronized NetnsHost create() throws IOException {
    long pid = ProcessHandle.current().pid();
    int n = ++created;
    String name = PREFIX + pid + "-" + n;
    String a = "c4j" + pid + "x" + n + "a";
    String b = "c4j" + pid + "x" + n + "b";
    // A /30 out of 10.251.0.0/16 picked from pid and sequence: unlikely to clash with another
    // run, and far from the ranges a test machine's own network uses.
    int block = (int) ((pid * 8 + n) % 16384) * 4;
    String net = "10.251." + (block / 256) + ".";
    String local = net + (block % 256 + 1);
    String remote = net + (block % 256 + 2);
    NetnsHost host = new NetnsHost(name, a, local, remote);
    try {
      run("ip", "netns", "add", name);
      run("ip", "link", "add", a, "type", "veth", "peer", "name", b);
      run("ip", "link", "set", b, "netns", name);
      run("ip", "addr", "add", local + "/30", "dev", a);
      run("ip", "link", "set", a, "up");
      run("ip", "-n", name, "addr", "add", remote + "/30", "dev", b);
      run("ip", "-n", name, "link", "set", b, "up");
      run("ip", "-n", name, "link", "set", "lo", "up");
      return host;
    } catch (IOException | RuntimeException e) {
      host.close();
      throw e;
    }
  }

  /** The namespace's name, as {@code ip netns list} shows it. */
  String name() {
    return name;
  }

  /** The namespace file to pass to {@code nsenter --net=}. */
  Path netnsFile() {
    return Paths.get("/run/netns", name);
  }

  /** The address of this JVM's end of the link. */
  String localAddress() {
    return localAddress;
  }

  /** The address of the namespace's end of the link. */
  String address() {
    return remoteAddress;
  }

  /**
   * Takes the link between the hosts down or up again. Down, packets are dropped without any
   * reset: both ends' connections just stop moving, as in a network partition.
   */
  void setLinkUp(boolean up) throws IOException {
    run("ip", "link", "set", localLink, up ? "up" : "down");
  }

  /** {@code nsenter --net=...} followed by {@code command}: runs it inside the namespace. */
  List<String> inside(List<String> command) {
    List<String> cmd = new ArrayList<>(List.of("nsenter", "--net=" + netnsFile()));
    cmd.addAll(command);
    return cmd;
  }

  /** The inode that identifies the namespace, as {@code /proc/PID/ns/net} of its members. */
  long inode() throws IOException {
    return ((Number) Files.getAttribute(netnsFile(), "unix:ino")).longValue();
  }

  /** The network namespace inode of process {@code pid}. */
  static long netnsInodeOf(int pid) throws IOException {
    return ((Number) Files.getAttribute(Paths.get("/proc", String.valueOf(pid), "ns", "net"),
        "unix:ino")).longValue();
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    // Deleting one end of a veth pair deletes both; the namespace's end also goes with it.
    runQuietly("ip", "link", "del", localLink);
    runQuietly("ip", "netns", "del", name);
  }

  /**
   * Deletes namespaces and links of earlier runs whose JVM no longer exists (a crashed or killed
   * test run cannot clean up after itself).
   */
  static void removeLeftovers() throws IOException {
    for (String line : output("ip", "netns", "list")) {
      Matcher m = NETNS.matcher(line.trim());
      if (m.matches() && !alive(Long.parseLong(m.group(1)))) {
        runQuietly("ip", "netns", "del", line.trim().split("\\s+")[0]);
      }
    }
    for (String line : output("ip", "-o", "link", "show")) {
      String[] parts = line.split(":\\s+", 3);
      if (parts.length < 2) {
        continue;
      }
      Matcher m = LINK.matcher(parts[1].split("@")[0]);
      if (m.matches() && !alive(Long.parseLong(m.group(2)))) {
        runQuietly("ip", "link", "del", m.group(1));
      }
    }
  }

  private static boolean alive(long pid) {
    return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
  }

  @Override
  public String toString() {
    return "netns " + name + " at " + remoteAddress + " (link from " + localAddress + ")";
  }

  private static void run(String... cmd) throws IOException {
    Result r = exec(cmd);
    if (r.code != 0) {
      throw new IOException(String.join(" ", cmd) + " failed (exit " + r.code + "): "
          + r.output.trim());
    }
  }

  private static void runQuietly(String... cmd) {
    try {
      exec(cmd);
    } catch (IOException ignored) {
      // best effort clean-up
    }
  }

  private static List<String> output(String... cmd) throws IOException {
    Result r = exec(cmd);
    if (r.code != 0) {
      throw new IOException(String.join(" ", cmd) + " failed (exit " + r.code + "): "
          + r.output.trim());
    }
    return r.output.lines().toList();
  }

  private record Result(int code, String output) {}

  private static Result exec(String... cmd) throws IOException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    try (var out = p.getInputStream()) {
      String text = new String(out.readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", cmd) + " did not finish in 30 s");
      }
      return new Result(p.exitValue(), text);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new IOException("interrupted running " + String.join(" ", cmd), e);
    } finally {
      p.getOutputStream().close();
      p.getErrorStream().close();
    }
  }
}

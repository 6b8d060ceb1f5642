package io.criu4j.it;

import io.criu4j.MigrationAgent;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;

/**
 * A migration agent in a process of its own, so that it can run in another network namespace
 * ({@code nsenter --net=... java -cp ... io.criu4j.it.AgentMain LISTEN_URI DIR}): the trees it
 * restores then live in that namespace. Prints {@code LISTENING <uri>} once it accepts sessions,
 * serves until its standard input ends, then closes the agent, prints {@code STOPPED} and exits
 * 0. Exits 1 when the agent cannot start. Logs go to standard error.
 */
public final class AgentMain {
  /** First word of the line announcing the bound address. */
  static final String LISTENING = "LISTENING";
  /** The line printed after the agent closed. */
  static final String STOPPED = "STOPPED";

  private AgentMain() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: AgentMain LISTEN_URI DIRECTORY");
      System.exit(2);
    }
    MigrationAgent agent;
    try {
      agent = MigrationAgent.builder().listen(URI.create(args[0]))
          .directory(Paths.get(args[1])).start();
    } catch (Exception e) {
      e.printStackTrace();
      System.exit(1);
      return;
    }
    try (agent) {
      System.out.println(LISTENING + " " + agent.address());
      System.out.flush();
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in,
          StandardCharsets.UTF_8));
      while (in.readLine() != null) {
        // any line is ignored; the end of the input stops the agent
      }
    }
    System.out.println(STOPPED);
    System.out.flush();
  }
}

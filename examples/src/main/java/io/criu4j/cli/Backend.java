package io.criu4j.cli;

import io.criu4j.MigrationAgent;
import io.criu4j.MigrationException;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationReport;
import io.criu4j.MigrationSession;
import java.net.URI;

/**
 * What the commands need from criu4j and the JVM: migration sessions, agents and a hook for
 * Ctrl-C / SIGTERM. {@link #REAL} is the library; the tests plug in a fake, so that parsing and
 * exit codes are checked without root or CRIU.
 */
interface Backend {
  /** One migration attempt. */
  interface Migration extends AutoCloseable {
    MigrationReport migrate() throws MigrationException;

    void cancel();

    @Override
    void close();
  }

  /** A started agent. */
  interface RunningAgent extends AutoCloseable {
    URI address();

    @Override
    void close();
  }

  /** Something to undo; {@link #close()} never throws. */
  interface Registration extends AutoCloseable {
    @Override
    void close();
  }

  Migration open(MigrateSpec spec, MigrationListener listener);

  RunningAgent startAgent(AgentSpec spec, MigrationListener listener) throws MigrationException;

  /**
   * Runs {@code action} when the JVM is asked to stop (Ctrl-C, SIGTERM), and waits for it
   * before the JVM exits; closing the registration withdraws it.
   */
  Registration onShutdown(Runnable action);

  /** criu4j itself, and JVM shutdown hooks. */
  Backend REAL = new Backend() {
    @Override
    public Migration open(MigrateSpec spec, MigrationListener listener) {
      MigrationSession session = spec.toBuilder(listener).build();
      return new Migration() {
        @Override
        public MigrationReport migrate() throws MigrationException {
          return session.migrate();
        }

        @Override
        public void cancel() {
          session.cancel();
        }

        @Override
        public void close() {
          session.close();
        }
      };
    }

    @Override
    public RunningAgent startAgent(AgentSpec spec, MigrationListener listener)
        throws MigrationException {
      MigrationAgent agent = spec.toBuilder(listener).start();
      return new RunningAgent() {
        @Override
        public URI address() {
          return agent.address();
        }

        @Override
        public void close() {
          agent.close();
        }
      };
    }

    @Override
    public Registration onShutdown(Runnable action) {
      Thread hook = new Thread(action, "criu4j-shutdown");
      Runtime.getRuntime().addShutdownHook(hook);
      return () -> {
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
          // the hook runs (or ran) already
        }
      };
    }
  };
}

package io.criu4j.examples;

import java.net.URI;
import java.nio.file.Path;

/** Placeholder until the migration API lands. */
final class Criu4jMigrator implements AutoCloseable {
  static Criu4jMigrator start(Path work) {
    throw new UnsupportedOperationException("criu4j migration not available yet");
  }

  URI address() {
    return null;
  }

  MigrateBench.Run migrate(PayloadProcess payload, Path dir, int mib, int rep) {
    throw new UnsupportedOperationException();
  }

  @Override
  public void close() {}
}

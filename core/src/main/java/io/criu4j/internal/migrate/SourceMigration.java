package io.criu4j.internal.migrate;

import io.criu4j.MigrationException;
import io.criu4j.MigrationReport;

/** The source side of one migration. */
public final class SourceMigration implements AutoCloseable {
  private final SourceSettings settings;

  public SourceMigration(SourceSettings settings) {
    this.settings = settings;
  }

  public SourceSettings settings() {
    return settings;
  }

  public MigrationReport run() throws MigrationException {
    throw new UnsupportedOperationException("not implemented yet");
  }

  public void cancel() {}

  @Override
  public void close() {}
}

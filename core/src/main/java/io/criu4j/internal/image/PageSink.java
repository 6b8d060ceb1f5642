package io.criu4j.internal.image;

import io.criu4j.MigrationException;
import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Where the destination side of a migration ({@code io.criu4j.ImageCache}) sends the page-server
 * byte stream that arrives through the page tunnel: {@link #write} takes the client-to-server
 * bytes exactly as the source CRIU sent them, {@link #read} returns the server's answers (and
 * {@code -1} once the server is gone). Normally a CRIU page server ({@link CriuPageSink}); in
 * tests and benchmarks an in-process fake ({@link InProcessPageSink}).
 *
 * <p>One writing and one reading thread may work at the same time. {@link #close()} is
 * idempotent and never throws; it stops the server if it still runs and wakes blocked calls.
 */
public interface PageSink extends ByteChannel {
  /**
   * Ends the client-to-server direction (the page stream is complete): the server finishes and
   * exits, after which {@link #read} returns {@code -1}.
   */
  void shutdownOutput() throws IOException;

  /**
   * Waits for the server to exit and returns its raw wait status ({@code 0} = success).
   *
   * @throws MigrationException if the wait fails or {@code timeout} passes
   */
  int awaitExit(Duration timeout) throws MigrationException;

  @Override
  void close();

  /** Opens a sink that stores pages into {@code imagesDir}; {@code workDir} takes its logs. */
  @FunctionalInterface
  interface Factory {
    PageSink open(Path imagesDir, Path workDir) throws MigrationException;
  }
}

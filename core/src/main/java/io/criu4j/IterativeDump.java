package io.criu4j;

import io.criu4j.internal.criu.CriuFiles;
import io.criu4j.internal.criu.OptionsMapper;
import io.criu4j.internal.criu.SwrkConnection;
import io.criu4j.internal.rpc.CriuRpc.Options;
import io.criu4j.internal.rpc.CriuRpc.Request;
import io.criu4j.internal.rpc.CriuRpc.RequestType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Pre-dump iterations followed by one final dump, on a single CRIU connection (PRE_DUMP × n,
 * then DUMP), as CRIU requires for dirty-page tracking across iterations. Each iteration writes
 * into its own images directory; later ones usually name the previous one in
 * {@link CriuOptions#parentImages()}.
 *
 * <p>The CRIU child starts with the first call and receives the descriptors named by that call's
 * options (inherited fds, page-server fd); later calls may name only those same descriptors.
 * After {@link #dump} the connection is finished; {@link #close()} without a dump ends the
 * series and leaves the tree running. Idempotent. Not thread-safe.
 *
 * @since 0.1
 */
public final class IterativeDump implements AutoCloseable {
  private final Criu criu;
  private final List<DumpStats> history = new ArrayList<>();
  private SwrkConnection connection;
  private List<Integer> fds;
  private boolean done;

  IterativeDump(Criu criu) {
    this.criu = criu;
  }

  /** Runs one pre-dump into {@code imagesDir}; the tree keeps running. */
  public DumpResult preDump(Path imagesDir, CriuOptions options) throws MigrationException {
    return step(RequestType.PRE_DUMP, imagesDir, options, "pre-dump-" + (history.size() + 1)
        + ".log", null);
  }

  /** Runs the final dump into {@code imagesDir}, with notifications; ends the series. */
  public DumpResult dump(Path imagesDir, CriuOptions options, Notifier notifier)
      throws MigrationException {
    Objects.requireNonNull(notifier, "notifier");
    try {
      return step(RequestType.DUMP, imagesDir, options, "dump.log", Criu.notifyMode(notifier));
    } finally {
      close();
    }
  }

  /** Statistics of the iterations so far, oldest first. */
  public List<DumpStats> history() {
    return List.copyOf(history);
  }

  private DumpResult step(RequestType type, Path imagesDir, CriuOptions options, String logName,
      Notifier notifier) throws MigrationException {
    Objects.requireNonNull(imagesDir, "imagesDir");
    Objects.requireNonNull(options, "options");
    if (done) {
      throw new IllegalStateException("iterative dump already finished");
    }
    OptionsMapper mapper = new OptionsMapper(criu.version());
    try (Criu.Dirs dirs = criu.new Dirs(imagesDir, options)) {
      Options.Builder opts = criu.requestOptions(mapper, options, dirs, logName);
      if (notifier != null) {
        opts.setNotifyScripts(true);
      }
      if (connection == null) {
        fds = mapper.childFds();
        connection = criu.spawn(fds);
      } else if (!fds.equals(mapper.childFds())) {
        throw new IllegalArgumentException("descriptors " + mapper.childFds() + " differ from "
            + fds + " given to the first iteration");
      }
      Path logFile = criu.logPath(imagesDir, options, logName);
      Path statsFile = Criu.freshStatsFile(imagesDir, options);
      try {
        connection.call(Request.newBuilder().setType(type).setOpts(opts).build(), type,
            notifier == null ? null : new NotifyDispatcher(notifier),
            (r, veto) -> criu.failure(type, r, logFile, veto));
      } catch (MigrationException | RuntimeException e) {
        close();
        throw e;
      }
      DumpStats stats = CriuFiles.readDumpStats(statsFile);
      history.add(stats);
      return new DumpResult(imagesDir, stats, logFile);
    }
  }

  @Override
  public void close() {
    done = true;
    if (connection != null) {
      connection.close();
    }
  }
}

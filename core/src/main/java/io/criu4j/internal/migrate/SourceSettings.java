package io.criu4j.internal.migrate;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.ImageProxy;
import io.criu4j.MigrationException;
import io.criu4j.MigrationListener;
import io.criu4j.MigrationPhase;
import io.criu4j.PreCopyPolicy;
import io.criu4j.spi.Transport;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.UUID;

/** Everything a source migration was configured with; immutable. */
public record SourceSettings(int pid, Transport transport, URI destination, Criu criu,
    CriuOptions options, PreCopyPolicy preCopy, Map<MigrationPhase, Duration> timeouts,
    MigrationListener listener, Path stagingParent, UUID sessionId, TestHooks hooks) {

  public SourceSettings {
    timeouts = Map.copyOf(timeouts);
  }

  /** Defaults for the phases not configured. */
  public static Map<MigrationPhase, Duration> timeouts(Map<MigrationPhase, Duration> given,
      PreCopyPolicy preCopy) {
    Map<MigrationPhase, Duration> t = new EnumMap<>(MigrationPhase.class);
    t.put(MigrationPhase.PREFLIGHT, Duration.ofSeconds(60));
    t.put(MigrationPhase.PRE_COPY, preCopy.maxTotal().plus(Duration.ofMinutes(5)));
    t.put(MigrationPhase.FINAL_DUMP, Duration.ofMinutes(5));
    t.put(MigrationPhase.TRANSFER, Duration.ofMinutes(5));
    t.put(MigrationPhase.RESTORE, Duration.ofMinutes(5));
    t.put(MigrationPhase.COMMIT, Duration.ofSeconds(30));
    t.put(MigrationPhase.POST_COPY, Duration.ofMinutes(10));
    t.put(MigrationPhase.CLEANUP, Duration.ofSeconds(30));
    t.putAll(given);
    return t;
  }

  public Duration timeout(MigrationPhase phase) {
    return timeouts.get(phase);
  }

  /**
   * Seams for criu4j's own tests, which run a fake CRIU that writes no page stream: the hook
   * plays CRIU's part on the proxy before it is finished.
   */
  public interface TestHooks {
    TestHooks NONE = new TestHooks() {};

    /** The image size estimate to announce, given the one measured in /proc. */
    default long estimatedBytes(long measured) {
      return measured;
    }

    /**
     * A process of the tree rooted at {@code root} that CRIU no longer holds (traces), or -1;
     * asked just before the commit. A fake CRIU holds nothing, so its tests answer -1.
     */
    default int untracedProcess(int root) {
      return ProcTree.system().firstUntraced(root);
    }

    /**
     * Post-copy: why this host's pipes are too small for CRIU's lazy page server, or null. A
     * test answers for the host, whose {@code fs.pipe-max-size} it does not control.
     */
    default String pipeRefusal() throws MigrationException {
      return PostCopyCheck.hostPipeRefusal();
    }

    /** Called after CPUINFO_DUMP wrote into {@code dir}, before the file is read. */
    default void cpuInfoDumped(Path dir) throws Exception {}

    /** Called when CRIU finished writing a round's images, before the proxy is finished. */
    default void imagesWritten(int round, ImageProxy proxy) throws Exception {}
  }
}

package io.criu4j.examples;

import io.criu4j.Criu;
import io.criu4j.CriuOptions;
import io.criu4j.DumpResult;
import io.criu4j.RestoreResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Checkpoints a running process with criu4j and restores it: starts the counting payload in its
 * own PID namespace, dumps it into tmpfs through {@link Criu#dump}, restores it through
 * {@link Criu#restore}, and shows that the counter carries on from where it stopped. Ends with
 * {@code checkpoint-restore: old_pid=P new_pid=Q counter_before=A counter_after=B}.
 *
 * <p>Kills the payload (original and restored) and removes its directory before it exits, also
 * on failure. Needs root, CRIU >= 4.1, {@code cc} and {@code unshare}; run by
 * {@code scripts/demo.sh}.
 */
@Command(name = "checkpoint-restore-demo", mixinStandardHelpOptions = true,
    description = "Checkpoint a counting process with criu4j, restore it, watch it count on.")
public final class CheckpointRestoreDemo implements Callable<Integer> {
  private static final Logger log = LoggerFactory.getLogger(CheckpointRestoreDemo.class);

  @Option(names = "--dir", description = "work directory, created and removed by the demo "
      + "(default: a new one under /dev/shm)")
  Path dir;

  @Option(names = "--mem-mib", defaultValue = "64",
      description = "memory the payload carries, MiB (default ${DEFAULT-VALUE})")
  int memMib;

  @Option(names = "--payload-dir", defaultValue = "examples/target/payload",
      description = "where the payload binary is compiled to (default ${DEFAULT-VALUE})")
  Path payloadDir;

  public static void main(String[] args) {
    System.exit(new CommandLine(new CheckpointRestoreDemo()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    Path work = dir != null ? Files.createDirectories(dir)
        : Files.createTempDirectory(Paths.get("/dev/shm"), "criu4j-demo-");
    try {
      return run(work);
    } finally {
      CriuOverheadBench.deleteTree(work);
      log.info("removed {}", work);
    }
  }

  private int run(Path work) throws Exception {
    Criu criu = Criu.create();
    log.info("CRIU {} at {}", criu.version(), criu.binary());
    Path binary = PayloadProcess.compile(payloadDir);
    Path images = Files.createDirectory(work.resolve("images"));

    try (PayloadProcess payload = PayloadProcess.start(binary, work, memMib, 100)) {
      int oldPid = payload.pid();
      log.info("payload pid {} started ({} MiB, counting every 100 ms into {})", oldPid, memMib,
          payload.counterFile());
      List<Long> before = watch(payload, 4);
      System.out.println("before checkpoint: counter " + join(before));

      DumpResult dump = criu.dump(images, CriuOptions.builder().pid(oldPid).build());
      long counterBefore = payload.counter();
      log.info("checkpointed pid {} into {}: {} pages written, frozen {} ms; the process is gone "
          + "(running: {})", oldPid, images, dump.stats().pagesWritten(),
          dump.stats().frozenTimeMicros() / 1000, PayloadProcess.isRunning(oldPid));
      Thread.sleep(300);
      System.out.println("after checkpoint:  counter " + payload.counter() + " (stopped)");

      RestoreResult restore = criu.restore(images, CriuOptions.DEFAULTS);
      int newPid = restore.pid();
      log.info("restored as pid {} (running: {})", newPid, PayloadProcess.isRunning(newPid));
      List<Long> after = watch(payload, 4);
      System.out.println("after restore:     counter " + join(after));

      long counterAfter = after.get(after.size() - 1);
      if (!PayloadProcess.isRunning(newPid) || counterAfter <= counterBefore
          || after.stream().anyMatch(v -> v < counterBefore)) {
        System.out.println("checkpoint-restore: FAILED old_pid=" + oldPid + " new_pid=" + newPid
            + " counter_before=" + counterBefore + " counter_after=" + counterAfter);
        return 1;
      }
      System.out.println("checkpoint-restore: old_pid=" + oldPid + " new_pid=" + newPid
          + " counter_before=" + counterBefore + " counter_after=" + counterAfter);
      return 0;
    } finally {
      log.info("payload processes killed");
    }
  }

  /** {@code count} readings of the counter, each after it moved on. */
  private static List<Long> watch(PayloadProcess payload, int count) throws Exception {
    List<Long> values = new ArrayList<>();
    long last = payload.counter();
    for (int i = 0; i < count; i++) {
      Thread.sleep(250);
      last = payload.awaitCounterAbove(last, Duration.ofSeconds(10));
      values.add(last);
    }
    return values;
  }

  private static String join(List<Long> values) {
    StringBuilder sb = new StringBuilder();
    for (long v : values) {
      sb.append(sb.length() == 0 ? "" : " ").append(v);
    }
    return sb.toString();
  }
}

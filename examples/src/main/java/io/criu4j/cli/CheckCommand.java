package io.criu4j.cli;

import io.criu4j.Criu;
import io.criu4j.CriuFeatures;
import io.criu4j.CriuVersion;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code criu4j check}: the pre-flight of one host, what a migration checks before it freezes
 * anything: CRIU found and recent enough, CRIU's own kernel check, the features pre-copy needs,
 * a CPU description dumped and checked against this CPU, and free space in the tmpfs directory
 * that holds images.
 */
@Command(name = "check", mixinStandardHelpOptions = true,
    description = {"Check that this host can take part in migrations: CRIU version and "
        + "kernel check, features, CPU description, tmpfs space.",
        "Exit code 0 if every check passed, 1 if one failed."})
final class CheckCommand implements Callable<Integer> {
  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = {"-d", "--dir"}, defaultValue = "/dev/shm", paramLabel = "DIR",
      description = "the tmpfs directory for images (default ${DEFAULT-VALUE})")
  Path dir;

  @Option(names = "--min-free", paramLabel = "SIZE", converter = Converters.Size.class,
      defaultValue = "0", description = "fail if DIR has less free space, e.g. 2G")
  long minFree;

  private PrintWriter out;
  private int failures;
  private int warnings;

  @Override
  public Integer call() {
    out = spec.commandLine().getOut();
    Path binary = Criu4jCommand.root(spec).criu;
    Criu criu = binary != null ? Criu.builder().binary(binary).build() : Criu.create();

    CriuVersion version = null;
    try {
      Path bin = criu.binary();
      version = criu.version();
      report("criu", "ok", "CRIU " + version + " at " + bin + ", page-server header "
          + version.pageServerHeaderSize() + " bytes");
    } catch (Exception e) {
      fail("criu", e);
    }
    if (version != null) {
      try {
        criu.check();
        report("kernel", "ok", "criu check passed");
      } catch (Exception e) {
        fail("kernel", e);
      }
      try {
        CriuFeatures f = criu.checkFeatures();
        String text = "mem_track=" + yes(f.memTrack()) + " lazy_pages=" + yes(f.lazyPages())
            + " pidfd_store=" + yes(f.pidfdStore());
        if (f.memTrack()) {
          report("features", "ok", text);
        } else {
          report("features", "warning", text + "; without mem_track there is no pre-copy: "
              + "a migration freezes the process for the whole memory transfer");
        }
      } catch (Exception e) {
        fail("features", e);
      }
      checkCpu(criu);
    }
    checkSpace();
    out.printf(Locale.ROOT, "result: %s%n", failures > 0 ? failures + " check(s) failed"
        : warnings > 0 ? "ok, with " + warnings + " warning(s)" : "ok");
    out.flush();
    return failures > 0 ? Criu4jCommand.FAILED : Criu4jCommand.OK;
  }

  private void checkCpu(Criu criu) {
    Path tmp = null;
    try {
      tmp = Files.createTempDirectory(Files.isDirectory(dir) ? dir : Path.of("/tmp"),
          "criu4j-check-");
      criu.dumpCpuInfo(tmp);
      Path img = tmp.resolve("cpuinfo.img");
      String size = Files.exists(img) ? ", cpuinfo.img " + Files.size(img) + " bytes" : "";
      criu.checkCpuInfo(tmp);
      report("cpu", "ok", "CPU description dumped and accepted by this CPU" + size
          + " (a destination checks the source's)");
    } catch (Exception e) {
      fail("cpu", e);
    } finally {
      if (tmp != null) {
        deleteTree(tmp);
      }
    }
  }

  private void checkSpace() {
    try {
      if (!Files.isDirectory(dir)) {
        report("space", "FAILED", dir + " is not a directory");
        failures++;
        return;
      }
      FileStore store = Files.getFileStore(dir);
      long free = store.getUsableSpace();
      String text = dir + " on " + store.type() + ", " + ProgressDisplay.bytes(free) + " free of "
          + ProgressDisplay.bytes(store.getTotalSpace());
      if (free < minFree) {
        report("space", "FAILED", text + ", less than --min-free "
            + ProgressDisplay.bytes(minFree));
        failures++;
      } else if (!"tmpfs".equals(store.type())) {
        report("space", "warning", text + "; not tmpfs: images would go through a disk");
      } else {
        report("space", "ok", text);
      }
    } catch (IOException e) {
      fail("space", e);
    }
  }

  private void report(String what, String status, String text) {
    if (status.equals("warning")) {
      warnings++;
    }
    out.printf(Locale.ROOT, "%-9s %-8s %s%n", what, status, text);
    out.flush();
  }

  private void fail(String what, Exception e) {
    failures++;
    report(what, "FAILED", Criu4jCommand.describe(e));
    if (Criu4jCommand.root(spec).verbose) {
      e.printStackTrace(spec.commandLine().getErr());
    }
  }

  private static String yes(boolean b) {
    return b ? "yes" : "no";
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> walk = Files.walk(root)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException ignored) {
          // best effort: a temporary directory
        }
      });
    } catch (IOException ignored) {
      // already gone
    }
  }
}

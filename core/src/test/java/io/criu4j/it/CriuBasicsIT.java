package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.Criu;
import io.criu4j.CriuException;
import io.criu4j.CriuFeatures;
import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.DumpResult;
import io.criu4j.internal.posix.Native;
import io.criu4j.testing.Payload;
import io.criu4j.testing.RealCriu;
import io.criu4j.testing.TmpfsDir;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** The requests that need no restore: VERSION, FEATURE_CHECK, CHECK, CPUINFO_*, failures. */
@Tag("criu")
@ExtendWith(RealCriu.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CriuBasicsIT {

  @Test
  void versionIsAtLeast41(Criu criu, TestReporter reporter) throws Exception {
    CriuVersion version = criu.version();
    Report.fact(reporter, "criu version", version.toString());

    assertThat(version.isAtLeast(4, 1, 0)).as("CRIU %s >= 4.1", version).isTrue();
    // A fresh client asks again and gets the same answer.
    assertThat(Criu.builder().build().version()).isEqualTo(version);
  }

  @Test
  void featureCheckReportsWhatTheKernelHas(Criu criu, TestReporter reporter) throws Exception {
    CriuFeatures features = criu.checkFeatures();
    Report.fact(reporter, "criu features", features.toString());

    // Development and CI machines (Linux 6.18 without CONFIG_MEM_SOFT_DIRTY) have
    // mem_track=false and lazy_pages=true; userfaultfd is in every kernel CRIU 4.1 supports
    // well, soft-dirty tracking is not, so only lazy_pages is asserted. singlePreDump checks
    // that memTrack tells the truth.
    assertThat(features.lazyPages()).isTrue();
  }

  @Test
  void checkSucceeds(Criu criu) throws Exception {
    criu.check();
  }

  @Test
  void cpuInfoDumpedOnThisHostChecksOnThisHost(Criu criu) throws Exception {
    try (TmpfsDir dir = TmpfsDir.create("criu4j-it-cpuinfo-")) {
      criu.dumpCpuInfo(dir.path());
      assertThat(dir.resolve("cpuinfo.img")).isNotEmptyFile();

      criu.checkCpuInfo(dir.path());
    }
  }

  @Test
  void dumpOfAMissingPidFailsWithEsrch(Criu criu, TestReporter reporter) throws Exception {
    int pid = unusedPid();
    try (TmpfsDir dir = TmpfsDir.create("criu4j-it-images-")) {
      CriuException e = catchThrowableOfType(CriuException.class,
          () -> criu.dump(dir.path(), CriuOptions.builder().pid(pid).build()));

      assertThat(e).as("dump of pid %d", pid).isNotNull();
      Report.fact(reporter, "dump of a missing pid", "cr_errno " + e.errno() + ": " + e);
      assertThat(e.request()).isEqualTo("DUMP");
      assertThat(e.errno()).as(e.getMessage()).isEqualTo(Native.ESRCH);
      assertThat(e.errnoName()).isEqualTo("ESRCH");
      assertThat(e.logFile()).isEqualTo(dir.resolve("dump.log"));
    }
  }

  @Test
  void singlePreDumpWorksOnlyWithDirtyMemoryTracking(Criu criu, TestReporter reporter)
      throws Exception {
    boolean memTrack = criu.checkFeatures().memTrack();
    try (Payload payload = Payload.builder().memMib(8).intervalMillis(10).start();
        TmpfsDir dir = TmpfsDir.create("criu4j-it-predump-")) {
      CriuOptions options = CriuOptions.builder().pid(payload.pid()).build();
      if (memTrack) {
        DumpResult result = criu.preDump(dir.path(), options);
        Report.fact(reporter, "pre-dump", "succeeded: " + result.stats());
        assertThat(result.stats().pagesWritten()).isPositive();
      } else {
        CriuException e = catchThrowableOfType(CriuException.class,
            () -> criu.preDump(dir.path(), options));
        Report.fact(reporter, "pre-dump", "failed: " + e);
        assertThat(e).as("pre-dump without soft-dirty tracking").isNotNull();
        assertThat(e.request()).isEqualTo("SINGLE_PRE_DUMP");
        // CRIU 4.1.1 forces memory tracking for a pre-dump, then its pre-dump worker dies on
        // an assertion (BUG_ON(!kdat.has_dirty_track)); the reply has no cr_errno and the
        // error is only in the log, which the exception carries.
        assertThat(e.getMessage()).containsPattern("(?i)BUG at criu/mem\\.c|track");
        assertThat(e.errno()).as("cr_errno").isZero();
      }
      // Either way the tree keeps running.
      long now = payload.counter();
      payload.awaitCounterAbove(now + 3, Duration.ofSeconds(10));
    }
  }

  /** A pid no process has (walking down from the top of the pid range). */
  private static int unusedPid() throws Exception {
    int max;
    // Not Files.readString: it reads /proc/sys/kernel/pid_max as its first byte only.
    try (var in = Files.newInputStream(Path.of("/proc/sys/kernel/pid_max"))) {
      max = Integer.parseInt(new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim());
    }
    for (int pid = max - 1; pid > 1000; pid--) {
      if (!Files.exists(Path.of("/proc", String.valueOf(pid)))) {
        return pid;
      }
    }
    throw new IllegalStateException("no unused pid below " + max);
  }
}

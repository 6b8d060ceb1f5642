package io.criu4j;

import static io.criu4j.NoLeaks.assertReaped;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.RecordedRequest;
import io.criu4j.testing.RecordingNotifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * What the client sends for each CRIU request type and how it reads the answers, on the happy
 * path. Every request but a page server's first one must leave {@code keep_open} unset: CRIU
 * drops such a request without a reply.
 */
class CriuClientTest extends FakeCriuFixture {
  private static final DumpStats STATS = new DumpStats(1_500, 2_500, 3_500, 4_500, 100, 20, 80, 0);

  @Test
  void versionIsProbedOnceWithABareVersionRequestAndCached() throws Exception {
    fake.version(new CriuVersion(4, 2, 0, 0, "v4.2-7-g1234abc", null));
    fake.enqueue(Script.succeed());

    assertThat(criu.version()).isEqualTo(new CriuVersion(4, 2, 0, 0, "v4.2-7-g1234abc", null));
    assertThat(criu.version().gitId()).isEqualTo("v4.2-7-g1234abc");
    criu.dumpCpuInfo(images);

    RecordedRequest version = fake.takeRequest();
    assertThat(version.type()).isEqualTo("VERSION");
    assertThat(version.hasOptions()).isFalse();
    assertThat(version.keepOpen()).isFalse();
    assertThat(fake.takeRequest().type()).isEqualTo("CPUINFO_DUMP");
    assertThat(fake.pendingRequests()).isZero();
    assertReaped(version.connection().pid());
  }

  @Test
  void checkSendsATemporaryImagesDirectoryAndRemovesItAfterwards() throws Exception {
    fake.enqueue(Script.succeed());

    criu.check();

    RecordedRequest check = fake.takeRequestSkippingVersion();
    assertThat(check.type()).isEqualTo("CHECK");
    assertThat(check.keepOpen()).isFalse();
    assertThat((Integer) check.option("images_dir_fd")).isNotNegative();
    assertThat(check.imagesDir()).as("directory behind images_dir_fd").isNotNull();
    assertThat(check.imagesDir().getFileName().toString()).startsWith("criu4j-check-");
    assertThat(check.imagesDir()).doesNotExist();
    assertThat(check.option("log_file")).isEqualTo("check.log");
    assertReaped(check.connection().pid());
  }

  @Test
  void failedCheckIsACriuExceptionAndStillRemovesItsTemporaryDirectory() throws Exception {
    fake.enqueue(Script.fail(0, "CRIU can't work here")
        .withLog("(00.001) Error (criu/cr-check.c:1): Kernel doesn't support soft-dirty"));

    CriuException e = catchThrowableOfType(CriuException.class, () -> criu.check());

    assertThat(e.request()).isEqualTo("CHECK");
    assertThat(e.criuMessage()).isEqualTo("CRIU can't work here");
    assertThat(e.logTail()).containsExactly(
        "(00.001) Error (criu/cr-check.c:1): Kernel doesn't support soft-dirty");
    assertThat(e.logFile().getFileName().toString()).isEqualTo("check.log");
    assertThat(e.logFile().getParent()).doesNotExist();
    assertThat(fake.takeRequestSkippingVersion().imagesDir()).isEqualTo(e.logFile().getParent());
  }

  @Test
  void featureCheckAsksForEveryFeatureAndReturnsWhatCriuFound() throws Exception {
    fake.features(new CriuFeatures(true, false, true));
    fake.enqueue(Script.succeed());

    assertThat(criu.checkFeatures()).isEqualTo(new CriuFeatures(true, false, true));

    RecordedRequest check = fake.takeRequestSkippingVersion();
    assertThat(check.type()).isEqualTo("FEATURE_CHECK");
    assertThat(check.features())
        .isEqualTo("mem_track: true lazy_pages: true pidfd_store: true");
    assertThat(check.keepOpen()).isFalse();
  }

  @Test
  void featureCheckReportingFailureYetListingFeaturesIsAccepted() throws Exception {
    // CRIU says success=false when a feature is missing, and still lists what it found.
    fake.enqueue(Script.features(new CriuFeatures(false, false, true), false));

    assertThat(criu.checkFeatures()).isEqualTo(new CriuFeatures(false, false, true));
  }

  @Test
  void featureCheckFailureWithoutFeaturesIsACriuException() throws Exception {
    fake.enqueue(Script.fail(56, "Bad request"));

    CriuException e = catchThrowableOfType(CriuException.class, () -> criu.checkFeatures());

    assertThat(e.request()).isEqualTo("FEATURE_CHECK");
    assertThat(e.errnoName()).isEqualTo("EBADRQC");
  }

  @Test
  void cpuInfoDumpAndCheckRunInTheGivenImagesDirectory() throws Exception {
    fake.enqueue(Script.succeed());
    fake.enqueue(Script.succeed());

    criu.dumpCpuInfo(images);
    criu.checkCpuInfo(images);

    RecordedRequest dump = fake.takeRequestSkippingVersion();
    assertThat(dump.type()).isEqualTo("CPUINFO_DUMP");
    assertThat(dump.imagesDir()).isEqualTo(images.toRealPath());
    assertThat(dump.option("log_file")).isEqualTo("cpuinfo-dump.log");
    assertThat(dump.keepOpen()).isFalse();
    RecordedRequest check = fake.takeRequestSkippingVersion();
    assertThat(check.type()).isEqualTo("CPUINFO_CHECK");
    assertThat(check.imagesDir()).isEqualTo(images.toRealPath());
    assertThat(check.option("log_file")).isEqualTo("cpuinfo-check.log");
    assertThat(check.keepOpen()).isFalse();
  }

  @Test
  void dumpSendsItsOptionsAndReturnsTheStatisticsCriuWrote() throws Exception {
    Criu criu = client().logLevel(4).build();
    fake.enqueue(Script.succeed().withStats(STATS));

    DumpResult result = criu.dump(images,
        CriuOptions.builder().pid(4242).leaveRunning(true).tcpEstablished(true).build());

    RecordedRequest dump = fake.takeRequestSkippingVersion();
    assertThat(dump.type()).isEqualTo("DUMP");
    assertThat(dump.option("pid")).isEqualTo(4242);
    assertThat(dump.option("leave_running")).isEqualTo(true);
    assertThat(dump.option("tcp_established")).isEqualTo(true);
    assertThat(dump.imagesDir()).as("directory behind images_dir_fd")
        .isEqualTo(images.toRealPath());
    assertThat(dump.option("log_file")).isEqualTo("dump.log");
    assertThat(dump.option("log_level")).isEqualTo(4);
    assertThat(dump.hasOption("notify_scripts")).as("notify_scripts without a notifier").isFalse();
    assertThat(dump.hasOption("work_dir_fd")).isFalse();
    assertThat(dump.keepOpen()).isFalse();
    assertThat(result).isEqualTo(new DumpResult(images, STATS, images.resolve("dump.log")));
    assertReaped(dump.connection().pid());
  }

  @Test
  void dumpWithAWorkDirectoryReadsStatisticsAndLogFromThere() throws Exception {
    Path work = Files.createDirectory(images.resolve("work"));
    Criu criu = client().logFileName("everything.log").build();
    fake.enqueue(Script.succeed().withStats(STATS));

    DumpResult result = criu.dump(images, CriuOptions.builder().pid(7).workDir(work).build());

    RecordedRequest dump = fake.takeRequestSkippingVersion();
    assertThat(dump.hasOption("work_dir_fd")).isTrue();
    assertThat(dump.option("log_file")).isEqualTo("everything.log");
    assertThat(result.stats()).isEqualTo(STATS);
    assertThat(result.logFile()).isEqualTo(work.resolve("everything.log"));
    assertThat(images.resolve("stats-dump")).doesNotExist();
  }

  @Test
  void statisticsLeftByAnEarlierDumpAreNeverReportedAsThisOnes() throws Exception {
    fake.enqueue(Script.succeed().withStats(STATS));
    criu.dump(images, CriuOptions.builder().pid(7).build());
    fake.enqueue(Script.succeed());

    DumpResult second = criu.dump(images, CriuOptions.builder().pid(7).build());

    assertThat(second.stats()).isEqualTo(DumpStats.NONE);
  }

  @Test
  void dumpWithoutStatisticsReportsNone() throws Exception {
    fake.enqueue(Script.succeed());

    assertThat(criu.dump(images, CriuOptions.builder().pid(7).build()).stats())
        .isEqualTo(DumpStats.NONE);
  }

  @Test
  void singlePreDumpSendsOneSinglePreDumpRequest() throws Exception {
    fake.enqueue(Script.succeed().withStats(STATS));

    DumpResult result = criu.preDump(images,
        CriuOptions.builder().pid(4242).trackMemory(true).build());

    RecordedRequest pre = fake.takeRequestSkippingVersion();
    assertThat(pre.type()).isEqualTo("SINGLE_PRE_DUMP");
    assertThat(pre.option("pid")).isEqualTo(4242);
    assertThat(pre.option("track_mem")).isEqualTo(true);
    assertThat(pre.option("log_file")).isEqualTo("pre-dump.log");
    assertThat(pre.hasOption("notify_scripts")).isFalse();
    assertThat(pre.keepOpen()).isFalse();
    assertThat(result.stats()).isEqualTo(STATS);
  }

  @Test
  void iterativeDumpSendsPreDumpsThenTheDumpToOneCriuProcess() throws Exception {
    DumpStats first = new DumpStats(1, 1, 1, 1, 1000, 0, 1000, 0);
    DumpStats second = new DumpStats(2, 2, 2, 2, 1000, 900, 100, 0);
    DumpStats last = new DumpStats(3, 3, 3, 3, 1000, 990, 10, 0);
    fake.enqueue(Script.succeed().withStats(first));
    fake.enqueue(Script.succeed().withStats(second));
    fake.enqueue(Script.notifying("pre-dump", "post-dump").thenSucceed().withStats(last));
    Path one = Files.createDirectory(images.resolve("1"));
    Path two = Files.createDirectory(images.resolve("2"));
    Path three = Files.createDirectory(images.resolve("3"));
    CriuOptions base = CriuOptions.builder().pid(4242).trackMemory(true).build();
    RecordingNotifier notifier = new RecordingNotifier();

    DumpResult r1;
    DumpResult r2;
    DumpResult r3;
    IterativeDump series = criu.iterativeDump();
    try (series) {
      r1 = series.preDump(one, base);
      r2 = series.preDump(two, base.toBuilder().parentImages("../1").build());
      r3 = series.dump(three, base.toBuilder().parentImages("../2").build(), notifier);
      assertThat(series.history()).containsExactly(first, second, last);
    }

    assertThat(List.of(r1.stats(), r2.stats(), r3.stats())).containsExactly(first, second, last);
    assertThat(notifier.events()).containsExactly("pre-dump", "post-dump");
    RecordedRequest pre1 = fake.takeRequestSkippingVersion();
    RecordedRequest pre2 = fake.takeRequestSkippingVersion();
    RecordedRequest dump = fake.takeRequestSkippingVersion();
    assertThat(List.of(pre1.type(), pre2.type(), dump.type()))
        .containsExactly("PRE_DUMP", "PRE_DUMP", "DUMP");
    assertThat(pre2.connection().pid()).as("one CRIU process for the series")
        .isEqualTo(pre1.connection().pid()).isEqualTo(dump.connection().pid());
    assertThat(pre1.imagesDir()).isEqualTo(one.toRealPath());
    assertThat(pre2.imagesDir()).isEqualTo(two.toRealPath());
    assertThat(dump.imagesDir()).isEqualTo(three.toRealPath());
    assertThat(pre1.hasOption("parent_img")).isFalse();
    assertThat(pre2.option("parent_img")).isEqualTo("../1");
    assertThat(dump.option("parent_img")).isEqualTo("../2");
    assertThat(List.of(pre1.option("log_file"), pre2.option("log_file"), dump.option("log_file")))
        .containsExactly("pre-dump-1.log", "pre-dump-2.log", "dump.log");
    assertThat(pre1.hasOption("notify_scripts")).isFalse();
    assertThat(dump.option("notify_scripts")).isEqualTo(true);
    assertThat(List.of(pre1.keepOpen(), pre2.keepOpen(), dump.keepOpen()))
        .containsOnly(false);
    assertThat(fake.takeRequest().type()).isEqualTo("NOTIFY");
    assertThat(fake.takeRequest().type()).isEqualTo("NOTIFY");
    assertReaped(dump.connection().pid());
    assertThatThrownBy(() -> series.preDump(one, base))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("finished");
  }

  @Test
  void iterativeDumpClosedBeforeItsDumpEndsItsCriuProcess() throws Exception {
    fake.enqueue(Script.succeed());
    IterativeDump series = criu.iterativeDump();

    series.preDump(images, CriuOptions.builder().pid(4242).build());
    series.close();
    series.close();

    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
    assertThatThrownBy(() -> series.dump(images, CriuOptions.DEFAULTS, Notifier.NONE))
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void iterativeDumpRefusesDescriptorsOtherThanThoseOfItsFirstIteration() throws Exception {
    fake.enqueue(Script.succeed());
    try (IterativeDump series = criu.iterativeDump()) {
      series.preDump(images, CriuOptions.builder().pid(4242).build());

      assertThatThrownBy(() -> series.preDump(images, CriuOptions.builder().pid(4242)
          .pageServer(PageServerTarget.fd(0)).build()))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("first iteration");
    }
  }

  @Test
  void restoreReturnsThePidCriuRestored() throws Exception {
    fake.enqueue(Script.restored(4321));

    RestoreResult result = criu.restore(images,
        CriuOptions.builder().restoreSibling(true).shellJob(true).build());

    assertThat(result).isEqualTo(new RestoreResult(4321, images.resolve("restore.log")));
    RecordedRequest restore = fake.takeRequestSkippingVersion();
    assertThat(restore.type()).isEqualTo("RESTORE");
    assertThat(restore.option("rst_sibling")).isEqualTo(true);
    assertThat(restore.option("shell_job")).isEqualTo(true);
    assertThat(restore.imagesDir()).isEqualTo(images.toRealPath());
    assertThat(restore.option("log_file")).isEqualTo("restore.log");
    assertThat(restore.hasOption("notify_scripts")).isFalse();
    assertThat(restore.keepOpen()).isFalse();
  }

  @Test
  void pageServerDaemonReportsItsPidAndPort() throws Exception {
    fake.enqueue(Script.pageServer(5555, 27_000));

    PageServer.Info info = criu.startPageServer(images, CriuOptions.builder()
        .pageServer(PageServerTarget.address("127.0.0.1", 0)).build());

    assertThat(info).isEqualTo(new PageServer.Info(5555, 27_000));
    RecordedRequest start = fake.takeRequestSkippingVersion();
    assertThat(start.type()).isEqualTo("PAGE_SERVER");
    assertThat(start.option("ps")).isEqualTo("address: \"127.0.0.1\" port: 0");
    assertThat(start.imagesDir()).isEqualTo(images.toRealPath());
    assertThat(start.option("log_file")).isEqualTo("page-server.log");
    assertThat(start.keepOpen()).isFalse();
  }

  @Test
  void pageServerWithoutAPortOrDescriptorIsRefused() throws Exception {
    assertThatThrownBy(() -> criu.startPageServer(images, CriuOptions.DEFAULTS))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("pageServer()");
    assertThatThrownBy(() -> criu.startPageServerChild(images, CriuOptions.DEFAULTS))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("pageServer()");
  }

  @Test
  void pageServerChildIsStartedKeptOpenAndReapedThroughWaitPid() throws Exception {
    fake.enqueue(Script.pageServer(0, 27_001)); // pid 0: the fake names itself as the server
    fake.enqueue(Script.waited(0));

    int status;
    int status2;
    int pid;
    try (PageServer server = criu.startPageServerChild(images,
        CriuOptions.builder().pageServer(PageServerTarget.port(27_001)).build())) {
      pid = server.pid();
      assertThat(server.port()).isEqualTo(27_001);
      status = server.awaitExit();
      status2 = server.awaitExit();
    }

    assertThat(status).isZero();
    assertThat(status2).as("cached, no second WAIT_PID").isZero();
    RecordedRequest start = fake.takeRequestSkippingVersion();
    assertThat(start.type()).isEqualTo("PAGE_SERVER_CHLD");
    assertThat(start.keepOpen()).as("keep_open on PAGE_SERVER_CHLD").isTrue();
    assertThat(start.option("ps")).isEqualTo("port: 27001");
    RecordedRequest wait = fake.takeRequest();
    assertThat(wait.type()).isEqualTo("WAIT_PID");
    assertThat(wait.pid()).isEqualTo(pid);
    assertThat(wait.keepOpen()).as("keep_open on WAIT_PID").isFalse();
    assertThat(wait.connection()).isEqualTo(start.connection());
    assertThat(fake.pendingRequests()).isZero();
    assertReaped(start.connection().pid());
  }

  @Test
  void closingAPageServerChildThatStillRunsKillsItAndReapsItThroughCriu() throws Exception {
    Process server = new ProcessBuilder("sleep", "60").inheritIO().start();
    try {
      fake.enqueue(Script.pageServer((int) server.pid(), 27_002));
      fake.enqueue(Script.waited(9));

      criu.startPageServerChild(images,
          CriuOptions.builder().pageServer(PageServerTarget.port(27_002)).build()).close();

      assertThat(server.waitFor(10, TimeUnit.SECONDS)).as("server killed").isTrue();
      assertThat(fake.takeRequestSkippingVersion().type()).isEqualTo("PAGE_SERVER_CHLD");
      RecordedRequest wait = fake.takeRequest();
      assertThat(wait.type()).isEqualTo("WAIT_PID");
      assertThat(wait.pid()).isEqualTo((int) server.pid());
    } finally {
      server.destroyForcibly().waitFor();
    }
  }

  @Test
  void pageServerWhoseWaitFailedIsNotSignalledWhenClosed() throws Exception {
    Process bystander = new ProcessBuilder("sleep", "60").inheritIO().start();
    try {
      fake.enqueue(Script.pageServer((int) bystander.pid(), 0));
      fake.enqueue(Script.fail(10, "waitpid failed"));
      PageServer server = criu.startPageServerChild(images,
          CriuOptions.builder().pageServer(PageServerTarget.port(0)).build());

      CriuException e = catchThrowableOfType(CriuException.class, server::awaitExit);
      server.close();

      assertThat(e.request()).isEqualTo("WAIT_PID");
      assertThat(e.errnoName()).isEqualTo("ECHILD");
      assertThat(bystander.isAlive())
          .as("once CRIU is gone the pid may name another process; it must not be killed")
          .isTrue();
      assertThatThrownBy(server::awaitExit).isInstanceOf(IllegalStateException.class);
    } finally {
      bystander.destroyForcibly().waitFor();
    }
  }
}

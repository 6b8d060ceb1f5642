package io.criu4j;

import static io.criu4j.NoLeaks.assertReaped;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.internal.rpc.CriuRpc.RequestType;
import io.criu4j.internal.rpc.CriuRpc.Response;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.RecordingNotifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;

/**
 * How the client fails: CRIU's error replies, a CRIU that dies, hangs or talks nonsense, a binary
 * that is not CRIU, versions and options that do not fit. Every failure is a
 * {@link MigrationException} (or, for misuse, an unchecked exception) with a message that names
 * the request, and leaves no process or descriptor behind.
 */
class CriuFailureTest extends FakeCriuFixture {
  private static final CriuOptions DUMP = CriuOptions.builder().pid(4242).build();

  @Test
  void errorReplyBecomesACriuExceptionWithErrnoMessageAndLogTail() throws Exception {
    fake.enqueue(Script.fail(3, "No process with pid 4242").withLog(
        "(00.000010) Version: 4.1.1 (gitid 0)",
        "(00.000200) Warn (criu/kerndat.c:1): RLIMIT_NOFILE is too low",
        "(00.001000) Error (criu/cr-dump.c:2100): Can't find pid 4242",
        "(00.001100) Dumping failed (pid: 4242)"));

    CriuException e = catchThrowableOfType(CriuException.class, () -> criu.dump(images, DUMP));

    assertThat(e.request()).isEqualTo("DUMP");
    assertThat(e.criuErrno()).isEqualTo(3);
    assertThat(e.errnoName()).isEqualTo("ESRCH");
    assertThat(e.criuMessage()).isEqualTo("No process with pid 4242");
    assertThat(e.logFile()).isEqualTo(images.resolve("dump.log"));
    assertThat(e.logTail()).as("error lines, without the harmless RLIMIT_NOFILE warning")
        .containsExactly("(00.001000) Error (criu/cr-dump.c:2100): Can't find pid 4242",
            "(00.001100) Dumping failed (pid: 4242)");
    assertThat(e).hasMessageContainingAll("DUMP", "ESRCH", "No process with pid 4242",
        images.resolve("dump.log").toString(), "Can't find pid 4242");
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void theHarmlessRlimitWarningNeverHidesTheRealReason() throws Exception {
    String rlimit = "Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self";
    fake.enqueue(Script.fail(0, rlimit).withLog(
        "(00.000200) " + rlimit,
        "(00.050000) Error (criu/cr-restore.c:2400): Aborting restore due to pre-restore script "
            + "ret code -1",
        "(00.050100) Error (criu/cr-restore.c:2500): Restoring FAILED."));

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.restore(images, CriuOptions.DEFAULTS));

    assertThat(e.criuMessage()).contains("Aborting restore due to pre-restore script");
    assertThat(e.getMessage()).doesNotContain("RLIMIT_NOFILE");
  }

  @Test
  void errorReplyTypedEmptyIsReportedAgainstTheRequestThatWasSent() throws Exception {
    // CRIU answers a request it cannot take ("Invalid req", "Bad req seq") with type EMPTY.
    fake.enqueue(Script.raw(Response.newBuilder().setType(RequestType.EMPTY).setSuccess(false)
        .setCrErrmsg("Invalid req").build().toByteArray()));

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.restore(images, CriuOptions.DEFAULTS));

    assertThat(e.request()).isEqualTo("RESTORE");
    assertThat(e.criuMessage()).isEqualTo("Invalid req");
  }

  @Test
  void disconnectAfterTheRequestIsAProtocolExceptionNamingTheRequestAndTheExit()
      throws Exception {
    fake.enqueue(Script.disconnect());

    Throwable e = catchThrowable(() -> criu.dump(images, DUMP));

    assertThat(e).isInstanceOf(ProtocolException.class)
        .hasMessageContainingAll("DUMP", "closed the connection", "exited with status 0");
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void crashInTheMiddleOfTheNotificationsFailsWithoutHanging() throws Exception {
    fake.enqueue(Script.notifying("pre-dump").thenCrash());
    RecordingNotifier notifier = new RecordingNotifier();

    Throwable e = catchThrowable(() -> criu.dump(images, DUMP, notifier));

    assertThat(e).isInstanceOf(ProtocolException.class)
        .hasMessageContainingAll("DUMP", "killed by signal 9", fake.binary().toString());
    assertThat(notifier.events()).containsExactly("pre-dump");
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void criuThatNeverAnswersIsKilledAfterTheTimeout() throws Exception {
    Criu criu = client().timeout(SHORT_TIMEOUT).build();
    criu.version();
    fake.enqueue(Script.hang());

    long start = System.nanoTime();
    Throwable e = catchThrowable(() -> criu.dump(images, DUMP));
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertThat(e).isExactlyInstanceOf(MigrationException.class)
        .hasMessageContainingAll(fake.binary().toString(), "did not answer DUMP", "PT3S",
            "killed");
    assertThat(millis).isBetween(SHORT_TIMEOUT.toMillis(), SHORT_TIMEOUT.toMillis() + 10_000);
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void undecodableReplyIsAProtocolException() throws Exception {
    fake.enqueue(Script.raw("this is not protobuf".getBytes(StandardCharsets.US_ASCII)));

    Throwable e = catchThrowable(() -> criu.dump(images, DUMP));

    assertThat(e).isInstanceOf(ProtocolException.class).hasMessageContainingAll(
        "expected a criu_resp (DUMP) to DUMP", "20 undecodable bytes", "7468697320");
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void replyOfTheWrongTypeIsAProtocolExceptionNamingExpectedAndActual() throws Exception {
    fake.enqueue(Script.wrongType("RESTORE"));

    Throwable e = catchThrowable(() -> criu.dump(images, DUMP));

    assertThat(e).isInstanceOf(ProtocolException.class)
        .hasMessageContaining("expected a reply of type DUMP to DUMP, got RESTORE");
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void repliesFarLargerThanAPageAreReceivedWhole() throws Exception {
    String message = "x".repeat(150_000);
    fake.enqueue(Script.oversized(150_000));
    fake.enqueue(Script.fail(5, message));

    criu.dumpCpuInfo(images);
    CriuException e = catchThrowableOfType(CriuException.class, () -> criu.dump(images, DUMP));

    assertThat(e.criuMessage()).as("cr_errmsg of a 150 KB reply").isEqualTo(message);
  }

  @Test
  void notificationOutsideNotifyModeIsAProtocolException() throws Exception {
    fake.enqueue(Script.notifying("pre-dump").thenSucceed());

    Throwable e = catchThrowable(() -> criu.dump(images, DUMP));

    assertThat(e).isInstanceOf(ProtocolException.class)
        .hasMessageContainingAll("'pre-dump'", "notify mode is off", "DUMP");
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void binaryThatExitsAtOnceFailsTheVersionProbe() throws Exception {
    Criu notCriu = Criu.builder().binary(Path.of("/bin/true")).timeout(SHORT_TIMEOUT).build();

    Throwable e = catchThrowable(notCriu::version);

    assertThat(e).isInstanceOf(ProtocolException.class)
        .hasMessageContainingAll("VERSION", "exited with status 0");
  }

  @Test
  void binaryThatPrintsSomethingAndExitsFailsWithWhatItPrinted() throws Exception {
    Path script = executable("#!/bin/sh\necho 'criu: unknown command swrk'\nexit 3\n");
    Criu notCriu = Criu.builder().binary(script).timeout(SHORT_TIMEOUT).build();

    Throwable e = catchThrowable(notCriu::version);

    assertThat(e).isInstanceOf(ProtocolException.class).hasMessageContainingAll("VERSION",
        "exited with status 3", "criu: unknown command swrk");
  }

  @Test
  void binaryThatWritesGarbageToTheSocketFailsAsUndecodableAndIsKilled() throws Exception {
    Path script = executable("#!/bin/sh\nprintf 'not criu' >&3\nexec sleep 60\n");
    Criu notCriu = Criu.builder().binary(script).timeout(SHORT_TIMEOUT).build();

    Throwable e = catchThrowable(notCriu::version);

    assertThat(e).isInstanceOf(ProtocolException.class)
        .hasMessageContainingAll("VERSION", "undecodable", script.toString());
  }

  @Test
  void versionOlderThan317IsRefusedNamingBothVersions() throws Exception {
    fake.version(CriuVersion.of(3, 16, 1));

    Throwable e = catchThrowable(() -> criu.dump(images, DUMP));

    assertThat(e).isInstanceOf(MigrationException.class)
        .hasMessageContainingAll("3.16.1", "3.17", fake.binary().toString());
    assertThat(fake.takeRequest().type()).isEqualTo("VERSION");
    assertThat(fake.pendingRequests()).as("no DUMP sent").isZero();
  }

  @Test
  void optionTooNewForTheRunningCriuIsRefusedNamingIt() throws Exception {
    fake.version(CriuVersion.of(3, 18, 0));

    Throwable e = catchThrowable(() -> criu.dump(images,
        DUMP.toBuilder().leaveStopped(true).build()));

    assertThat(e).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContainingAll("leaveStopped", "3.19", "3.18");
    assertThat(fake.takeRequest().type()).isEqualTo("VERSION");
    assertThat(fake.pendingRequests()).as("no DUMP sent").isZero();
  }

  @Test
  void missingImagesDirectoryIsReportedBeforeCriuIsAsked() throws Exception {
    Path missing = images.resolve("missing");

    Throwable e = catchThrowable(() -> criu.dump(missing, DUMP));

    assertThat(e).isInstanceOf(MigrationException.class)
        .hasMessageContainingAll(missing.toString(), "ENOENT");
    assertThat(((MigrationException) e).errnoName()).isEqualTo("ENOENT");
    assertThat(fake.takeRequest().type()).isEqualTo("VERSION");
    assertThat(fake.pendingRequests()).as("no DUMP sent").isZero();
  }

  @Test
  void failedPreDumpEndsTheIterativeDump() throws Exception {
    fake.enqueue(Script.succeed());
    fake.enqueue(Script.fail(3, "No process with pid 4242"));
    IterativeDump series = criu.iterativeDump();

    series.preDump(images, DUMP);
    CriuException e = catchThrowableOfType(CriuException.class,
        () -> series.preDump(images, DUMP));

    assertThat(e.request()).isEqualTo("PRE_DUMP");
    assertThat(e.logFile()).isEqualTo(images.resolve("pre-dump-2.log"));
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
    assertThat(catchThrowable(() -> series.dump(images, DUMP, Notifier.NONE)))
        .isInstanceOf(IllegalStateException.class);
    series.close();
  }

  private Path executable(String script) throws Exception {
    Path file = Files.createTempFile(images, "not-criu-", ".sh");
    Files.writeString(file, script);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
    return file;
  }
}

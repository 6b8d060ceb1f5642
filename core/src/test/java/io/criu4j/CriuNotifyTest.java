package io.criu4j;

import static io.criu4j.NoLeaks.assertReaped;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.Native;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.RecordedRequest;
import io.criu4j.testing.RecordingNotifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** CRIU's notifications ("action scripts") during dump and restore, and the client's answers. */
class CriuNotifyTest extends FakeCriuFixture {
  private static final CriuOptions DUMP = CriuOptions.builder().pid(4242).build();

  @Test
  void dumpNotificationsReachTheNotifierInOrderOnTheCallersThread() throws Exception {
    fake.enqueue(Script.notifying("pre-dump", "network-lock", "query-ext-files", "post-dump",
        "network-unlock", "status-ready").thenSucceed());
    RecordingNotifier notifier = new RecordingNotifier();

    criu.dump(images, DUMP, notifier);

    assertThat(notifier.events()).containsExactly("pre-dump", "network-lock", "query-ext-files",
        "post-dump", "network-unlock", "status-ready");
    assertThat(notifier.threads()).containsOnly(Thread.currentThread());
    RecordedRequest dump = fake.takeRequestSkippingVersion();
    assertThat(dump.type()).isEqualTo("DUMP");
    assertThat(dump.option("notify_scripts")).isEqualTo(true);
    assertThat(dump.keepOpen()).isFalse();
    for (int i = 0; i < 6; i++) {
      RecordedRequest ack = fake.takeRequest();
      assertThat(ack.type()).isEqualTo("NOTIFY");
      assertThat(ack.notifySuccess()).isTrue();
      assertThat(ack.keepOpen()).isFalse();
      assertThat(ack.hasOptions()).as("no externals to add").isFalse();
    }
    assertReaped(dump.connection().pid());
  }

  @Test
  void restoreNotificationsReachTheNotifierInOrderWithTheRestoredPid() throws Exception {
    fake.enqueue(Script.notifying("pre-restore").notify("setup-namespaces", 77)
        .notify("post-setup-namespaces").notify("post-restore", 77).notify("network-unlock")
        .notify("pre-resume").notify("post-resume").thenRestored(77));
    RecordingNotifier notifier = new RecordingNotifier();

    RestoreResult result = criu.restore(images, CriuOptions.DEFAULTS, notifier);

    assertThat(result.pid()).isEqualTo(77);
    assertThat(notifier.events()).containsExactly("pre-restore", "setup-namespaces(77)",
        "post-setup-namespaces", "post-restore(77)", "network-unlock", "pre-resume", "post-resume");
    RecordedRequest restore = fake.takeRequestSkippingVersion();
    assertThat(restore.option("notify_scripts")).isEqualTo(true);
    assertThat(restore.keepOpen()).isFalse();
  }

  @Test
  void notifierNoneAsksCriuForNoNotifications() throws Exception {
    fake.enqueue(Script.succeed());
    fake.enqueue(Script.restored(5));

    criu.dump(images, DUMP, Notifier.NONE);
    criu.restore(images, CriuOptions.DEFAULTS, Notifier.NONE);

    assertThat(fake.takeRequestSkippingVersion().hasOption("notify_scripts")).isFalse();
    assertThat(fake.takeRequestSkippingVersion().hasOption("notify_scripts")).isFalse();
  }

  @Test
  void externalFilesFromTheNotifierAreSentInTheAcknowledgement() throws Exception {
    fake.enqueue(Script.notifying("query-ext-files").thenSucceed());
    Notifier notifier = new Notifier() {
      @Override
      public List<String> queryExternalFiles() {
        return List.of("file[3a:1234]:/data/log", "unix[5678]");
      }
    };

    criu.dump(images, DUMP, notifier);

    fake.takeRequestSkippingVersion();
    RecordedRequest ack = fake.takeRequest();
    assertThat(ack.type()).isEqualTo("NOTIFY");
    assertThat(ack.notifySuccess()).isTrue();
    assertThat(ack.option("external")).isEqualTo(List.of("file[3a:1234]:/data/log", "unix[5678]"));
    assertThat(ack.option("images_dir_fd")).isEqualTo(-1);
  }

  @Test
  void dumpVetoedAtPostDumpReportsFailureWithTheVetoAsCause() throws Exception {
    fake.enqueue(Script.notifying("pre-dump", "post-dump").thenSucceed());
    IllegalStateException veto = new IllegalStateException("destination did not restore");
    RecordingNotifier notifier = new RecordingNotifier() {
      @Override
      public void postDump() {
        throw veto;
      }
    };

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.dump(images, DUMP, notifier));

    assertThat(e.getCause()).isSameAs(veto);
    assertThat(e.request()).isEqualTo("DUMP");
    assertThat(e).hasMessageContaining("DUMP").hasMessageContaining("script error");
    assertThat(e.logFile()).isEqualTo(images.resolve("dump.log"));
    assertThat(notifier.events()).containsExactly("pre-dump");
    RecordedRequest dump = fake.takeRequestSkippingVersion();
    assertThat(fake.takeRequest().notifySuccess()).as("pre-dump acknowledged").isTrue();
    assertThat(fake.takeRequest().notifySuccess()).as("post-dump vetoed").isFalse();
    assertReaped(dump.connection().pid());
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"pre-dump", "network-lock", "query-ext-files"})
  void dumpVetoedAtAnyEarlierPointReportsFailureWithTheVetoAsCause(String point)
      throws Exception {
    fake.enqueue(Script.notifying("pre-dump", "network-lock", "query-ext-files", "post-dump")
        .thenSucceed());
    Exception veto = new Exception("no " + point + " today");
    Notifier notifier = new Notifier() {
      void maybeVeto(String here) throws Exception {
        if (here.equals(point)) {
          throw veto;
        }
      }

      @Override
      public void preDump() throws Exception {
        maybeVeto("pre-dump");
      }

      @Override
      public void networkLock() throws Exception {
        maybeVeto("network-lock");
      }

      @Override
      public List<String> queryExternalFiles() throws Exception {
        maybeVeto("query-ext-files");
        return List.of();
      }
    };

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.dump(images, DUMP, notifier));

    assertThat(e.getCause()).isSameAs(veto);
    assertThat(e.request()).isEqualTo("DUMP");
  }

  @Test
  void restoreVetoedAtPostRestoreReportsFailureWithTheVetoAsCause() throws Exception {
    fake.enqueue(Script.notifying("pre-restore").notify("post-restore", 77).thenRestored(77));
    Exception veto = new Exception("restored tree looks wrong");
    Notifier notifier = new Notifier() {
      @Override
      public void postRestore(int pid) throws Exception {
        throw veto;
      }
    };

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.restore(images, CriuOptions.DEFAULTS, notifier));

    assertThat(e.getCause()).isSameAs(veto);
    assertThat(e.request()).isEqualTo("RESTORE");
    assertThat(e).hasMessageContaining("RESTORE");
  }

  @Test
  void unknownNotificationIsAcknowledgedAndTheOperationSucceeds() throws Exception {
    fake.enqueue(Script.notifying("pre-dump", "brand-new-hook", "post-dump").thenSucceed());
    RecordingNotifier notifier = new RecordingNotifier();

    criu.dump(images, DUMP, notifier);

    assertThat(notifier.events()).containsExactly("pre-dump", "post-dump");
    fake.takeRequestSkippingVersion();
    fake.takeRequest();
    RecordedRequest unknownAck = fake.takeRequest();
    assertThat(unknownAck.type()).isEqualTo("NOTIFY");
    assertThat(unknownAck.notifySuccess()).isTrue();
  }

  @Test
  void orphanPtsMasterHandsTheNotifierAWorkingDescriptor() throws Exception {
    fake.enqueue(Script.notifying().notifyWithFd("orphan-pts-master").thenRestored(88));
    AtomicReference<String> target = new AtomicReference<>();
    List<Object> observed = new ArrayList<>();
    Notifier notifier = new Notifier() {
      @Override
      public void orphanPtsMaster(int fd) throws Exception {
        try (Fd master = Fd.adopt(fd)) { // the notifier owns it
          target.set(Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString());
          observed.add(master.isCloseOnExec());
          Pointer buf = Memory.allocateDirect(Native.runtime(), 16);
          // The fake hands over a pipe's read end and closes its write end: end of file.
          observed.add(Native.check("read", () -> Native.libc().read(fd, buf, 16)));
        }
      }
    };

    RestoreResult result = criu.restore(images,
        CriuOptions.builder().orphanPtsMaster(true).build(), notifier);

    assertThat(result.pid()).isEqualTo(88);
    assertThat(target.get()).startsWith("pipe:[");
    assertThat(observed).as("close-on-exec, then read() at end of file").containsExactly(true, 0L);
    assertThat(fake.takeRequestSkippingVersion().option("orphan_pts_master")).isEqualTo(true);
  }

  @Test
  void descriptorsArrivingWithOtherNotificationsAreClosedByTheClient() throws Exception {
    fake.enqueue(Script.notifying().notifyWithFd("pre-dump").notifyWithFd("brand-new-hook")
        .thenSucceed());

    criu.dump(images, DUMP, new RecordingNotifier());
    // NoLeaks fails the test if either descriptor stayed open.
  }

  @Test
  void notifierBlockingLongerThanTheReplyTimeoutDoesNotTripIt() throws Exception {
    Criu criu = client().timeout(SHORT_TIMEOUT).build();
    fake.enqueue(Script.notifying("post-dump").thenSucceed());
    Notifier notifier = new Notifier() {
      @Override
      public void postDump() throws InterruptedException {
        Thread.sleep(SHORT_TIMEOUT.toMillis() + 1_000); // e.g. waiting for the destination
      }
    };

    long start = System.nanoTime();
    criu.dump(images, DUMP, notifier);

    assertThat((System.nanoTime() - start) / 1_000_000).isGreaterThan(SHORT_TIMEOUT.toMillis());
  }

  @Test
  void errorThrownByTheNotifierKillsCriuAndPropagatesUnchanged() throws Exception {
    fake.enqueue(Script.notifying("pre-dump", "post-dump").thenSucceed());
    Error bug = new Error("bug in the notifier");
    Notifier notifier = new Notifier() {
      @Override
      public void preDump() {
        throw bug;
      }
    };

    Throwable thrown = catchThrowable(() -> criu.dump(images, DUMP, notifier));

    assertThat(thrown).isSameAs(bug);
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }

  @Test
  void interruptedNotifierVetoesAndTheThreadStaysInterrupted() throws Exception {
    fake.enqueue(Script.notifying("pre-dump").thenSucceed());
    Notifier notifier = new Notifier() {
      @Override
      public void preDump() throws InterruptedException {
        throw new InterruptedException("shutting down");
      }
    };

    CriuException e = catchThrowableOfType(CriuException.class,
        () -> criu.dump(images, DUMP, notifier));
    boolean interrupted = Thread.interrupted();

    assertThat(e.getCause()).isInstanceOf(InterruptedException.class);
    assertThat(interrupted).isTrue();
    assertReaped(fake.takeRequestSkippingVersion().connection().pid());
  }
}

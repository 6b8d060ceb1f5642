package io.criu4j.internal.posix;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.MigrationException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link Native} and {@link Errno}: where failed system calls become exceptions. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NativeTest {

  @Test
  void failedCallBecomesAMigrationExceptionWithErrnoItsNameAndText() {
    MigrationException e = catchThrowableOfType(MigrationException.class,
        () -> Native.check("open(/no/such/file)",
            () -> Native.libc().open("/no/such/file", Native.O_CLOEXEC, 0)));

    assertThat(e.errno()).isEqualTo(2);
    assertThat(e.errnoName()).isEqualTo("ENOENT");
    assertThat(e).hasMessage("open(/no/such/file) failed: ENOENT (No such file or directory)");
  }

  @Test
  void successfulCallReturnsItsResultOnce() throws Exception {
    AtomicInteger calls = new AtomicInteger();

    long pid = Native.check("getpid", () -> {
      calls.incrementAndGet();
      return Native.libc().getpid();
    });

    assertThat(pid).isEqualTo(ProcessHandle.current().pid());
    assertThat(calls).hasValue(1);
  }

  @Test
  void callsReturningTheErrorNumberAreCheckedToo() {
    MigrationException e = catchThrowableOfType(MigrationException.class,
        () -> Native.checkReturned("posix_spawn(/x)", 22));

    assertThat(e.errnoName()).isEqualTo("EINVAL");
    assertThat(e).hasMessage("posix_spawn(/x) failed: EINVAL (Invalid argument)");
  }

  @Test
  void errnoNamesAreSymbolicAndUnknownOnesSayWhatTheyAre() {
    assertThat(Errno.name(3)).isEqualTo("ESRCH");
    assertThat(Errno.name(56)).isEqualTo("EBADRQC");
    assertThat(Errno.name(-104)).as("CRIU sometimes negates").isEqualTo("ECONNRESET");
    assertThat(Errno.name(999)).isEqualTo("errno 999");
    assertThat(new MigrationException("no errno").errnoName()).isNull();
  }
}

package io.criu4j.internal.posix;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** {@link Fd}: an owned descriptor whose close happens once. */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FdTest {
  private static boolean isOpen(int fd) {
    return Native.libc().fcntl(fd, Native.F_GETFD, 0) >= 0;
  }

  private static Fd devNull() throws Exception {
    return Fd.adopt((int) Native.check("open(/dev/null)",
        () -> Native.libc().open("/dev/null", Native.O_CLOEXEC, 0)));
  }

  /**
   * /dev/null at the lowest free number from {@code atLeast} on: far above what the JVM's other
   * threads are handed (they get the lowest free numbers), so a number freed up there is not
   * taken by them in between.
   */
  private static Fd devNullFrom(int atLeast) throws Exception {
    try (Fd low = devNull()) {
      return Fd.adopt((int) Native.check("fcntl(F_DUPFD_CLOEXEC)",
          () -> Native.libc().fcntl(low.get(), Native.F_DUPFD_CLOEXEC, atLeast)));
    }
  }

  @Test
  void secondCloseDoesNotCloseTheNumberTheKernelHandedOutAgain() throws Exception {
    Fd first = devNullFrom(900);
    int number = first.get();
    first.close();

    try (Fd reuser = devNullFrom(number)) {
      assertThat(reuser.get()).as("lowest free number is reused").isEqualTo(number);
      first.close();
      assertThat(isOpen(number)).as("still open for its new owner").isTrue();
    }
    assertThat(isOpen(number)).isFalse();
  }

  @Test
  void closedFdRefusesToHandOutItsNumber() throws Exception {
    Fd fd = devNull();
    fd.close();

    assertThat(fd.isOpen()).isFalse();
    assertThat(fd).hasToString("Fd(closed)");
    assertThatThrownBy(fd::get).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(fd::release).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void releaseHandsOwnershipToTheCaller() throws Exception {
    Fd fd = devNull();

    int number = fd.release();
    fd.close();

    assertThat(isOpen(number)).as("not closed by the released Fd").isTrue();
    assertThat(Native.libc().close(number)).isZero();
  }

  @Test
  void duplicateIsCloseOnExecAndAtLeastTheLowestNumberAsked() throws Exception {
    try (Fd original = devNull(); Fd copy = Fd.duplicate(original.get(), 100)) {
      assertThat(copy.get()).isGreaterThanOrEqualTo(100);
      assertThat(copy.isCloseOnExec()).isTrue();
      original.close();
      assertThat(isOpen(copy.get())).as("copy outlives the original").isTrue();
    }
  }

  @Test
  void closeOnExecCanBeSwitched() throws Exception {
    try (Fd fd = devNull()) {
      fd.setCloseOnExec(false);
      assertThat(fd.isCloseOnExec()).isFalse();
      fd.setCloseOnExec(true);
      assertThat(fd.isCloseOnExec()).isTrue();
    }
  }

  @Test
  void negativeNumbersAreRefused() {
    assertThatThrownBy(() -> Fd.adopt(-1)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("-1");
  }

  @Test
  void duplicatingABadDescriptorFailsWithEbadf() {
    assertThatThrownBy(() -> Fd.duplicate(99_999, 3))
        .isInstanceOf(io.criu4j.MigrationException.class)
        .hasMessageContainingAll("fcntl(F_DUPFD_CLOEXEC, 99999)", "EBADF");
  }
}

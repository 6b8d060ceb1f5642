package io.criu4j.internal.posix;

import static io.criu4j.NoLeaks.assertReaped;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.MigrationException;
import io.criu4j.NoLeaks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** {@link ChildProcess}: spawning with exactly the descriptors given, and never a zombie. */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ChildProcessTest {
  private static final Path SH = Path.of("/bin/sh");
  private static final int O_RDONLY = 0;
  private static final int O_WRONLY = 1;

  @TempDir Path dir;

  private static Fd open(Path file, int flags) throws MigrationException {
    return Fd.adopt((int) Native.check("open(" + file + ")",
        () -> Native.libc().open(file.toString(), flags | Native.O_CLOEXEC, 0)));
  }

  @Test
  void childGetsTheGivenDescriptorsFrom3OnItsStdioAndEnvironmentAndNothingElse()
      throws Exception {
    Path a = Files.createFile(dir.resolve("inherited-a"));
    Path b = Files.createFile(dir.resolve("inherited-b"));
    Path stray = Files.createFile(dir.resolve("stray-without-cloexec"));
    Path out = Files.createFile(dir.resolve("out"));
    int strayFd = Native.libc().open(stray.toString(), O_RDONLY, 0); // no O_CLOEXEC
    try (Fd strayOwner = Fd.adopt(strayFd); Fd fdA = open(a, O_RDONLY); Fd fdB = open(b, O_RDONLY);
        Fd devNull = open(Path.of("/dev/null"), O_RDONLY); Fd outFd = open(out, O_WRONLY)) {
      // ls runs as the shell's child and lists the shell's descriptors: exactly those spawned.
      String script = "ls -l /proc/$$/fd; echo \"FOO=$FOO\"";

      try (ChildProcess child = ChildProcess.spawn(SH, List.of("sh", "-c", script),
          Map.of("FOO", "bar baz"), List.of(fdA.get(), fdB.get()), devNull.get(), outFd.get(),
          outFd.get())) {
        assertThat(child.waitFor(10_000)).as("exit status").isZero();
      }
    }

    List<String> output = Files.readAllLines(out);
    // "lr-x------ 1 user group 64 Jan 1 00:00 3 -> /tmp/.../inherited-a" as "3 -> /tmp/..."
    List<String> fds = output.stream().filter(l -> l.contains(" -> "))
        .map(l -> l.replaceAll("^.* (\\d+ -> )", "$1")).collect(Collectors.toList());
    assertThat(fds).as("the child's descriptors").containsExactly("0 -> /dev/null",
        "1 -> " + out.toRealPath(), "2 -> " + out.toRealPath(), "3 -> " + a.toRealPath(),
        "4 -> " + b.toRealPath());
    assertThat(output).contains("FOO=bar baz");
  }

  @Test
  void waitForReportsTheExitStatus() throws Exception {
    try (ChildProcess child = ChildProcess.spawn(SH, List.of("sh", "-c", "exit 3"), Map.of(),
        List.of())) {
      Integer status = child.waitFor(10_000);

      assertThat(status).isNotNull();
      assertThat(ChildProcess.describe(status)).isEqualTo("exited with status 3");
      assertThat(child.pollStatus()).isEqualTo(status);
    }
  }

  @Test
  void waitForGivesUpAfterItsTimeoutAndReturnsNull() throws Exception {
    try (ChildProcess child = ChildProcess.spawn(Path.of("/bin/sleep"), List.of("sleep", "60"),
        Map.of(), List.of())) {
      assertThat(child.waitFor(100)).isNull();
      assertThat(child.pollStatus()).isNull();
    }
  }

  @Test
  void childRunsInAProcessGroupOfItsOwnSoATerminalCtrlCDoesNotReachIt() throws Exception {
    try (ChildProcess child = ChildProcess.spawn(Path.of("/bin/sleep"), List.of("sleep", "60"),
        Map.of(), List.of())) {
      String stat = Files.readString(Path.of("/proc", String.valueOf(child.pid()), "stat"));
      String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      String ours = Files.readString(Path.of("/proc/self/stat"));
      String[] ourFields = ours.substring(ours.lastIndexOf(')') + 2).split(" ");
      assertThat(Integer.parseInt(fields[2])).as("child's process group")
          .isEqualTo(child.pid()).isNotEqualTo(Integer.parseInt(ourFields[2]));
    }
  }

  @Test
  void closeKillsAndReapsARunningChild() throws Exception {
    ChildProcess child = ChildProcess.spawn(Path.of("/bin/sleep"), List.of("sleep", "60"),
        Map.of(), List.of());

    child.close();
    child.close();

    assertReaped(child.pid());
    assertThat(ChildProcess.describe(child.pollStatus())).isEqualTo("killed by signal 9");
  }

  @Test
  void closeReapsEvenOnAnInterruptedThreadAndKeepsTheInterrupt() throws Exception {
    ChildProcess child = ChildProcess.spawn(Path.of("/bin/sleep"), List.of("sleep", "60"),
        Map.of(), List.of());

    Thread.currentThread().interrupt();
    child.close();
    boolean interrupted = Thread.interrupted();

    assertReaped(child.pid());
    assertThat(interrupted).isTrue();
  }

  @Test
  void spawningAMissingExecutableFailsWithEnoentNamingIt() {
    MigrationException e = catchThrowableOfType(MigrationException.class,
        () -> ChildProcess.spawn(dir.resolve("missing"), List.of("missing"), Map.of(),
            List.of()));

    assertThat(e.errnoName()).isEqualTo("ENOENT");
    assertThat(e).hasMessageContaining(dir.resolve("missing").toString());
  }

  @Test
  void waitStatusesAreDescribedReadably() {
    assertThat(ChildProcess.describe(0)).isEqualTo("exited with status 0");
    assertThat(ChildProcess.describe(3 << 8)).isEqualTo("exited with status 3");
    assertThat(ChildProcess.describe(9)).isEqualTo("killed by signal 9");
    assertThat(ChildProcess.describe(0x80 | 11)).isEqualTo("killed by signal 11 (core dumped)");
  }
}

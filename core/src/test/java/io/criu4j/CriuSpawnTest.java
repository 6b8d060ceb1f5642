package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.CriuOptions.InheritedFd;
import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.internal.posix.Fd;
import io.criu4j.internal.posix.Native;
import io.criu4j.testing.FakeCriu;
import io.criu4j.testing.FakeCriu.Script;
import io.criu4j.testing.RecordedRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What a CRIU child inherits from the JVM that spawns it: its socket as fd 3, the descriptors
 * named in the options as fds 4, 5, ..., {@code /dev/null} and a pipe as stdio, and nothing
 * else, not even descriptors the JVM opened without close-on-exec.
 */
class CriuSpawnTest extends FakeCriuFixture {
  private static final int O_RDONLY = 0;

  @Test
  void descriptorOpenedWithoutCloseOnExecIsNotInheritedByCriu() throws Exception {
    Path marker = Files.createTempFile(images, "leaky-marker-", ".txt");
    int fd = Native.libc().open(marker.toString(), O_RDONLY, 0);
    assertThat(fd).isNotNegative();
    try (Fd leaky = Fd.adopt(fd)) {
      assertThat(leaky.isCloseOnExec()).as("precondition: inheritable").isFalse();

      criu.version();

      FakeCriu.Connection child = fake.takeConnection();
      assertThat(child.hadOpen(marker.getFileName().toString())).isFalse();
    }
  }

  @Test
  void criuGetsItsSocketAsFd3AndDevNullAndAPipeAsStdio() throws Exception {
    criu.version();

    FakeCriu.Connection child = fake.takeConnection();
    assertThat(child.argv()).endsWith("swrk", "3");
    assertThat(child.openFds()).anyMatch(f -> f.startsWith("3->socket:["));
    assertThat(child.openFds()).contains("0->/dev/null");
    assertThat(child.openFds()).anyMatch(f -> f.startsWith("1->pipe:["));
    assertThat(child.openFds()).anyMatch(f -> f.startsWith("2->pipe:["));
    assertThat(child.parentPid()).isEqualTo(ProcessHandle.current().pid());
  }

  @Test
  void descriptorsNamedInTheOptionsArriveAsFds4AndUpAndTheRequestNamesThoseNumbers()
      throws Exception {
    Path a = Files.createFile(images.resolve("inherited-a"));
    Path b = Files.createFile(images.resolve("inherited-b"));
    Path ps = Files.createFile(images.resolve("page-server-socket"));
    fake.enqueue(Script.restored(1234));
    try (Fd fdA = open(a); Fd fdB = open(b); Fd fdPs = open(ps)) {
      CriuOptions options = CriuOptions.builder()
          .addInheritedFd(new InheritedFd("pipe:[111]", fdA.get()))
          .addInheritedFd(new InheritedFd("file[3a:222]", fdB.get()))
          .pageServer(PageServerTarget.fd(fdPs.get()))
          .build();

      criu.restore(images, options);

      fake.takeConnection(); // the version probe
      FakeCriu.Connection child = fake.takeConnection();
      assertThat(child.openFds()).contains("4->" + a.toRealPath(), "5->" + b.toRealPath(),
          "6->" + ps.toRealPath());
      RecordedRequest restore = fake.takeRequestSkippingVersion();
      assertThat(restore.option("inherit_fd")).isEqualTo(List.of(
          "key: \"pipe:[111]\" fd: 4", "key: \"file[3a:222]\" fd: 5"));
      assertThat(restore.option("ps")).isEqualTo("fd: 6");
      assertThat(fdA.isOpen()).as("the caller keeps its descriptors").isTrue();
      assertThat(fdA.isCloseOnExec()).isTrue();
    }
  }

  private static Fd open(Path file) throws MigrationException {
    return Fd.adopt((int) Native.check("open(" + file + ")",
        () -> Native.libc().open(file.toString(), O_RDONLY | Native.O_CLOEXEC, 0)));
  }
}

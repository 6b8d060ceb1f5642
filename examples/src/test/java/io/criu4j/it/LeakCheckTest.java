package io.criu4j.it;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.File;
import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

/** The leak check the migration tests end with does catch each kind of leak. */
@EnabledOnOs(OS.LINUX) // reads /proc
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class LeakCheckTest {
  private static final Duration SETTLE = Duration.ofMillis(200);

  @Test
  void nothingOpenedMeansClean(@TempDir Path dir) {
    LeakCheck check = LeakCheck.begin(SETTLE).watchDirectory(dir);
    assertThatCode(() -> check.assertClean("no-payload")).doesNotThrowAnyException();
  }

  @Test
  void catchesADescriptorLeftOpen(@TempDir Path dir) throws Exception {
    LeakCheck check = LeakCheck.begin(SETTLE);
    try (RandomAccessFile leaked = new RandomAccessFile(dir.resolve("f").toFile(), "rw")) {
      assertThatThrownBy(() -> check.assertClean("no-payload"))
          .hasMessageContaining("descriptors left open").hasMessageContaining(dir.toString());
    }
  }

  @Test
  void catchesAnEntryLeftInAWatchedDirectory(@TempDir Path dir) throws Exception {
    LeakCheck check = LeakCheck.begin(SETTLE).watchDirectory(dir);
    Files.createDirectory(dir.resolve("session-1"));
    assertThatThrownBy(() -> check.assertClean("no-payload"))
        .hasMessageContaining("session-1");
  }

  @Test
  void catchesACriuProcessStartedByThisJvm(@TempDir Path dir) throws Exception {
    // A stand-in named criu: the check goes by the command line.
    Path criu = Files.copy(Path.of("/bin/sleep"), dir.resolve("criu"),
        StandardCopyOption.COPY_ATTRIBUTES);
    LeakCheck check = LeakCheck.begin(SETTLE);
    Process p = new ProcessBuilder(criu.toString(), "30")
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
    try {
      assertThatThrownBy(() -> check.assertClean("no-payload"))
          .hasMessageContaining("CRIU processes of this test").hasMessageContaining(criu + " 30");
    } finally {
      p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void catchesAListenerStillListening() throws Exception {
    try (ServerSocket server = new ServerSocket()) {
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      URI address = URI.create("tcp://127.0.0.1:" + server.getLocalPort());
      assertThatThrownBy(() -> LeakCheck.assertNotListening(address))
          .hasMessageContaining("still listens");
      server.close();
      assertThatCode(() -> LeakCheck.assertNotListening(address)).doesNotThrowAnyException();
    }
  }
}

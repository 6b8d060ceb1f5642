package io.criu4j.internal.migrate;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.CriuOptions;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@DisplayName("What post-copy needs on the source")
class PostCopyCheckTest {
  private static final long FOUR_MIB = 4_194_304;
  private static final long CAP_SYS_RESOURCE = 1L << 24;
  /** Every capability but CAP_SYS_RESOURCE, as in a container that drops it. */
  private static final long ALL_BUT_SYS_RESOURCE = 0x1ffffffffffL & ~CAP_SYS_RESOURCE;

  @Test
  void pipesOfFourMebibytesOrMoreAreEnough() {
    assertThat(PostCopyCheck.LAZY_PIPE_BYTES).isEqualTo(FOUR_MIB);
    assertThat(PostCopyCheck.pipeRefusal(FOUR_MIB, 0)).isNull();
    assertThat(PostCopyCheck.pipeRefusal(FOUR_MIB * 16, 0)).isNull();
  }

  @Test
  void capSysResourceLiftsTheLimitWhateverItIs() {
    assertThat(PostCopyCheck.pipeRefusal(4096, CAP_SYS_RESOURCE)).isNull();
    assertThat(PostCopyCheck.pipeRefusal(FOUR_MIB - 1, CAP_SYS_RESOURCE | 1)).isNull();
  }

  @Test
  void aSmallerLimitWithoutTheCapabilityIsRefusedWithTheFix() {
    String refusal = PostCopyCheck.pipeRefusal(1_048_576, ALL_BUT_SYS_RESOURCE);

    assertThat(refusal).isNotNull().contains("/proc/sys/fs/pipe-max-size")
        .contains("1048576").contains("4194304").contains("CAP_SYS_RESOURCE")
        .contains("sysctl fs.pipe-max-size=4194304");
    assertThat(PostCopyCheck.pipeRefusal(FOUR_MIB - 1, 0)).isNotNull().contains("4194303");
  }

  @Test
  void aCriuWithoutLazyPagesIsRefusedBeforeThePipesAreLookedAt() throws Exception {
    AtomicInteger asked = new AtomicInteger();
    SourceSettings.TestHooks hooks = new SourceSettings.TestHooks() {
      @Override
      public String pipeRefusal() {
        asked.incrementAndGet();
        return null;
      }
    };

    assertThat(PostCopyCheck.sourceRefusal(false, hooks)).contains("lazy pages");
    assertThat(asked).hasValue(0);
    assertThat(PostCopyCheck.sourceRefusal(true, hooks)).isNull();
    assertThat(asked).hasValue(1);
  }

  @Test
  void theHostCheckJudgesThisHostsLimitAndThisProcessesCapabilities() throws Exception {
    long limit;
    // In one read: this kernel answers a sysctl file read in pieces with only the first piece.
    try (InputStream in = Files.newInputStream(Paths.get("/proc/sys/fs/pipe-max-size"))) {
      limit = Long.parseLong(new String(in.readNBytes(64), StandardCharsets.US_ASCII).trim());
    }
    long capEff = Files.readAllLines(Paths.get("/proc/self/status")).stream()
        .filter(l -> l.startsWith("CapEff:"))
        .mapToLong(l -> Long.parseUnsignedLong(l.substring(7).trim(), 16)).findFirst()
        .orElseThrow();

    assertThat(PostCopyCheck.hostPipeRefusal()).isEqualTo(PostCopyCheck.pipeRefusal(limit,
        capEff));
    assertThat(SourceSettings.TestHooks.NONE.pipeRefusal())
        .isEqualTo(PostCopyCheck.hostPipeRefusal());
  }

  @Test
  void theLazyPageServersPortIsFreeOnEveryAddress() throws Exception {
    int port = PostCopyCheck.freeTcpPort();

    assertThat(port).isBetween(1, 65535);
    // CRIU binds its lazy page server on all addresses; the source connects over loopback.
    try (ServerSocket any = new ServerSocket()) {
      any.setReuseAddress(true);
      any.bind(new InetSocketAddress(port));
      assertThat(any.getLocalPort()).isEqualTo(port);
    }
    try (ServerSocket loopback = new ServerSocket()) {
      loopback.setReuseAddress(true);
      loopback.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
    }
  }

  @Test
  void theLazyDumpServesOnTheGivenPortAndOnLoopbackOnly(@TempDir Path work) throws Exception {
    CriuOptions given = CriuOptions.builder().pid(42).workDir(work).tcpEstablished(true).build();

    CriuOptions lazy = PostCopyCheck.lazyDumpOptions(given, 40123, "test");

    assertThat(lazy.pageServer().port()).isEqualTo(40123);
    assertThat(lazy.pageServer().hasFd()).isFalse();
    assertThat(lazy.tcpEstablished()).isTrue();
    // CRIU reads its configuration file after the RPC options, which ignore the address.
    assertThat(Paths.get(lazy.configFile())).hasParent(work);
    assertThat(Files.readString(Paths.get(lazy.configFile()))).isEqualTo("address 127.0.0.1\n");
  }

  @Test
  void aConfigurationFileOfTheCallerIsKept(@TempDir Path work) throws Exception {
    CriuOptions given = CriuOptions.builder().pid(42).workDir(work).configFile("/etc/mine.conf")
        .build();

    CriuOptions lazy = PostCopyCheck.lazyDumpOptions(given, 40123, "test");

    assertThat(lazy.configFile()).isEqualTo("/etc/mine.conf");
    assertThat(lazy.pageServer().port()).isEqualTo(40123);
    try (var files = Files.list(work)) {
      assertThat(files).isEmpty();
    }
  }
}

package io.criu4j.internal.criu;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.DumpStats;
import io.criu4j.internal.rpc.CriuStats.DumpStatsEntry;
import io.criu4j.internal.rpc.CriuStats.StatsEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link CriuFiles}: reading CRIU's {@code stats-dump} and the tail of its log. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CriuFilesTest {
  private static final int SERVICE_MAGIC = 0x55105940;
  private static final int STATS_MAGIC = 0x57093306;

  @TempDir Path dir;

  private static byte[] statsFile(int serviceMagic, int statsMagic, byte[] entry, int size) {
    ByteBuffer buf = ByteBuffer.allocate(12 + entry.length).order(ByteOrder.LITTLE_ENDIAN);
    return buf.putInt(serviceMagic).putInt(statsMagic).putInt(size).put(entry).array();
  }

  private static byte[] entry() {
    return StatsEntry.newBuilder().setDump(DumpStatsEntry.newBuilder()
        .setFreezingTime(0xfffffff0) // u32 above 2^31: must come out unsigned
        .setFrozenTime(2_000).setMemdumpTime(3_000).setMemwriteTime(4_000)
        .setPagesScanned(1L << 40).setPagesSkippedParent(6).setPagesWritten(7)
        .setPagesLazy(8).setIrmapResolve(9)).build().toByteArray();
  }

  @Test
  void readsTheDumpStatisticsCriuWrites() throws Exception {
    Path file = Files.write(dir.resolve("stats-dump"),
        statsFile(SERVICE_MAGIC, STATS_MAGIC, entry(), entry().length));

    assertThat(CriuFiles.readDumpStats(file))
        .isEqualTo(new DumpStats(0xfffffff0L, 2_000, 3_000, 4_000, 1L << 40, 6, 7, 8));
  }

  @Test
  void missingOrDamagedStatisticsReadAsNone() throws Exception {
    byte[] good = statsFile(SERVICE_MAGIC, STATS_MAGIC, entry(), entry().length);
    List<byte[]> damaged = List.of(
        new byte[0],
        Arrays.copyOf(good, 10),
        statsFile(0x54564319, STATS_MAGIC, entry(), entry().length),
        statsFile(SERVICE_MAGIC, 0x12345678, entry(), entry().length),
        statsFile(SERVICE_MAGIC, STATS_MAGIC, entry(), entry().length + 1),
        statsFile(SERVICE_MAGIC, STATS_MAGIC, entry(), -1),
        statsFile(SERVICE_MAGIC, STATS_MAGIC, new byte[] {(byte) 0xff, (byte) 0xff}, 2));

    assertThat(CriuFiles.readDumpStats(dir.resolve("none"))).isEqualTo(DumpStats.NONE);
    assertThat(CriuFiles.readDumpStats(dir)).as("a directory").isEqualTo(DumpStats.NONE);
    for (int i = 0; i < damaged.size(); i++) {
      Path file = Files.write(dir.resolve("stats-" + i), damaged.get(i));
      assertThat(CriuFiles.readDumpStats(file)).as("case %d", i).isEqualTo(DumpStats.NONE);
    }
  }

  @Test
  void logTailIsTheLastErrorLinesWithoutTheRlimitWarning() throws Exception {
    Path log = Files.write(dir.resolve("dump.log"), List.of(
        "(00.000010) Version: 4.1.1",
        "(00.000100) Warn (criu/kerndat.c:1): RLIMIT_NOFILE 1024 is too low",
        "(00.000200) Warn (criu/net.c:3): Unable to get tun device",
        "(00.000300) Collecting tasks",
        "(00.001000) Error (criu/cr-dump.c:2100): Can't find pid 4242",
        "(00.001100) Dumping failed (pid: 4242)",
        "(00.001200) Unlocking network"));

    assertThat(CriuFiles.logTail(log)).containsExactly(
        "(00.000200) Warn (criu/net.c:3): Unable to get tun device",
        "(00.001000) Error (criu/cr-dump.c:2100): Can't find pid 4242",
        "(00.001100) Dumping failed (pid: 4242)");
  }

  @Test
  void logTailKeepsAtMostTheLastTenErrorLines() throws Exception {
    List<String> lines = new ArrayList<>();
    IntStream.range(0, 25).forEach(i -> lines.add("Error " + i));
    Path log = Files.write(dir.resolve("dump.log"), lines);

    assertThat(CriuFiles.logTail(log)).hasSize(10).startsWith("Error 15").endsWith("Error 24");
  }

  @Test
  void logWithoutErrorLinesYieldsItsLastTenLines() throws Exception {
    List<String> lines = new ArrayList<>();
    IntStream.range(0, 25).forEach(i -> lines.add("line " + i));
    Path log = Files.write(dir.resolve("dump.log"), lines);

    assertThat(CriuFiles.logTail(log)).hasSize(10).startsWith("line 15").endsWith("line 24");
    Path shortLog = Files.write(dir.resolve("short.log"), List.of("only line"));
    assertThat(CriuFiles.logTail(shortLog)).containsExactly("only line");
  }

  @Test
  void missingLogYieldsNoLines() {
    assertThat(CriuFiles.logTail(dir.resolve("none.log"))).isEmpty();
    assertThat(CriuFiles.logTail(null)).isEmpty();
    assertThat(CriuFiles.logTail(dir)).isEmpty();
  }

  @Test
  void logWithBytesThatAreNotUtf8IsStillRead() throws Exception {
    Path log = Files.write(dir.resolve("dump.log"),
        new byte[] {'E', 'r', 'r', 'o', 'r', ' ', (byte) 0xff, (byte) 0xfe, '\n'});

    assertThat(CriuFiles.logTail(log)).hasSize(1).allMatch(l -> l.startsWith("Error "));
  }
}

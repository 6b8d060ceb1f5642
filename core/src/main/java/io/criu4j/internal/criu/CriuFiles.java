package io.criu4j.internal.criu;

import io.criu4j.DumpStats;
import io.criu4j.internal.rpc.CriuStats.DumpStatsEntry;
import io.criu4j.internal.rpc.CriuStats.StatsEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.regex.Pattern;

/** Reads what CRIU leaves in its work directory: statistics and log lines. Stateless. */
public final class CriuFiles {
  static final int SERVICE_MAGIC = 0x55105940;
  static final int STATS_MAGIC = 0x57093306;
  private static final int TAIL_LINES = 10;
  private static final Pattern ERROR_LINE = Pattern.compile("Error|error|Warn|BUG|failed");

  private CriuFiles() {}

  /**
   * Parses a {@code stats-dump} file: service magic, stats magic, then one u32-length-prefixed
   * entry. Returns {@link DumpStats#NONE} if the file is missing or unreadable, because CRIU skips
   * it in some modes and the caller's operation succeeded anyway.
   */
  public static DumpStats readDumpStats(Path file) {
    try {
      if (!Files.isRegularFile(file)) {
        return DumpStats.NONE;
      }
      ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
      if (buf.remaining() < 12 || buf.getInt() != SERVICE_MAGIC || buf.getInt() != STATS_MAGIC) {
        return DumpStats.NONE;
      }
      int size = buf.getInt();
      if (size < 0 || size > buf.remaining()) {
        return DumpStats.NONE;
      }
      StatsEntry entry = StatsEntry.parseFrom(ByteBuffer.wrap(buf.array(), buf.position(), size));
      DumpStatsEntry d = entry.getDump();
      return new DumpStats(Integer.toUnsignedLong(d.getFreezingTime()),
          Integer.toUnsignedLong(d.getFrozenTime()), Integer.toUnsignedLong(d.getMemdumpTime()),
          Integer.toUnsignedLong(d.getMemwriteTime()), d.getPagesScanned(),
          d.getPagesSkippedParent(), d.getPagesWritten(), d.getPagesLazy());
    } catch (IOException e) {
      return DumpStats.NONE;
    }
  }

  /**
   * The last lines of a CRIU log that look like errors, or its last lines if none do; empty if
   * there is no log. Skips the harmless RLIMIT_NOFILE complaint CRIU logs in containers.
   */
  public static List<String> logTail(Path log) {
    if (log == null || !Files.isRegularFile(log)) {
      return List.of();
    }
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.ISO_8859_1);
      Deque<String> errors = new ArrayDeque<>();
      for (String line : lines) {
        if (ERROR_LINE.matcher(line).find() && !line.contains("RLIMIT_NOFILE")) {
          errors.addLast(line);
          if (errors.size() > TAIL_LINES) {
            errors.removeFirst();
          }
        }
      }
      if (!errors.isEmpty()) {
        return List.copyOf(errors);
      }
      return List.copyOf(lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()));
    } catch (IOException e) {
      return List.of();
    }
  }
}

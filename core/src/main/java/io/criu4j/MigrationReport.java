package io.criu4j;

import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;

/**
 * The outcome of a successful migration, as measured on the source.
 *
 * @param sessionId the session's id, as the agent logged it too
 * @param sourcePid the root pid on the source (gone now)
 * @param destinationPid the root pid on the destination, as the agent's PID namespace sees it
 * @param sourceCriu the source's CRIU version
 * @param destinationCriu the destination's CRIU version
 * @param phases how long each phase took; phases that did not run are absent
 * @param downtime from the source tree frozen for the final dump to the destination reporting
 *     it running, both on the source clock
 * @param total from {@link MigrationSession#migrate()} called to returned
 * @param pageBytes bytes of memory pages shipped, all rounds
 * @param fileBytes bytes of the other image files shipped, all rounds
 * @param files image files shipped, all rounds
 * @param pages memory pages shipped, all rounds
 * @param rounds pre-copy rounds, then the final dump as the last entry
 * @param preCopyNote why pre-copy did not run or how it ended; {@code null} if there is nothing
 *     to say
 * @since 0.1
 */
public record MigrationReport(UUID sessionId, int sourcePid, int destinationPid,
    CriuVersion sourceCriu, CriuVersion destinationCriu, Map<MigrationPhase, Duration> phases,
    Duration downtime, Duration total, long pageBytes, long fileBytes, int files, long pages,
    List<RoundStats> rounds, String preCopyNote) {

  public MigrationReport {
    Objects.requireNonNull(sessionId, "sessionId");
    Objects.requireNonNull(downtime, "downtime");
    Objects.requireNonNull(total, "total");
    EnumMap<MigrationPhase, Duration> copy = new EnumMap<>(MigrationPhase.class);
    copy.putAll(phases);
    phases = java.util.Collections.unmodifiableMap(copy);
    rounds = List.copyOf(rounds);
  }

  /** Page bytes plus file bytes. */
  public long totalBytes() {
    return pageBytes + fileBytes;
  }

  /**
   * This report as one JSON object. Field names are stable: {@code sessionId, sourcePid,
   * destinationPid, sourceCriu, destinationCriu, phasesMs} (an object keyed by phase name),
   * {@code downtimeMs, totalMs, pageBytes, fileBytes, files, pages, rounds} (objects with
   * {@code round, pagesScanned, pagesWritten, pagesSkippedParent, bytes, frozenMs, tookMs}) and
   * {@code preCopyNote} ({@code null} when absent). Durations are milliseconds with three
   * decimals.
   */
  public String toJson() {
    StringBuilder sb = new StringBuilder(512).append('{');
    field(sb, "sessionId").append(quote(sessionId.toString())).append(',');
    field(sb, "sourcePid").append(sourcePid).append(',');
    field(sb, "destinationPid").append(destinationPid).append(',');
    field(sb, "sourceCriu").append(sourceCriu == null ? "null" : quote(sourceCriu.toString()))
        .append(',');
    field(sb, "destinationCriu")
        .append(destinationCriu == null ? "null" : quote(destinationCriu.toString())).append(',');
    field(sb, "phasesMs").append('{');
    String sep = "";
    for (Map.Entry<MigrationPhase, Duration> e : phases.entrySet()) {
      sb.append(sep);
      field(sb, e.getKey().name()).append(millis(e.getValue()));
      sep = ",";
    }
    sb.append("},");
    field(sb, "downtimeMs").append(millis(downtime)).append(',');
    field(sb, "totalMs").append(millis(total)).append(',');
    field(sb, "pageBytes").append(pageBytes).append(',');
    field(sb, "fileBytes").append(fileBytes).append(',');
    field(sb, "files").append(files).append(',');
    field(sb, "pages").append(pages).append(',');
    field(sb, "rounds").append('[');
    sep = "";
    for (RoundStats r : rounds) {
      sb.append(sep).append('{');
      field(sb, "round").append(r.round()).append(',');
      field(sb, "pagesScanned").append(r.pagesScanned()).append(',');
      field(sb, "pagesWritten").append(r.pagesWritten()).append(',');
      field(sb, "pagesSkippedParent").append(r.pagesSkippedParent()).append(',');
      field(sb, "bytes").append(r.bytes()).append(',');
      field(sb, "frozenMs").append(millis(r.frozen())).append(',');
      field(sb, "tookMs").append(millis(r.took())).append('}');
      sep = ",";
    }
    sb.append("],");
    field(sb, "preCopyNote").append(preCopyNote == null ? "null" : quote(preCopyNote));
    return sb.append('}').toString();
  }

  private static StringBuilder field(StringBuilder sb, String name) {
    return sb.append('"').append(name).append("\":");
  }

  private static String millis(Duration d) {
    long micros = d.toNanos() / 1000;
    return String.format(java.util.Locale.ROOT, "%d.%03d", micros / 1000, Math.abs(micros % 1000));
  }

  static String quote(String s) {
    StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format(java.util.Locale.ROOT, "\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"').toString();
  }
}

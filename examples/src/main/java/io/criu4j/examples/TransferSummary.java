package io.criu4j.examples;

import io.criu4j.examples.TransferBench.Run;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The lines {@link TransferBench} prints after its runs, from the median run of each
 * configuration ({@code "tcp/raw"}, {@code "tls/criu4j"}, ...): a table of the medians, then
 * {@code tls: ...} (TLS against plain TCP) and, last, {@code transfer: ...} (criu4j against
 * raw). Each summary line needs its own configurations; one whose configurations were not all
 * measured is left out, and without any summary line there is no table either.
 *
 * <p>Stateless; thread-safe.
 */
final class TransferSummary {
  /** The configurations in table order. */
  static final List<String> CONFIGURATIONS = List.of("tcp/raw", "tcp/criu4j", "unix/raw",
      "unix/criu4j", "tls/raw", "tls/criu4j");

  /** What the {@code transfer:} line compares; TLS is left out, so its meaning stays. */
  private static final List<String> TRANSFER = List.of("tcp/raw", "tcp/criu4j", "unix/raw",
      "unix/criu4j");

  private static final List<String> TLS = List.of("tcp/raw", "tcp/criu4j", "tls/raw",
      "tls/criu4j");

  private TransferSummary() {}

  /** Everything after the per-run lines, in order; empty when no summary line can be made. */
  static List<String> lines(Map<String, Run> medians) {
    Optional<String> tls = tlsLine(medians);
    Optional<String> transfer = transferLine(medians);
    List<String> lines = new ArrayList<>();
    if (tls.isEmpty() && transfer.isEmpty()) {
      return lines;
    }
    lines.add("");
    lines.add(String.format(Locale.ROOT, "%-14s %10s %12s %12s %12s %12s", "median", "MB/s",
        "cpu s/GB snd", "cpu s/GB rcv", "RSS MiB snd", "RSS MiB rcv"));
    for (String key : CONFIGURATIONS) {
      Run r = medians.get(key);
      if (r != null) {
        lines.add(String.format(Locale.ROOT, "%-14s %10.1f %12.3f %12.3f %12d %12d", key,
            r.mbPerSecond(), r.sender().cpuSecondsPerGb(), r.receiver().cpuSecondsPerGb(),
            r.sender().hwmKib() / 1024, r.receiver().hwmKib() / 1024));
      }
    }
    tls.ifPresent(lines::add);
    transfer.ifPresent(lines::add);
    return lines;
  }

  /**
   * {@code tls: criu4j_tls_mb_s=A criu4j_plain_mb_s=B tls_vs_plain=A/B raw_tls_mb_s=C
   * raw_plain_mb_s=D raw_tls_vs_plain=C/D}, plain being TCP without TLS; needs tcp and tls in
   * both modes.
   */
  static Optional<String> tlsLine(Map<String, Run> medians) {
    if (!medians.keySet().containsAll(TLS)) {
      return Optional.empty();
    }
    double criu4jTls = medians.get("tls/criu4j").mbPerSecond();
    double criu4jPlain = medians.get("tcp/criu4j").mbPerSecond();
    double rawTls = medians.get("tls/raw").mbPerSecond();
    double rawPlain = medians.get("tcp/raw").mbPerSecond();
    return Optional.of(String.format(Locale.ROOT, "tls: criu4j_tls_mb_s=%.1f "
        + "criu4j_plain_mb_s=%.1f tls_vs_plain=%.3f raw_tls_mb_s=%.1f raw_plain_mb_s=%.1f "
        + "raw_tls_vs_plain=%.3f", criu4jTls, criu4jPlain, criu4jTls / criu4jPlain, rawTls,
        rawPlain, rawTls / rawPlain));
  }

  /**
   * {@code transfer: tcp_ratio=R unix_ratio=R cpu_s_per_gb=X overhead_rss_mib=M}: R = criu4j
   * MB/s over raw MB/s, X = the largest CPU seconds per GB of a criu4j side, M = the largest
   * peak RSS of a criu4j side minus that of the same raw side, over TCP and Unix; needs tcp and
   * unix in both modes.
   */
  static Optional<String> transferLine(Map<String, Run> medians) {
    if (!medians.keySet().containsAll(TRANSFER)) {
      return Optional.empty();
    }
    double tcpRatio = medians.get("tcp/criu4j").mbPerSecond()
        / medians.get("tcp/raw").mbPerSecond();
    double unixRatio = medians.get("unix/criu4j").mbPerSecond()
        / medians.get("unix/raw").mbPerSecond();
    double cpu = 0;
    long overheadKib = 0;
    for (String t : List.of("tcp", "unix")) {
      Run c = medians.get(t + "/criu4j");
      Run raw = medians.get(t + "/raw");
      cpu = Math.max(cpu, Math.max(c.sender().cpuSecondsPerGb(),
          c.receiver().cpuSecondsPerGb()));
      overheadKib = Math.max(overheadKib, Math.max(c.sender().hwmKib() - raw.sender().hwmKib(),
          c.receiver().hwmKib() - raw.receiver().hwmKib()));
    }
    return Optional.of(String.format(Locale.ROOT, "transfer: tcp_ratio=%.3f unix_ratio=%.3f "
        + "cpu_s_per_gb=%.3f overhead_rss_mib=%d", tcpRatio, unixRatio, cpu,
        overheadKib / 1024));
  }
}

package io.criu4j.examples;

import io.criu4j.examples.TransferBench.Run;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The lines {@link TransferBench} prints: one per run ({@link #runLine}) and, after the runs,
 * from the median run of each configuration ({@code "tcp/raw"}, {@code "tls/criu4j"}, ...): a
 * table of the medians, then {@code relay: ...} (criu4j against the protocol-free relay, and the
 * relay against raw), {@code tls: ...} (TLS against plain TCP) and, last, {@code transfer: ...}
 * (criu4j against raw). Each summary line needs its own configurations; one whose
 * configurations were not all measured is left out, and without any summary line there is no
 * table either.
 *
 * <p>RSS figures: "RSS" is the peak during the measured transfer (the side's VmHWM, reset after
 * its warm-up), "life" the peak over the side JVM's whole life; {@code overhead_rss_mib} uses the
 * former.
 *
 * <p>Stateless; thread-safe.
 */
final class TransferSummary {
  /** The configurations in table order. */
  static final List<String> CONFIGURATIONS = List.of("tcp/raw", "tcp/relay", "tcp/criu4j",
      "unix/raw", "unix/relay", "unix/criu4j", "tls/raw", "tls/relay", "tls/criu4j");

  /** What the {@code transfer:} line compares; TLS is left out, so its meaning stays. */
  private static final List<String> TRANSFER = List.of("tcp/raw", "tcp/criu4j", "unix/raw",
      "unix/criu4j");

  private static final List<String> TLS = List.of("tcp/raw", "tcp/criu4j", "tls/raw",
      "tls/criu4j");

  private static final List<String> RELAY = List.of("tcp/raw", "tcp/relay", "tcp/criu4j",
      "unix/raw", "unix/relay", "unix/criu4j");

  private TransferSummary() {}

  /**
   * The line printed after run {@code index} (from 0) of transport {@code transport} in mode
   * {@code mode}: throughput, CPU s/GB per side, the peak RSS of each side during the measured
   * transfer and, in parentheses, over each side JVM's whole life.
   */
  static String runLine(String transport, String mode, int index, Run r) {
    return String.format(Locale.ROOT, "  %-4s %-6s run %d: %8.1f MB/s  cpu s/GB sender %.3f "
        + "receiver %.3f  peak RSS MiB sender %d receiver %d (whole life %d, %d)", transport,
        mode, index + 1, r.mbPerSecond(), r.sender().cpuSecondsPerGb(),
        r.receiver().cpuSecondsPerGb(), r.sender().hwmKib() / 1024,
        r.receiver().hwmKib() / 1024, r.sender().lifeHwmKib() / 1024,
        r.receiver().lifeHwmKib() / 1024);
  }

  /** Everything after the per-run lines, in order; empty when no summary line can be made. */
  static List<String> lines(Map<String, Run> medians) {
    Optional<String> relay = relayLine(medians);
    Optional<String> tls = tlsLine(medians);
    Optional<String> transfer = transferLine(medians);
    List<String> lines = new ArrayList<>();
    if (relay.isEmpty() && tls.isEmpty() && transfer.isEmpty()) {
      return lines;
    }
    lines.add("");
    lines.add(String.format(Locale.ROOT, "%-14s %10s %12s %12s %12s %12s %12s %12s", "median",
        "MB/s", "cpu s/GB snd", "cpu s/GB rcv", "RSS MiB snd", "RSS MiB rcv", "life MiB snd",
        "life MiB rcv"));
    for (String key : CONFIGURATIONS) {
      Run r = medians.get(key);
      if (r != null) {
        lines.add(String.format(Locale.ROOT, "%-14s %10.1f %12.3f %12.3f %12d %12d %12d %12d",
            key, r.mbPerSecond(), r.sender().cpuSecondsPerGb(), r.receiver().cpuSecondsPerGb(),
            r.sender().hwmKib() / 1024, r.receiver().hwmKib() / 1024,
            r.sender().lifeHwmKib() / 1024, r.receiver().lifeHwmKib() / 1024));
      }
    }
    relay.ifPresent(lines::add);
    tls.ifPresent(lines::add);
    transfer.ifPresent(lines::add);
    return lines;
  }

  /**
   * {@code relay: tcp_criu4j_vs_relay=R unix_criu4j_vs_relay=R tcp_relay_vs_raw=R
   * unix_relay_vs_raw=R}: MB/s of criu4j over MB/s of the relay (what criu4j's protocol costs
   * on top of the job), and of the relay over raw (what the job costs on top of moving the
   * bytes); needs tcp and unix in all three modes.
   */
  static Optional<String> relayLine(Map<String, Run> medians) {
    if (!medians.keySet().containsAll(RELAY)) {
      return Optional.empty();
    }
    return Optional.of(String.format(Locale.ROOT, "relay: tcp_criu4j_vs_relay=%.3f "
        + "unix_criu4j_vs_relay=%.3f tcp_relay_vs_raw=%.3f unix_relay_vs_raw=%.3f",
        ratio(medians, "tcp/criu4j", "tcp/relay"), ratio(medians, "unix/criu4j", "unix/relay"),
        ratio(medians, "tcp/relay", "tcp/raw"), ratio(medians, "unix/relay", "unix/raw")));
  }

  private static double ratio(Map<String, Run> medians, String over, String under) {
    return medians.get(over).mbPerSecond() / medians.get(under).mbPerSecond();
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
   * peak RSS during the measured transfer of a criu4j side minus that of the same raw side,
   * over TCP and Unix; needs tcp and unix in the raw and criu4j modes (relay and TLS do not
   * change it).
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

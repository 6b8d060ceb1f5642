#!/usr/bin/env bash
# Benchmark: image transfer through ImageProxy -> ImageCache (criu4j) vs a raw socket copy of
# the same bytes (raw) and vs the same job without criu4j's protocol (relay: the same fake CRIU
# and fake page server, pages relayed unframed on one connection, files with a minimal header on
# another), over loopback TCP, over a Unix socket and over loopback TLS (mutual TLS 1.3: criu4j
# through TlsTransport, raw and relay through JDK SSLSockets, same certificates): 1 GiB of
# synthetic CRIU page-server traffic plus 10,000 small image files (1-8 KiB), each side in its
# own JVM (after a warm-up transfer of the same size; 3 runs, median). Prints a table (MB/s, CPU
# seconds per GB, peak RSS per side during the measured transfer and over the JVM's whole
# life), then
#   relay: tcp_criu4j_vs_relay=R unix_criu4j_vs_relay=R tcp_relay_vs_raw=R unix_relay_vs_raw=R
#   tls: criu4j_tls_mb_s=A criu4j_plain_mb_s=B tls_vs_plain=A/B raw_tls_mb_s=C raw_plain_mb_s=D raw_tls_vs_plain=C/D
# (plain: the tcp medians of the same run) and last
#   transfer: tcp_ratio=R unix_ratio=R cpu_s_per_gb=X overhead_rss_mib=M
# (criu4j vs raw, tcp and unix only; M from the peaks of the measured transfers). A run without
# some configuration (--transports, --modes) leaves out the lines that need it. Method:
# docs/transfer-benchmark.md.
# Needs Linux and openssl; no root and no CRIU (the destination page server is an in-process
# fake). The certificates (a CA and one certificate per side for 127.0.0.1 and localhost) are
# made with scripts/certs.sh in the work directory, which is removed at the end.
# Builds first (mvn -o -DskipTests package -pl examples -am; CRIU4J_SKIP_BUILD=1 skips it). Arguments go to
# io.criu4j.examples.TransferBench (--page-mib, --files, --runs, --transports, --modes,
# --jvm-option; --help). CRIU4J_BENCH_DEBUG=1 makes each side print its per-thread CPU time,
# buffer and heap figures and when the fake CRIU finished (to stderr, marked DEBUG).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bench_build -o -DskipTests package -pl examples -am

work=$(mktemp -d /dev/shm/criu4j-transfer.XXXXXX)
# Side JVMs of an interrupted run name $work on their command line.
bench_cleanup_on_exit "$work"

jar=$(bench_examples_jar bench-transfer)
scripts/certs.sh init "$work/tls" >/dev/null
for side in sender receiver; do
    scripts/certs.sh issue "$work/tls" "$side" 127.0.0.1 localhost >/dev/null
done
java -cp "$jar:examples/target/lib/*" io.criu4j.examples.TransferBench \
    --work-dir "$work/run" --tls-dir "$work/tls" "$@" </dev/null

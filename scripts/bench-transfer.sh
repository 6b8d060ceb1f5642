#!/usr/bin/env bash
# Benchmark: image transfer through ImageProxy -> ImageCache vs a raw socket copy of the same
# bytes, over loopback TCP and over a Unix socket: 1 GiB of synthetic CRIU page-server traffic
# plus 10,000 small image files (1-8 KiB), each side in its own JVM (after a warm-up transfer of
# the same size; 3 runs, median). Prints a
# table (MB/s, CPU seconds per GB and peak RSS per side) and last
#   transfer: tcp_ratio=R unix_ratio=R cpu_s_per_gb=X overhead_rss_mib=M
# Needs Linux; no root and no CRIU (the destination page server is an in-process fake).
# Builds first (mvn -o -DskipTests package -pl examples -am; CRIU4J_SKIP_BUILD=1 skips it). Arguments go to
# io.criu4j.examples.TransferBench (--page-mib, --files, --runs, --transports, --modes,
# --jvm-option; --help). CRIU4J_BENCH_DEBUG=1 makes each side print its per-thread CPU time,
# buffer and heap figures and when the fake CRIU finished (to stderr, marked DEBUG).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${CRIU4J_SKIP_BUILD:-0} != 1 ]]; then
    mvn -B -q -o -DskipTests package -pl examples -am </dev/null
fi

work=$(mktemp -d /dev/shm/criu4j-transfer.XXXXXX)
cleanup() {
    local rc=$? p cmdline
    trap - EXIT INT TERM
    # Side JVMs of an interrupted run name $work on their command line.
    for p in /proc/[0-9]*; do
        [[ ${p#/proc/} == "$$" ]] && continue
        cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
        if [[ $cmdline == *"$work"* ]]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

jar=$(ls examples/target/criu4j-examples-*.jar 2>/dev/null | grep -v -e '-sources' -e '-tests' |
    head -1 || true)
[[ -n $jar ]] || { echo "bench-transfer: ERROR: examples/target has no jar; build first" >&2; exit 1; }
java -cp "$jar:examples/target/lib/*" io.criu4j.examples.TransferBench \
    --work-dir "$work/run" "$@" </dev/null

#!/usr/bin/env bash
# Benchmark, as root: dump + restore of a 256 MiB process through criu4j vs the criu command
# line (3 repetitions each, images in /dev/shm), and the VERSION round trip including the
# `criu swrk` spawn (first call, then the median of 20 fresh clients). Prints a table and last
#   criu: library_vs_cli_ratio=R version_roundtrip_ms=X
# Builds first (mvn -q -DskipTests install; CRIU4J_SKIP_BUILD=1 skips it). Arguments go to
# io.criu4j.examples.CriuOverheadBench (--repetitions, --mem-mib, --version-calls; --help).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

[[ $(id -u) -eq 0 ]] || { echo "bench-criu: ERROR: run as root (CRIU needs it)" >&2; exit 1; }
if [[ ${CRIU4J_SKIP_BUILD:-0} != 1 ]]; then
    mvn -B -q -DskipTests install </dev/null
fi

work=$(mktemp -d /dev/shm/criu4j-bench.XXXXXX)
# Kills every process whose command line names $work (payloads and restored copies left by an
# interrupted run), then removes $work.
cleanup() {
    local rc=$? p cmdline
    trap - EXIT INT TERM
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
[[ -n $jar ]] || { echo "bench-criu: ERROR: examples/target has no jar; build first" >&2; exit 1; }
java -Dcriu4j.payload.source="$root/core/src/test/c/payload.c" \
    -cp "$jar:examples/target/lib/*" io.criu4j.examples.CriuOverheadBench \
    --work-dir "$work/run" --payload-dir "$root/examples/target/payload" "$@" </dev/null

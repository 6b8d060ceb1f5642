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
source scripts/lib.sh

[[ $(id -u) -eq 0 ]] || { echo "bench-criu: ERROR: run as root (CRIU needs it)" >&2; exit 1; }
bench_build -DskipTests install

work=$(mktemp -d /dev/shm/criu4j-bench.XXXXXX)
# Kills every process whose command line names $work (payloads and restored copies left by an
# interrupted run), then removes $work.
bench_cleanup_on_exit "$work"

jar=$(bench_examples_jar bench-criu)
java -Dcriu4j.payload.source="$root/core/src/test/c/payload.c" \
    -cp "$jar:examples/target/lib/*" io.criu4j.examples.CriuOverheadBench \
    --work-dir "$work/run" --payload-dir "$root/examples/target/payload" "$@" </dev/null

#!/usr/bin/env bash
# Benchmark, as root: live migration of 64 MiB, 256 MiB and 1 GiB payloads by criu4j over
# loopback TCP (MigrationAgent in the same JVM as the MigrationSession), next to the criu command
# line dumping to tmpfs and restoring from it, and dumping to disk, copying the images to another
# directory on disk (fsync'ed) and restoring from the copy, and (cli-pageserver) dumping into a
# `criu page-server` over loopback TCP and restoring from what it wrote: CRIU's own page
# streaming without criu4j, the floor of streaming pages through a page server, and
# (cli-tmpfs-held) cli-tmpfs with the original left stopped until the copy runs, as a live
# migration holds its source. 3 repetitions each; prints every run, a table of medians, then
#   pageserver: criu4j_vs_cli_pageserver=R cli_pageserver_vs_tmpfs=R
#   held: criu4j_vs_cli_tmpfs_held=R cli_tmpfs_held_vs_tmpfs=R
# and last
#   migrate: downtime_vs_tmpfs=R downtime_vs_disk=R
# (criu4j downtime / baseline downtime, 1 GiB payload). One unmeasured criu4j migration warms
# the JVM up first. Builds first (mvn -q -DskipTests
# package; CRIU4J_SKIP_BUILD=1 skips it). Arguments go to io.criu4j.examples.MigrateBench
# (--sizes, --repetitions, --modes, --work-dir, --disk-dir; --help).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib.sh

[[ $(id -u) -eq 0 ]] || { echo "bench-migrate: ERROR: run as root (CRIU needs it)" >&2; exit 1; }
bench_build -Dstyle.color=never -DskipTests package

work=$(mktemp -d /dev/shm/criu4j-mbench.XXXXXX)
disk=$(mktemp -d /var/tmp/criu4j-mbench.XXXXXX)
# Kills every process whose command line names $work (payloads and restored copies left by an
# interrupted run), then removes both directories.
bench_cleanup_on_exit "$work" "$disk"

jar=$(bench_examples_jar bench-migrate)
java -Dcriu4j.payload.source="$root/core/src/test/c/payload.c" \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$jar:examples/target/lib/*" io.criu4j.examples.MigrateBench \
    --work-dir "$work/run" --disk-dir "$disk/run" --payload-dir "$root/examples/target/payload" \
    "$@" </dev/null

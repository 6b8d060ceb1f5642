#!/usr/bin/env bash
# Benchmark, as root: live migration of 64 MiB, 256 MiB and 1 GiB payloads by criu4j over
# loopback TCP (MigrationAgent in the same JVM as the MigrationSession), stop-and-copy (criu4j)
# and post-copy (criu4j-postcopy: the copy runs before its memory arrived), next to the criu
# command line dumping to tmpfs and restoring from it, and dumping to disk, copying the images to
# another directory on disk (fsync'ed) and restoring from the copy, and (cli-pageserver) dumping
# into a `criu page-server` over loopback TCP and restoring from what it wrote: CRIU's own page
# streaming without criu4j, the floor of streaming pages through a page server, and
# (cli-tmpfs-held) cli-tmpfs with the original left stopped until the copy runs, as a live
# migration holds its source, and (cli-lazy) CRIU's own post-copy: `criu dump --lazy-pages`,
# `criu lazy-pages --page-server` and `criu restore --lazy-pages`. 3 repetitions each; prints
# every run, a table of medians, then
#   pageserver: criu4j_vs_cli_pageserver=R cli_pageserver_vs_tmpfs=R
#   held: criu4j_vs_cli_tmpfs_held=R cli_tmpfs_held_vs_tmpfs=R
#   postcopy: criu4j_postcopy_vs_cli_lazy=R criu4j_postcopy_ms=X cli_lazy_ms=Y
#   stopcopy: downtime_vs_tmpfs=R downtime_vs_disk=R
# and last
#   migrate: downtime_vs_tmpfs=R downtime_vs_disk=R mode=M
# (downtime / baseline downtime, median, 1 GiB payload; pageserver, held and stopcopy for criu4j
# stop-and-copy, migrate for the better criu4j mode, M = criu4j-postcopy or criu4j). One
# unmeasured criu4j migration per criu4j mode warms the JVM up first. Post-copy needs
# fs.pipe-max-size >= 4194304 (scripts/setup.sh raises it). Builds first (mvn -q -DskipTests
# package; CRIU4J_SKIP_BUILD=1 skips it). Arguments go to io.criu4j.examples.MigrateBench
# (--sizes, --repetitions, --modes, --warmup, --work-dir, --disk-dir; --help).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib.sh

[[ $(id -u) -eq 0 ]] || { echo "bench-migrate: ERROR: run as root (CRIU needs it)" >&2; exit 1; }
pipe_max=$(cat /proc/sys/fs/pipe-max-size)
if (( pipe_max < 4194304 )); then
  echo "bench-migrate: WARNING: fs.pipe-max-size is $pipe_max; the post-copy modes need" \
      ">= 4194304 (scripts/setup.sh raises it)" >&2
fi
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

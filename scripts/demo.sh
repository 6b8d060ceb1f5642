#!/usr/bin/env bash
# The main demo, as root on a fresh Debian/Ubuntu machine: installs what it needs (JDK, Maven,
# cc and CRIU >= 4.1, through scripts/setup.sh, which runs scripts/install-criu.sh), builds
# criu4j, starts a counting process in its own PID namespace, checkpoints it through the
# library into /dev/shm, restores it through the library and shows the counter carrying on.
# Last line on success:
#   checkpoint-restore: old_pid=P new_pid=Q counter_before=A counter_after=B
# Everything it started is killed and its files removed on exit, also on failure or Ctrl-C.
#
# Environment: CRIU4J_SKIP_SETUP=1 skips the installation step, CRIU4J_SKIP_BUILD=1 the build.
# Arguments go to the Java program (io.criu4j.examples.CheckpointRestoreDemo; try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { echo "demo: $*"; }
[[ $(id -u) -eq 0 ]] || { echo "demo: ERROR: run as root (CRIU needs it)" >&2; exit 1; }

if [[ ${CRIU4J_SKIP_SETUP:-0} != 1 ]]; then
    bash scripts/setup.sh
fi
if [[ ${CRIU4J_SKIP_BUILD:-0} != 1 ]]; then
    log "building (mvn -B -q -DskipTests install)"
    mvn -B -q -DskipTests install </dev/null
fi

work=$(mktemp -d /dev/shm/criu4j-demo.XXXXXX)

# Kills every process whose command line names $work (the payload, restored copies, a Java
# program that did not get to clean up), then removes $work.
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
[[ -n $jar ]] || { echo "demo: ERROR: examples/target has no jar; build first" >&2; exit 1; }
java -Dcriu4j.payload.source="$root/core/src/test/c/payload.c" \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
    -cp "$jar:examples/target/lib/*" io.criu4j.examples.CheckpointRestoreDemo \
    --dir "$work/run" --payload-dir "$root/examples/target/payload" "$@" </dev/null

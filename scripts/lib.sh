# Shared preamble of the benchmark scripts (bench-transfer.sh, bench-migrate.sh, bench-criu.sh);
# sourced by them after `cd` to the repository root, never run on its own.
#
#   bench_build ARGS...       mvn -B -q ARGS </dev/null, unless CRIU4J_SKIP_BUILD=1
#   bench_cleanup_on_exit WORK [DIR...]
#                             on exit (also after Ctrl-C or SIGTERM: exit status 130 or 143)
#                             kills every process whose command line names WORK (side JVMs,
#                             payloads and restored copies left by an interrupted run), then
#                             removes WORK and the DIRs
#   bench_examples_jar NAME   prints the path of the examples jar; without one, prints
#                             "NAME: ERROR: ..." to stderr and exits 1
#
# The callers use `set -euo pipefail`.

bench_build() {
    if [[ ${CRIU4J_SKIP_BUILD:-0} != 1 ]]; then
        mvn -B -q "$@" </dev/null
    fi
}

bench_cleanup_dirs=()

bench_cleanup_on_exit() {
    bench_cleanup_dirs=("$@")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_cleanup() {
    local rc=$? p cmdline work=${bench_cleanup_dirs[0]:-}
    trap - EXIT INT TERM
    for p in /proc/[0-9]*; do
        [[ -n $work ]] || break
        [[ ${p#/proc/} == "$$" ]] && continue
        # 2>/dev/null first: a process may end between the glob and the read.
        cmdline=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        if [[ $cmdline == *"$work"* ]]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    rm -rf -- "${bench_cleanup_dirs[@]}"
    exit "$rc"
}

bench_examples_jar() {
    local jar
    jar=$(ls examples/target/criu4j-examples-*.jar 2>/dev/null |
        grep -v -e '-sources' -e '-tests' | head -1 || true)
    [[ -n $jar ]] || { echo "$1: ERROR: examples/target has no jar; build first" >&2; exit 1; }
    echo "$jar"
}

#!/usr/bin/env bash
# The main demo, as root on a fresh Debian/Ubuntu machine: live migration of a running process
# between two "hosts" on this machine.
#
#  1. installs what it needs (JDK, Maven, cc, CRIU >= 4.1: scripts/setup.sh) and builds criu4j;
#  2. creates two network namespaces, hostA (10.77.0.1/24) and hostB (10.77.0.2/24), joined by
#     a veth pair;
#  3. creates a small CA and a certificate for each host with scripts/certs.sh (in its temporary
#     directory), starts a counting process (64 MiB of memory, own PID namespace) in hostA, and
#     the criu4j agent in hostB, listening on tls://10.77.0.2:7070 (mutual TLS: it accepts only
#     hostA's certificate);
#  4. migrates the process from hostA to hostB over TLS with `criu4j migrate`, shows its report,
#     and shows the counter carrying on in hostB;
#  5. removes everything it created (processes, namespaces, files), also on failure or Ctrl-C.
#
# Last line on success:
#   migrated: old_pid=P new_pid=Q downtime_ms=D total_ms=T
#
# The namespaces are entered with `nsenter --net=/run/netns/...`, not `ip netns exec`, which
# would also create a mount namespace: CRIU's dump and restore must see the same mounts.
# Environment: CRIU4J_SKIP_SETUP=1 skips the installation, CRIU4J_SKIP_BUILD=1 the build,
# CRIU4J_DEMO_MEM_MIB sets the payload's memory (default 64), CRIU4J_DEMO_POST_COPY=1 migrates
# with post-copy (the copy runs before its memory arrived; `criu4j migrate --post-copy`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { echo "demo: $*"; }
die() { echo "demo: ERROR: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (CRIU and network namespaces need it)"

mem_mib=${CRIU4J_DEMO_MEM_MIB:-64}
post_copy=()
[[ ${CRIU4J_DEMO_POST_COPY:-0} == 1 ]] && post_copy=(--post-copy)
port=7070
ip_a=10.77.0.1
ip_b=10.77.0.2

if [[ ${CRIU4J_SKIP_SETUP:-0} != 1 ]]; then
    bash scripts/setup.sh
fi
if [[ ${CRIU4J_SKIP_BUILD:-0} != 1 ]]; then
    log "building (mvn -B -q -DskipTests package)"
    mvn -B -q -Dstyle.color=never -DskipTests package </dev/null
fi
command -v nsenter >/dev/null && command -v unshare >/dev/null && command -v ip >/dev/null ||
    die "needs nsenter, unshare (util-linux) and ip (iproute2)"

for ns in hostA hostB; do
    [[ ! -e /run/netns/$ns ]] ||
        die "network namespace $ns exists already (another demo running?); remove it with: ip netns del $ns"
done

work=$(mktemp -d /dev/shm/criu4j-demo.XXXXXX)
created_ns=()
agent_pid=

# Stops the agent, kills every process whose command line names $work (the payload, its
# restored copy, a migrate command), deletes the namespaces this run created and $work.
# Idempotent; runs on every exit.
cleanup() {
    local p cmdline
    if [[ -n $agent_pid ]]; then
        kill -TERM "$agent_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$agent_pid" 2>/dev/null || true
        agent_pid=
    fi
    for p in /proc/[0-9]*; do
        [[ ${p#/proc/} == "$$" ]] && continue
        cmdline=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        if [[ $cmdline == *"$work"* ]]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    for ns in "${created_ns[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    created_ns=()
    rm -rf -- "$work"
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if ((rc != 0)) && [[ -s $work/agent.log ]]; then
        echo "demo: agent log:" >&2
        sed 's/^/  agent| /' "$work/agent.log" >&2 || true
    fi
    cleanup
    ((rc == 0)) || echo "demo: FAILED (exit $rc); everything it created was removed" >&2
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

# --- two hosts ---------------------------------------------------------------------------
log "creating network namespaces hostA ($ip_a) and hostB ($ip_b), joined by a veth pair"
for ns in hostA hostB; do
    ip netns add "$ns"
    created_ns+=("$ns")
    ip -n "$ns" link set lo up
done
ip link add c4j-a netns hostA type veth peer name c4j-b netns hostB
ip -n hostA addr add "$ip_a/24" dev c4j-a
ip -n hostB addr add "$ip_b/24" dev c4j-b
ip -n hostA link set c4j-a up
ip -n hostB link set c4j-b up

# --- the payload on hostA --------------------------------------------------------------------
mkdir -p "$work/payload" "$work/hostA" "$work/hostB"
cc -O2 -pthread -o "$work/payload/counter" core/src/test/c/payload.c
counter_file="$work/payload/count"
# Its own PID namespace, so that the restored copy can get the same pid while the original is
# held frozen on the same machine; setsid inside it, so the session is dumpable.
in_ns hostA unshare --pid --fork setsid "$work/payload/counter" --file "$counter_file" \
    --mem "$mem_mib" --interval-ms 100 </dev/null >/dev/null 2>&1 &
wrapper=$!
# The payload's pid: the descendant of the wrapper (nsenter, unshare) running the binary.
find_payload() {
    local p=$1 c
    if [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$work/payload/counter" ]]; then
        echo "$p"
        return
    fi
    for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do
        find_payload "$c"
    done
}
old_pid=
for _ in $(seq 300); do
    old_pid=$(find_payload "$wrapper" | head -1)
    [[ -n $old_pid && -s $counter_file ]] && break
    sleep 0.1
done
[[ -n $old_pid && -s $counter_file ]] || die "the payload did not start"
counter() { tr -d ' \n' <"$counter_file"; }
log "payload pid $old_pid in network namespace $(ip netns identify "$old_pid"), $mem_mib MiB, counting every 100 ms in $counter_file"

# --- certificates ----------------------------------------------------------------------------
pki="$work/pki"
log "creating a CA and host certificates in $pki with scripts/certs.sh"
bash scripts/certs.sh init "$pki" | sed 's/^/  certs| /'
bash scripts/certs.sh issue "$pki" hostA "$ip_a" | sed 's/^/  certs| /'
bash scripts/certs.sh issue "$pki" hostB "$ip_b" | sed 's/^/  certs| /'
tls_opts() { echo --tls-cert "$pki/$1.pem" --tls-key "$pki/$1-key.pem" --tls-ca "$pki/ca.pem"; }

# --- the agent on hostB ----------------------------------------------------------------------
export CRIU4J_SKIP_BUILD=1
# shellcheck disable=SC2046 # word splitting of tls_opts is intended (paths without spaces)
in_ns hostB scripts/criu4j agent --listen "tls://$ip_b:$port" $(tls_opts hostB) \
    --allow-peer CN=hostA --dir "$work/hostB" </dev/null >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 600); do
    grep -q "listening on" "$work/agent.log" 2>/dev/null && break
    kill -0 "$agent_pid" 2>/dev/null || die "the agent exited: $(cat "$work/agent.log")"
    sleep 0.1
done
grep -q "listening on" "$work/agent.log" || die "the agent did not start within 60 s"
log "agent on hostB: $(grep 'listening on' "$work/agent.log")"

before=()
for _ in 1 2 3 4; do before+=("$(counter)"); sleep 0.3; done
log "counter on hostA: ${before[*]}"

# --- the migration ---------------------------------------------------------------------------
log "migrating pid $old_pid from hostA to hostB: criu4j migrate --pid $old_pid --to tls://$ip_b:$port (certificate CN=hostA)"
# shellcheck disable=SC2046
in_ns hostA scripts/criu4j migrate --pid "$old_pid" --to "tls://$ip_b:$port" $(tls_opts hostA) \
    --allow-peer CN=hostB --staging-dir "$work/hostA" "${post_copy[@]}" </dev/null |
    tee "$work/migrate.out"
summary=$(tail -n 1 "$work/migrate.out")
[[ $summary == migrated:* ]] || die "no summary line from criu4j migrate"
new_pid=$(sed -n 's/.* new_pid=\([0-9]*\).*/\1/p' <<<"$summary")

# --- after ------------------------------------------------------------------------------------
if kill -0 "$old_pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$old_pid/stat" 2>/dev/null) != Z ]]; then
    die "pid $old_pid still runs on hostA"
fi
[[ -d /proc/$new_pid ]] || die "the migrated process (pid $new_pid) is not running"
where=$(ip netns identify "$new_pid")
[[ $where == hostB ]] || die "pid $new_pid lives in network namespace '$where', not hostB"
after=()
for _ in 1 2 3 4; do sleep 0.3; after+=("$(counter)"); done
log "counter after the migration, from pid $new_pid on hostB: ${after[*]}"
((after[3] > after[0] && after[0] >= before[3])) || die "the counter did not carry on"
log "agent log:"
sed 's/^/  agent| /' "$work/agent.log"

cleanup
log "cleaned up: processes, namespaces hostA/hostB, $work"
echo "$summary"

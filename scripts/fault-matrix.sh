#!/usr/bin/env bash
# Fault injection on real CRIU, as root: runs FaultMatrixIT (examples module), which migrates a
# small payload once per cell of phases x faults and injects the fault at that phase (source
# JVM, agent JVM or a CRIU process SIGKILLed, connection reset, agent stalled, phase timeout):
# every cell over tcp://, and the connection faults (reset, stall, timeout, agent killed; see
# docs/faults.md) again over tls:// (mutual TLS; the reset is a kernel reset of the socket
# under TLS, ss -K) and unix://. Then prints its table: one line per case with the transport,
# where the payload runs afterwards (SURVIVED at the source or the destination, LOST,
# DUPLICATED, n/a), whether something leaked, whether a SIGKILLed JVM left its own directories
# (debris), and the time the case took; then what migrate() said per case, and last
#   faults: tried=N survived=M lost=L duplicated=D leaks=K
# counting every transport. Extra arguments go to Maven, e.g. -Dcriu4j.faults='BEFORE_COMMIT/.*'
# to run one row over TCP: a regular expression over the key, PHASE/FAULT for TCP and
# tls:PHASE/FAULT or unix:PHASE/FAULT for the others ('(tls|unix):.*' runs those). Each case's
# logs stay in examples/target/fault-logs/KEY/. Exit code: Maven's (non-zero when a case broke
# the invariant beyond what docs/faults.md documents).
set -uo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "fault-matrix: ERROR: run as root (CRIU needs it)" >&2; exit 1; }
table=examples/target/fault-matrix.txt
log=$(mktemp /tmp/criu4j-fault-matrix.XXXXXX.log)
rm -f "$table"
mvn -B -ntp -Dstyle.color=never -pl examples -am verify -Pcriu -Dcriu.required=true \
    -Dit.test=FaultMatrixIT -Dfailsafe.failIfNoSpecifiedTests=false \
    -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false "$@" </dev/null >"$log" 2>&1
rc=$?
if [[ ! -s $table ]]; then
    echo "fault-matrix: ERROR: no table written (maven exit $rc); last lines of $log:" >&2
    tail -40 "$log" >&2
    exit "${rc/#0/1}"
fi
cat "$table"
if [[ $rc -ne 0 ]]; then
    echo "fault-matrix: some cases failed (maven exit $rc); see $log" >&2
    grep -E '^\[ERROR\] +FaultMatrixIT' "$log" >&2 || true
else
    rm -f "$log"
fi
exit "$rc"

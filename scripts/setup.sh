#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine (as root) for building and testing criu4j:
# a JDK >= 17 and Maven when missing, then CRIU >= 4.1 and the tools the real-CRIU tests use
# (scripts/install-criu.sh). Idempotent: a second run only re-checks.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
exec </dev/null
cd "$(dirname "$0")/.."

log() { echo "setup: $*"; }

java_ok() {
    command -v java >/dev/null && command -v javac >/dev/null || return 1
    local v
    v=$(javac -version 2>&1 | awk '{print $2}' | cut -d. -f1)
    [[ $v =~ ^[0-9]+$ ]] && ((v >= 17))
}

missing=()
java_ok || missing+=(default-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get -q=2 update >/dev/null
    apt-get -y -q=2 install --no-install-recommends "${missing[@]}" >/dev/null
    java_ok || { echo "setup: ERROR: no JDK >= 17 after installing ${missing[*]}" >&2; exit 1; }
fi
log "$(javac -version 2>&1), $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"

bash scripts/install-criu.sh

# Post-copy: CRIU's lazy page server sizes its pipes to 4 MiB, which takes CAP_SYS_RESOURCE or
# fs.pipe-max-size >= 4 MiB (the kernel's default is 1 MiB). A container's root may lack the
# capability; the sysctl is host-wide and harmless.
want=4194304
have=$(cat /proc/sys/fs/pipe-max-size 2>/dev/null || echo 0)
if ((have < want)); then
    if echo "$want" >/proc/sys/fs/pipe-max-size 2>/dev/null; then
        log "fs.pipe-max-size raised from $have to $want (CRIU's lazy pages need 4 MiB pipes)"
    else
        log "WARNING: cannot raise fs.pipe-max-size from $have to $want; post-copy will be refused"
    fi
fi

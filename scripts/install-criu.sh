#!/usr/bin/env bash
# Installs a working CRIU (>= 4.1) and the tools the criu4j tests need.
#
# Run as root on Debian or Ubuntu; non-interactive and idempotent (a second
# run only re-checks and returns). Order of preference:
#   1. a `criu` already on PATH that is new enough and passes `criu check`;
#   2. the distribution's own `criu` package, if its candidate is new enough;
#   3. CRIU from Debian trixie unpacked into a private prefix together with
#      its own glibc and libraries, started through that prefix's dynamic
#      loader by a small wrapper on PATH. Older distributions (Debian 12
#      ships 3.17, which fails on recent kernels with "Unexpected rt vDSO
#      area bounds") cannot install trixie's package with dpkg because it
#      needs a newer glibc, hence the private prefix. The machine's own apt
#      state and libraries are left untouched.
#
# Environment:
#   CRIU4J_CRIU_PREFIX    private prefix        (default /opt/criu4j/criu)
#   CRIU4J_BIN_DIR        where the wrapper goes (default /usr/local/bin)
#   CRIU4J_CRIU_SUITE     Debian suite to take CRIU from (default trixie)
#   CRIU4J_DEBIAN_MIRROR  Debian mirror URL (default: the machine's Debian
#                         mirror if it has one, else http://deb.debian.org/debian)
#   CRIU4J_FORCE_PRIVATE  set to 1 to skip steps 1 and 2
set -euo pipefail

readonly MIN_VERSION=4.1
readonly PREFIX=${CRIU4J_CRIU_PREFIX:-/opt/criu4j/criu}
readonly BIN_DIR=${CRIU4J_BIN_DIR:-/usr/local/bin}
readonly SUITE=${CRIU4J_CRIU_SUITE:-trixie}
readonly FORCE_PRIVATE=${CRIU4J_FORCE_PRIVATE:-0}
readonly DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Nothing below may ever wait for a human.
export DEBIAN_FRONTEND=noninteractive
exec </dev/null

log() { echo "install-criu: $*"; }
die() {
    echo "install-criu: ERROR: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "apt-get/dpkg not found: only Debian and Ubuntu are supported"

ARCH=$(dpkg --print-architecture)
case "$ARCH" in
amd64) MULTIARCH=x86_64-linux-gnu LOADER=ld-linux-x86-64.so.2 ;;
arm64) MULTIARCH=aarch64-linux-gnu LOADER=ld-linux-aarch64.so.1 ;;
*) MULTIARCH= LOADER= ;; # only the packaged ways can work there
esac

# ---------------------------------------------------------------- helpers

APT_UPDATED=0
apt_update_once() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        apt-get -q=2 update >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

apt_install() {
    apt_update_once
    log "apt-get install $*"
    apt-get -q=2 -y --no-install-recommends install "$@" >/dev/null ||
        die "apt-get install $* failed"
}

# Prints the x.y[.z] version of the criu command $1, or nothing.
criu_version_of() {
    "$1" --version 2>/dev/null | sed -n 's/^Version: *\([0-9][0-9.]*\).*/\1/p' | head -n1
}

version_ok() {
    [[ -n $1 ]] && dpkg --compare-versions "$1" ge "$MIN_VERSION"
}

# True when the criu command $1 is new enough and the kernel passes its
# check. Old CRIU builds fail `criu check` outright on new kernels, so the
# check is what tells a usable install from a merely present one.
criu_works() {
    local v
    v=$(criu_version_of "$1")
    version_ok "$v" && "$1" check >/dev/null 2>&1
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# ------------------------------------------------------- test dependencies

# What the tests use around CRIU: `ip netns` to fake several hosts,
# unshare/setsid to give each payload its own PID namespace and session,
# and a C compiler with libc headers for the payload. iptables provides
# iptables-restore/iptables-save, which CRIU runs when it dumps or restores
# a network namespace (rule dump, and the default network-lock method).
ensure_test_tools() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v unshare >/dev/null && command -v setsid >/dev/null || missing+=(util-linux)
    command -v gcc >/dev/null || missing+=(gcc)
    pkg_installed libc6-dev || missing+=(libc6-dev)
    command -v iptables-restore >/dev/null || missing+=(iptables)
    if [[ ${#missing[@]} -gt 0 ]]; then
        apt_install "${missing[@]}"
    fi
}

# ------------------------------------------------- distribution's package

distro_candidate() {
    local c
    c=$(apt-cache policy criu 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n1)
    [[ $c == "(none)" ]] && c=
    echo "$c"
}

# Strips the epoch and the Debian revision: "1:4.1.1-1ubuntu2" -> "4.1.1".
upstream_version() {
    local v=${1#*:}
    echo "${v%%-*}"
}

distro_criu_ok() {
    local cand
    cand=$(distro_candidate)
    # Fresh containers ship without package lists: fetch them and ask again.
    if [[ -z $cand ]]; then
        apt_update_once
        cand=$(distro_candidate)
    fi
    [[ -n $cand ]] && version_ok "$(upstream_version "$cand")"
}

# ------------------------------------------------------- private prefix

# The machine's own Debian mirror (one-line and deb822 sources), so that a
# mirror-only network works; snapshot and security archives do not match.
debian_mirror() {
    if [[ -n ${CRIU4J_DEBIAN_MIRROR:-} ]]; then
        echo "${CRIU4J_DEBIAN_MIRROR%/}"
        return
    fi
    local found
    found=$(
        {
            cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }'
            cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
                sed -n 's/^URIs:[[:space:]]*//p' | tr -s ' \t' '\n'
        } | grep -E '^https?://[^/]+/debian/?$' | head -n1 || true
    )
    found=${found:-http://deb.debian.org/debian}
    echo "${found%/}"
}

install_private() {
    [[ -n $MULTIARCH ]] ||
        die "no CRIU >= $MIN_VERSION packaged for this system, and the private install supports amd64/arm64 only (this is $ARCH)"

    if [[ ! -r $DEBIAN_KEYRING ]]; then
        apt_install debian-archive-keyring
    fi

    local work mirror
    work=$(mktemp -d /tmp/install-criu.XXXXXX)
    # shellcheck disable=SC2064 # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
    # apt drops privileges to _apt for downloads; let it write there.
    chmod 755 "$work"
    if id _apt >/dev/null 2>&1; then
        chown -R _apt:root "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
    fi

    mirror=$(debian_mirror)
    echo "deb [arch=$ARCH signed-by=$DEBIAN_KEYRING] $mirror $SUITE main" >"$work/sources.list"

    # Every state, cache, list and preference path points into $work, so the
    # machine's configured sources, lists and pins neither leak in nor change.
    local apt_opts=(
        -q=2
        -o "Dir::Etc::SourceList=$work/sources.list"
        -o Dir::Etc::SourceParts=/dev/null
        -o Dir::Etc::Preferences=/dev/null
        -o Dir::Etc::PreferencesParts=/dev/null
        -o "Dir::State::Lists=$work/lists"
        -o "Dir::Cache=$work/cache"
        -o Dir::State::status=/dev/null
        -o "APT::Architecture=$ARCH"
        -o "APT::Architectures=$ARCH"
        -o Acquire::Languages=none
    )

    log "fetching the $SUITE package lists from $mirror"
    apt-get "${apt_opts[@]}" update >/dev/null ||
        die "apt-get update for $SUITE from $mirror failed (is $DEBIAN_KEYRING recent enough to know $SUITE?)"

    # criu's run-time closure: all Depends/Pre-Depends, recursively, which in
    # trixie is criu, libcompel1, libc6 and about twenty libraries.
    local pkgs
    mapfile -t pkgs < <(
        apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
            --no-conflicts --no-breaks --no-replaces --no-enhances criu |
            grep -v -e '^ ' -e '^<' | sort -u
    )
    [[ ${#pkgs[@]} -gt 0 && " ${pkgs[*]} " == *" criu "* && " ${pkgs[*]} " == *" libc6 "* ]] ||
        die "could not resolve criu's dependencies in $SUITE"
    log "downloading ${#pkgs[@]} packages: ${pkgs[*]}"
    (cd "$work/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}" >/dev/null) ||
        die "apt-get download from $SUITE failed"

    # Unpack next to the final place, check, then swap: a failed or
    # interrupted run never leaves a half-written prefix behind.
    local stage=$PREFIX.new old=$PREFIX.old deb
    rm -rf "$stage" "$old"
    mkdir -p "$stage"
    for deb in "$work"/debs/*.deb; do
        dpkg -x "$deb" "$stage"
    done
    dpkg-deb -f "$work"/debs/criu_*.deb Version >"$stage/.criu4j-criu-version"

    # Every library criu needs must come from the prefix: a host library
    # picked up by accident would be built for the host's older glibc.
    local listing bad
    listing=$("$stage/usr/lib/$MULTIARCH/$LOADER" --library-path "$(lib_path_of "$stage")" \
        --list "$stage/usr/sbin/criu") || die "the unpacked criu does not load"
    bad=$(awk -v s="$stage/" '/not found/ || (/=>/ && index($0, s) == 0)' <<<"$listing")
    [[ -z $bad ]] || die "the unpacked criu resolves libraries outside the prefix: $bad"

    [[ -e $PREFIX ]] && mv "$PREFIX" "$old"
    mv "$stage" "$PREFIX"
    rm -rf "$old"
    write_wrapper
    log "installed CRIU $(cat "$PREFIX/.criu4j-criu-version") from $SUITE into $PREFIX"
}

# The library directories that exist under $1, as a --library-path value.
# Trixie has merged /usr, so usr/lib is enough there; lib/ is for suites
# that still ship libraries in /lib.
lib_path_of() {
    local dirs=() d
    for d in "$1/usr/lib/$MULTIARCH" "$1/lib/$MULTIARCH"; do
        [[ -d $d ]] && dirs+=("$d")
    done
    local IFS=:
    echo "${dirs[*]}"
}

# criu is started through the prefix's own loader with --library-path (not
# LD_LIBRARY_PATH): the programs criu itself runs (ip, iptables-restore,
# action scripts) then get the host's loader and libraries as usual. `exec`
# keeps the pid and every inherited descriptor, which `criu swrk <fd>` needs.
write_wrapper() {
    local libpath tmp
    libpath=$(lib_path_of "$PREFIX")
    mkdir -p "$BIN_DIR"
    tmp=$(mktemp "$BIN_DIR/.criu.XXXXXX")
    cat >"$tmp" <<EOF
#!/bin/sh
# Written by criu4j scripts/install-criu.sh: runs CRIU unpacked in
# $PREFIX with its own glibc and libraries.
exec "$PREFIX/usr/lib/$MULTIARCH/$LOADER" --library-path "$libpath" "$PREFIX/usr/sbin/criu" "\$@"
EOF
    chmod 755 "$tmp"
    mv -f "$tmp" "$BIN_DIR/criu"
    log "wrote $BIN_DIR/criu"
}

# ---------------------------------------------------------------- main

# $1, if given, is where `criu` must resolve to on PATH.
verify() {
    hash -r
    local criu v out
    criu=$(command -v criu) || die "criu is not on PATH (is $BIN_DIR in PATH?)"
    if [[ -n ${1:-} && $criu != "$1" ]]; then
        die "$1 was installed but $criu comes first on PATH; remove it or put $(dirname "$1") earlier"
    fi
    v=$(criu_version_of "$criu")
    version_ok "$v" || die "$criu reports version '${v:-unknown}', need >= $MIN_VERSION"
    if ! out=$("$criu" check 2>&1); then
        echo "$out" >&2
        die "'$criu check' failed: this kernel lacks something CRIU $v needs"
    fi
    log "criu $v at $criu: $(grep -m1 -i 'looks good' <<<"$out" || echo 'check passed')"
}

ensure_test_tools

current=$(command -v criu || true)
if [[ $FORCE_PRIVATE != 1 && -n $current ]] && criu_works "$current"; then
    log "criu $(criu_version_of "$current") at $current works; nothing to install"
    exit 0
fi
if [[ -z $current ]]; then
    log "no criu on PATH"
elif [[ $FORCE_PRIVATE != 1 ]]; then
    log "criu at $current is older than $MIN_VERSION or fails 'criu check'"
fi

if [[ $FORCE_PRIVATE != 1 ]] && distro_criu_ok; then
    apt_install criu
    # A private wrapper from an earlier run would shadow the package.
    if [[ -x $BIN_DIR/criu && $(command -v criu) == "$BIN_DIR/criu" ]] &&
        grep -q 'criu4j scripts/install-criu.sh' "$BIN_DIR/criu"; then
        rm -f "$BIN_DIR/criu"
    fi
else
    if [[ $FORCE_PRIVATE == 1 ]]; then
        log "CRIU4J_FORCE_PRIVATE=1: using Debian $SUITE's criu in a private prefix"
    else
        log "the distribution offers no criu >= $MIN_VERSION; using Debian $SUITE's in a private prefix"
    fi
    install_private
    verify "$BIN_DIR/criu"
    exit 0
fi

verify

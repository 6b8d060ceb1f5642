#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (JDK, Maven, CRIU), then unit tests (fake CRIU)
# and the real-CRIU integration tests (JUnit tag "criu"). With CI=true a missing or broken CRIU
# fails the run instead of skipping the real-CRIU tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

required=false
[[ ${CI:-} == true ]] && required=true
exec mvn -B -ntp verify -Pcriu -Dcriu.required="$required" "$@" </dev/null

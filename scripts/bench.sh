#!/usr/bin/env bash
# `make bench`: build the functions (Lambda zips for the sizes, host
# bootstraps to run), start the test bed (emulator, databases, RIE), measure
# with cmd/bench, then stop what it started and say what it left running
# (KEEP_TESTBED=1 leaves it all running). BENCH_N sets the number of fresh
# processes per function (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/session.sh
. scripts/lib/session.sh

session_start
# shellcheck source=/dev/null
. .testbed/env
make --no-print-directory build >/dev/null
make --no-print-directory build-local >/dev/null
go run ./cmd/bench -n "${BENCH_N:-10}" "$@"

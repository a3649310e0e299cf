#!/usr/bin/env bash
# `make bench`: build the functions (Lambda zips for the sizes, host
# bootstraps to run), start the test bed, and measure with cmd/bench.
# BENCH_N sets the number of fresh processes per function (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/testbed.sh up >/dev/null
# shellcheck source=/dev/null
. .testbed/env
make --no-print-directory build >/dev/null
make --no-print-directory build-local >/dev/null
go run ./cmd/bench -n "${BENCH_N:-10}" "$@"

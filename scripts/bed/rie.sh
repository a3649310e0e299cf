#!/usr/bin/env bash
# The AWS Lambda Runtime Interface Emulator (aws-lambda-rie), built from the Go
# module proxy at a pinned version into .testbed/bin. Nothing runs between
# tests: the tests start one per function process (internal/localrun). `up`
# builds it once and proves it with one invoke of a tiny shell bootstrap on
# 127.0.0.1:$RIE_SMOKE_PORT/$RIE_SMOKE_API_PORT (19080/19001); `down` keeps the build.
set -euo pipefail
NAME=rie
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"

MODULE="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
VERSION="v0.0.0-20261030222936-bef5c4ba774d"
BIN="$TB/bin/aws-lambda-rie"
LOG="$TB/rie-smoke.log"

built() { [[ -x "$BIN" ]] && [[ "$(cat "$BIN.version" 2>/dev/null)" == "$VERSION" ]]; }

up() {
	local tmp
	if ! built; then
		command -v go >/dev/null || die "go is not on PATH: install Go 1.26 (https://go.dev/doc/install)"
		log "building aws-lambda-rie@$VERSION"
		mkdir -p "$TB/bin"
		# `go install pkg@version` ignores the current module; run it outside
		# ours, with a neutral GOFLAGS.
		tmp="$(mktemp -d)"
		(cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$TB/bin" go install "$MODULE@$VERSION") >"$TB/rie-build.log" 2>&1 ||
			start_failed "go install $MODULE@$VERSION" "$TB/rie-build.log"
		rmdir "$tmp"
		smoke
		echo "$VERSION" >"$BIN.version"
	fi
	echo "export RIE_BIN=$BIN" >"$ENVD/$NAME.env"
}

# aws-lambda-rie has no --help (unknown flags are ignored and it just
# starts), so prove it by running a shell bootstrap under it, invoked once.
smoke() {
	local dir port="${RIE_SMOKE_PORT:-19080}" api="${RIE_SMOKE_API_PORT:-19001}" pid out=""
	check_port RIE_SMOKE_PORT "$port"
	check_port RIE_SMOKE_API_PORT "$api"
	port_free "$port" "the aws-lambda-rie smoke test (RIE_SMOKE_PORT)"
	port_free "$api" "the aws-lambda-rie smoke test (RIE_SMOKE_API_PORT)"
	dir="$(mktemp -d)"
	cat >"$dir/bootstrap" <<'BOOT'
#!/bin/sh
set -eu
h="$(mktemp)"
while :; do
	body="$(curl -sS -D "$h" "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next")"
	id="$(tr -d '\r' <"$h" | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id"{print $2}')"
	curl -sS -X POST -d "{\"echo\":$body}" "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/$id/response" >/dev/null
done
BOOT
	chmod +x "$dir/bootstrap"
	setsid "$BIN" --runtime-interface-emulator-address "127.0.0.1:$port" \
		--runtime-api-address "127.0.0.1:$api" "$dir/bootstrap" >"$LOG" 2>&1 </dev/null &
	pid=$!
	for _ in $(seq 1 40); do
		out="$(curl -fsS --max-time 5 -d '{"ping":1}' \
			"http://127.0.0.1:$port/2015-03-31/functions/function/invocations" 2>/dev/null)" && break
		sleep 0.25
	done
	kill -TERM -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
	[[ "$out" == *'"ping":1'* ]] || start_failed "aws-lambda-rie (smoke invoke got: ${out:-nothing})" "$LOG"
	log "aws-lambda-rie works (smoke invoke returned $out)"
}

down() { rm -f "$ENVD/$NAME.env"; }

status() {
	if built; then
		echo "built   $BIN ($VERSION; runs only inside tests)"
	else
		echo "down    (not built)"
		return 1
	fi
}

server_main "$@"

#!/usr/bin/env bash
# Local AWS testbed: an AWS API emulator (LocalStack host mode, or moto) plus the
# AWS Lambda Runtime Interface Emulator (aws-lambda-rie), all without Docker.
#
#   scripts/testbed.sh up       start (or reuse) the emulator, build RIE, write .testbed/env
#   scripts/testbed.sh down     stop the emulator (whole process group)
#   scripts/testbed.sh status   print whether it is up
#
# Environment:
#   EMULATOR=localstack|moto   (default localstack). With LocalStack, a moto server
#                              also runs, for the services LocalStack's free edition
#                              lacks (RDS, ACM Private CA): .testbed/env points the
#                              SDK's AWS_ENDPOINT_URL_RDS and AWS_ENDPOINT_URL_ACM_PCA at it.
#   LOCALSTACK_PORT=4566  MOTO_PORT=4567
#   LOCALSTACK_PYTHON=/path/to/python3.13   (default: python3.13 on PATH or from pyenv)
#   TESTBED_START_TIMEOUT=120  seconds to wait for the emulator to become healthy
#
# Everything lives in .testbed/ (git-ignored). Source .testbed/env afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB="$ROOT/.testbed"
LIB="$ROOT/scripts/lib"

LOCALSTACK_VERSION="4.14.0"
RIE_MODULE="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
RIE_VERSION="v0.0.0-20261030222936-bef5c4ba774d"
LS_SERVICES="secretsmanager,kms,iam,sts,acm,lambda"

EMULATOR="${EMULATOR:-localstack}"
LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
MOTO_PORT="${MOTO_PORT:-4567}"
START_TIMEOUT="${TESTBED_START_TIMEOUT:-120}"

PID_FILE="$TB/emulator.pid"
COMPANION_PID_FILE="$TB/companion-moto.pid"
KIND_FILE="$TB/emulator.kind"
VENV="$TB/venv"
RIE_BIN="$TB/bin/aws-lambda-rie"

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }

port_of() {
	case "$1" in
	localstack) echo "$LOCALSTACK_PORT" ;;
	moto) echo "$MOTO_PORT" ;;
	*) die "unknown EMULATOR '$1' (want localstack or moto)" ;;
	esac
}

endpoint_of() { echo "http://127.0.0.1:$(port_of "$1")"; }

log_of() { echo "$TB/$1.log"; }

# health_ok KIND: true when the emulator answers and (LocalStack) secretsmanager is ready.
health_ok() {
	local ep body
	ep="$(endpoint_of "$1")"
	case "$1" in
	localstack)
		body="$(curl -fsS --max-time 2 "$ep/_localstack/health" 2>/dev/null)" || return 1
		printf '%s' "$body" | grep -Eq '"secretsmanager": *"(available|running)"'
		;;
	moto)
		curl -fsS --max-time 2 -o /dev/null "$ep/moto-api/" 2>/dev/null
		;;
	esac
}

pid_alive() {
	local pid
	[[ -f "$PID_FILE" ]] || return 1
	pid="$(cat "$PID_FILE")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

running_kind() { cat "$KIND_FILE" 2>/dev/null || true; }

is_up() {
	local kind
	kind="$(running_kind)"
	[[ -n "$kind" ]] && pid_alive && health_ok "$kind"
}

port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- LocalStack

# LocalStack 4.14.0 needs Python >= 3.13 in practice (PEP 695 syntax, warnings.deprecated),
# although its metadata says >= 3.10.
find_python() {
	local cand root v
	if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then
		echo "$LOCALSTACK_PYTHON"
		return
	fi
	for cand in python3.13 python3.14; do
		if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys' >/dev/null 2>&1; then
			command -v "$cand"
			return
		fi
	done
	if command -v pyenv >/dev/null 2>&1; then
		root="$(pyenv root)"
		for v in "$root"/versions/3.13*/bin/python3.13 "$root"/versions/3.14*/bin/python3.14; do
			if [[ -x "$v" ]]; then
				echo "$v"
				return
			fi
		done
	fi
	die "LocalStack $LOCALSTACK_VERSION needs Python 3.13 (none found; set LOCALSTACK_PYTHON)"
}

install_localstack() {
	local py stamp want start
	py="$(find_python)"
	want="localstack-core==$LOCALSTACK_VERSION $("$py" -c 'import sys; print(sys.version.split()[0])') $(sha256sum "$LIB/localstack-constraints.txt" | cut -c1-16)"
	stamp="$VENV/.testbed-stamp"
	if [[ -x "$VENV/bin/python" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
		log "LocalStack $LOCALSTACK_VERSION already installed in $VENV"
		return
	fi
	log "installing localstack-core[runtime]==$LOCALSTACK_VERSION into $VENV (python: $py)"
	start=$SECONDS
	rm -rf "$VENV"
	"$py" -m venv "$VENV"
	mkdir -p "$TB/pip-cache"
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
		--cache-dir "$TB/pip-cache" \
		--constraint "$LIB/localstack-constraints.txt" \
		"localstack-core[runtime]==$LOCALSTACK_VERSION"
	echo "$want" >"$stamp"
	log "installed in $((SECONDS - start))s"
}

start_localstack() {
	local fs="$TB/localstack-fs"
	rm -rf "$fs"
	mkdir -p "$fs"
	# OVERRIDE_IN_DOCKER=0: this machine has /.dockerenv, which would make LocalStack use
	#   /var/lib/localstack and /tmp/localstack; host mode keeps everything under FILESYSTEM_ROOT.
	# DNS_ADDRESS=0: no DNS server on :53. SKIP_SSL_CERT_DOWNLOAD/DISABLE_EVENTS: no internet.
	env \
		GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" \
		SERVICES="$LS_SERVICES" \
		OVERRIDE_IN_DOCKER=0 \
		FILESYSTEM_ROOT="$fs" \
		LOCALSTACK_VOLUME_DIR="$fs/var/lib/localstack" \
		DNS_ADDRESS=0 \
		SKIP_SSL_CERT_DOWNLOAD=1 \
		DISABLE_EVENTS=1 \
		LOCALSTACK_CLI=0 \
		PERSISTENCE=0 \
		setsid "$VENV/bin/python" -m localstack.runtime.main \
		>"$(log_of localstack)" 2>&1 </dev/null &
	echo $! >"$PID_FILE"
}

# -------------------------------------------------------------------- moto

start_moto() {
	command -v moto_server >/dev/null 2>&1 || die "moto_server not found (pip install 'moto[server]')"
	setsid moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$(log_of moto)" 2>&1 </dev/null &
	echo $! >"$PID_FILE"
}

configure_moto() {
	curl -fsS -X POST -H 'Content-Type: application/json' \
		-d '{"lambda":{"use_docker":false}}' \
		"$(endpoint_of moto)/moto-api/config" >/dev/null
}

# A moto server beside LocalStack, for RDS and ACM Private CA.
companion_up() {
	local pid deadline
	if [[ -f "$COMPANION_PID_FILE" ]] && kill -0 "$(cat "$COMPANION_PID_FILE")" 2>/dev/null && health_ok moto; then
		log "companion moto already up at $(endpoint_of moto)"
		configure_moto
		return
	fi
	companion_down
	if port_busy "$MOTO_PORT"; then
		die "port $MOTO_PORT (companion moto) is in use by another process"
	fi
	command -v moto_server >/dev/null 2>&1 || die "moto_server not found (pip install 'moto[server]')"
	setsid moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$TB/companion-moto.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$COMPANION_PID_FILE"
	deadline=$((SECONDS + START_TIMEOUT))
	until health_ok moto; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			tail -n 40 "$TB/companion-moto.log" >&2 || true
			die "companion moto did not start"
		fi
		sleep 0.3
	done
	configure_moto
	log "companion moto (RDS, ACM PCA) up at $(endpoint_of moto)"
}

companion_down() {
	local pid i
	[[ -f "$COMPANION_PID_FILE" ]] || return 0
	pid="$(cat "$COMPANION_PID_FILE")"
	if [[ -n "$pid" ]] && kill -0 -- "-$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || true
		for ((i = 0; i < 20; i++)); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$COMPANION_PID_FILE"
}

# ------------------------------------------------------------------ common

wait_healthy() {
	local kind="$1" deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! pid_alive; then
			log "$kind exited during startup; log tail:"
			tail -n 40 "$(log_of "$kind")" >&2 || true
			return 1
		fi
		if health_ok "$kind"; then
			return 0
		fi
		sleep 0.5
	done
	log "$kind not healthy after ${START_TIMEOUT}s; log tail:"
	tail -n 40 "$(log_of "$kind")" >&2 || true
	return 1
}

smoke_call() {
	local out
	if ! out="$(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
		aws --endpoint-url "$(endpoint_of "$1")" secretsmanager list-secrets --output json 2>&1)"; then
		log "secretsmanager list-secrets failed: $out"
		return 1
	fi
}

stop_emulator() {
	local pid i
	if [[ -f "$PID_FILE" ]]; then
		pid="$(cat "$PID_FILE")"
		if [[ -n "$pid" ]] && kill -0 -- "-$pid" 2>/dev/null; then
			log "stopping $(running_kind) (process group $pid)"
			kill -TERM -- "-$pid" 2>/dev/null || true
			# LocalStack shuts its services down on SIGTERM; that takes a few seconds.
			for ((i = 0; i < 60; i++)); do
				kill -0 -- "-$pid" 2>/dev/null || break
				sleep 0.5
			done
			if kill -0 -- "-$pid" 2>/dev/null; then
				log "process group $pid still alive after 30s, sending SIGKILL"
				kill -KILL -- "-$pid" 2>/dev/null || true
				sleep 0.5
			fi
		fi
	fi
	rm -f "$PID_FILE" "$KIND_FILE"
}

build_rie() {
	local tmp
	if [[ -x "$RIE_BIN" ]] && [[ "$(cat "$RIE_BIN.version" 2>/dev/null)" == "$RIE_VERSION" ]]; then
		log "aws-lambda-rie already built: $RIE_BIN"
		return
	fi
	log "building aws-lambda-rie@$RIE_VERSION"
	mkdir -p "$TB/bin"
	# `go install pkg@version` ignores the current module; run it outside our module and
	# with a neutral GOFLAGS so a -mod=vendor or similar setting cannot interfere.
	tmp="$(mktemp -d)"
	(cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$TB/bin" go install "$RIE_MODULE@$RIE_VERSION")
	rmdir "$tmp"
	echo "$RIE_VERSION" >"$RIE_BIN.version"
	verify_rie
}

# aws-lambda-rie has no --help (unknown flags are ignored and it just starts), so verify it by
# running a tiny shell bootstrap under it and invoking it once.
verify_rie() {
	local dir port api pid out
	dir="$(mktemp -d)"
	port="${RIE_SMOKE_PORT:-19080}"
	api="${RIE_SMOKE_API_PORT:-19001}"
	cat >"$dir/bootstrap" <<'EOF'
#!/bin/sh
set -eu
h="$(mktemp)"
while :; do
	body="$(curl -sS -D "$h" "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next")"
	id="$(tr -d '\r' <"$h" | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id"{print $2}')"
	curl -sS -X POST -d "{\"echo\":$body}" "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/$id/response" >/dev/null
done
EOF
	chmod +x "$dir/bootstrap"
	setsid "$RIE_BIN" --runtime-interface-emulator-address "127.0.0.1:$port" \
		--runtime-api-address "127.0.0.1:$api" "$dir/bootstrap" >"$TB/rie-smoke.log" 2>&1 </dev/null &
	pid=$!
	out=""
	for _ in $(seq 1 40); do
		if out="$(curl -fsS --max-time 5 -d '{"ping":1}' \
			"http://127.0.0.1:$port/2015-03-31/functions/function/invocations" 2>/dev/null)"; then
			break
		fi
		sleep 0.25
	done
	kill -TERM -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
	if [[ "$out" != *'"ping":1'* ]]; then
		cat "$TB/rie-smoke.log" >&2 || true
		rm -f "$RIE_BIN.version"
		die "aws-lambda-rie smoke invoke failed (got: ${out:-nothing})"
	fi
	log "aws-lambda-rie works (smoke invoke returned $out)"
}

write_env() {
	local ep
	ep="$(endpoint_of "$EMULATOR")"
	cat >"$TB/env" <<EOF
export AWS_ENDPOINT_URL=$ep
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export EMULATOR=$EMULATOR
export RIE_BIN=$RIE_BIN
EOF
	if [[ "$EMULATOR" == localstack ]]; then
		cat >>"$TB/env" <<EOF
export AWS_ENDPOINT_URL_RDS=$(endpoint_of moto)
export AWS_ENDPOINT_URL_ACM_PCA=$(endpoint_of moto)
EOF
	else
		echo "unset AWS_ENDPOINT_URL_RDS AWS_ENDPOINT_URL_ACM_PCA" >>"$TB/env"
	fi
	cat "$TB/env"
}

cmd_up() {
	local kind start
	port_of "$EMULATOR" >/dev/null
	mkdir -p "$TB"
	kind="$(running_kind)"
	if [[ -n "$kind" ]] && pid_alive && [[ "$kind" != "$EMULATOR" ]]; then
		log "$kind is running but EMULATOR=$EMULATOR was asked for; stopping $kind"
		stop_emulator
	fi
	if is_up; then
		log "$EMULATOR already up at $(endpoint_of "$EMULATOR") (pid $(cat "$PID_FILE")), reusing it"
	else
		stop_emulator
		if port_busy "$(port_of "$EMULATOR")"; then
			die "port $(port_of "$EMULATOR") is in use by another process"
		fi
		[[ "$EMULATOR" == localstack ]] && install_localstack
		log "starting $EMULATOR on $(endpoint_of "$EMULATOR")"
		start=$SECONDS
		echo "$EMULATOR" >"$KIND_FILE"
		"start_$EMULATOR"
		if ! wait_healthy "$EMULATOR"; then
			stop_emulator
			die "$EMULATOR did not become healthy"
		fi
		log "$EMULATOR healthy after $((SECONDS - start))s"
	fi
	if [[ "$EMULATOR" == moto ]]; then
		configure_moto
	else
		companion_up
	fi
	smoke_call "$EMULATOR" || die "emulator is up but a real API call failed"
	build_rie
	write_env
}

cmd_down() {
	stop_emulator
	companion_down
	log "down"
}

cmd_status() {
	local kind
	kind="$(running_kind)"
	if [[ -n "$kind" ]] && is_up; then
		echo "up: $kind at $(endpoint_of "$kind") (pid $(cat "$PID_FILE"))"
	elif pid_alive; then
		echo "unhealthy: ${kind:-unknown} process $(cat "$PID_FILE") is running but not answering"
		return 1
	else
		echo "down"
		return 1
	fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac

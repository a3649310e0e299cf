#!/usr/bin/env bash
# moto's server on 127.0.0.1:$MOTO_PORT (default 4567): the AWS API emulator
# when EMULATOR=moto, and beside LocalStack for the APIs LocalStack's free
# edition lacks (RDS, ACM Private CA). One process serves both roles, so
# switching EMULATOR reuses it. Its Lambda runs no code (use_docker false).
#
# `moto_server` from PATH, else moto[server]==$MOTO_VERSION installed from PyPI
# into .testbed/moto-venv with python3 (3.9 or newer).
#
#   MOTO_PORT=4567
set -euo pipefail
NAME=moto
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"

MOTO_VERSION=5.2.1
PORT="${MOTO_PORT:-4567}"
LOG="$TB/moto.log"
VENV="$TB/moto-venv"

moto_bin() {
	if [[ -x "$VENV/bin/moto_server" ]]; then
		echo "$VENV/bin/moto_server"
	elif command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1; then
		command -v moto_server
	else
		log "moto_server not found: installing moto[server]==$MOTO_VERSION into $VENV"
		command -v python3 >/dev/null || die "python3 (3.9 or newer) is needed to install moto: apt-get install python3 python3-venv"
		python3 -m venv "$VENV" || die "python3 -m venv failed: apt-get install python3-venv"
		"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
			--cache-dir "$TB/pip-cache" "moto[server]==$MOTO_VERSION" ||
			die "pip could not install moto[server]==$MOTO_VERSION (see above)"
		echo "$VENV/bin/moto_server"
	fi
}

healthy() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$PORT/moto-api/"; }

configure() {
	curl -fsS --max-time 5 -X POST -H 'Content-Type: application/json' \
		-d '{"lambda":{"use_docker":false}}' "http://127.0.0.1:$PORT/moto-api/config" >/dev/null
}

up() {
	local pid bin start
	check_port MOTO_PORT "$PORT"
	pid="$(pid_of $NAME)"
	if group_alive "$pid" && healthy; then
		log "up at http://127.0.0.1:$PORT (pid $pid), reusing it"
	else
		stop_group $NAME 10
		port_free "$PORT" "moto (MOTO_PORT)"
		bin="$(moto_bin)"
		start=$SECONDS
		setsid "$bin" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
		pid=$!
		echo "$pid" >"$RUN/$NAME.pid"
		wait_until "moto" "$LOG" "$pid" healthy
		log "up at http://127.0.0.1:$PORT after $((SECONDS - start))s (log: $LOG)"
	fi
	configure || start_failed "moto (healthy, but POST /moto-api/config failed)" "$LOG"
	aws_call "http://127.0.0.1:$PORT" secretsmanager.ListSecrets >/dev/null ||
		start_failed "moto (healthy, but a Secrets Manager call failed)" "$LOG"
	echo "export MOTO_ENDPOINT=http://127.0.0.1:$PORT" >"$ENVD/$NAME.env"
}

down() { stop_group $NAME 10; }

status() {
	local pid
	pid="$(pid_of $NAME)"
	if ! group_alive "$pid"; then
		echo "down"
		return 1
	elif healthy; then
		echo "up      http://127.0.0.1:$PORT (pid $pid, log $LOG)"
	else
		echo "unhealthy: pid $pid runs but http://127.0.0.1:$PORT/moto-api/ does not answer (log $LOG)"
		return 2
	fi
}

server_main "$@"

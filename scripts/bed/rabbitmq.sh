#!/usr/bin/env bash
# RabbitMQ for the functions/rabbitmq (and provider's RabbitMQ configuration)
# tests, in the bed's conventions (scripts/bed/README.md).
# scripts/rabbitmq.sh does the work: install from Debian when missing, configure,
# start on 127.0.0.1 below 32768 after checking the ports are free, write
# .testbed/rabbitmq.env; its header lists the ports and their variables. This
# adapter records its pid for `down` and the loopback test, and hands its
# settings to scripts/testbed.sh.
set -euo pipefail
NAME=rabbitmq
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
SCRIPT="$ROOT/scripts/rabbitmq.sh"
PIDFILE="$TB/rabbitmq/rabbit.pid"
LOGFILE="$TB/rabbitmq/log/stdout.log"

up() {
	"$SCRIPT" up || start_failed "RabbitMQ" "$LOGFILE"
	cp "$PIDFILE" "$RUN/$NAME.pid"
	cp "$TB/rabbitmq.env" "$ENVD/$NAME.env"
	chmod 600 "$ENVD/$NAME.env"
}

down() {
	"$SCRIPT" down
	rm -f "$RUN/$NAME.pid" "$ENVD/$NAME.env"
}

status() {
	local line
	if line="$("$SCRIPT" status 2>/dev/null)"; then
		echo "up      ${line#up: }"
	else
		echo "${line:-down}"
		return 1
	fi
}

server_main "$@"

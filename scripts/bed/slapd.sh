#!/usr/bin/env bash
# OpenLDAP slapd for the functions/directory (LDAP) tests, in the bed's
# conventions (scripts/bed/README.md).
# scripts/slapd.sh does the work: install from Debian when missing, configure,
# start on 127.0.0.1 below 32768 after checking the ports are free, write
# .testbed/slapd.env; its header lists the ports and their variables. This
# adapter records its pid for `down` and the loopback test, and hands its
# settings to scripts/testbed.sh.
set -euo pipefail
NAME=slapd
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
SCRIPT="$ROOT/scripts/slapd.sh"
PIDFILE="$TB/slapd/slapd.pid"
LOGFILE="$TB/slapd/slapd.log"

up() {
	"$SCRIPT" up || start_failed "OpenLDAP slapd" "$LOGFILE"
	cp "$PIDFILE" "$RUN/$NAME.pid"
	cp "$TB/slapd.env" "$ENVD/$NAME.env"
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

#!/usr/bin/env bash
# PostgreSQL 15 for the PostgreSQL rotation tests, on 127.0.0.1:$PG_PORT
# (default 15432), scram-sha-256, TLS from the test CA. A private instance
# with its data under .testbed/postgres, never the system service. As root (as
# CI runs) it runs as the user "postgres" (created when missing), and when
# that user cannot reach the checkout (a clone under /root, mode 700) its
# directory is /var/tmp/secrets-rotation-pg-<hash of the checkout's path>.
#
#   PG_PORT=15432
set -euo pipefail
NAME=postgres
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
# shellcheck source=../lib/dbca.sh
. "$LIB/dbca.sh"

PORT="${PG_PORT:-15432}"
PG_BIN=/usr/lib/postgresql/15/bin
PG_USER=postgres
PG_DIR="$TB/postgres"

find_pg_bin() {
	local d
	for d in "$PG_BIN" /usr/local/bin; do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			PG_BIN="$d"
			return
		fi
	done
	die "initdb/pg_ctl not found in /usr/lib/postgresql/15/bin or /usr/local/bin: apt-get install -y postgresql-15"
}

resolve_pg_dir() {
	if id "$PG_USER" >/dev/null 2>&1 && ! runuser -u "$PG_USER" -- test -x "$TB" 2>/dev/null; then
		PG_DIR="/var/tmp/secrets-rotation-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
	fi
	PG_DATA="$PG_DIR/data"
	LOG="$PG_DIR/server.log"
}

as_pg() { runuser -u "$PG_USER" -- "$@"; }

running() { [[ -d "$PG_DATA" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

up() {
	local start
	check_port PG_PORT "$PORT"
	find_pg_bin
	make_ca
	if ! id "$PG_USER" >/dev/null 2>&1; then
		log "creating system user $PG_USER"
		useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
	fi
	resolve_pg_dir
	if running; then
		if [[ "$(sed -n 4p "$PG_DATA/postmaster.pid")" == "$PORT" ]]; then
			log "up on 127.0.0.1:$PORT (pid $(head -1 "$PG_DATA/postmaster.pid")), reusing it"
			finish
			return
		fi
		log "running on another port than PG_PORT=$PORT: restarting it"
		down
	fi
	port_free "$PORT" "PostgreSQL (PG_PORT)"
	start=$SECONDS
	# A data directory made with another test CA (a checkout whose .testbed
	# was removed while its /var/tmp directory stayed) is made again.
	if [[ -s "$PG_DATA/PG_VERSION" ]] && ! cmp -s "$CA_DIR/server.crt" "$PG_DIR/server.crt"; then
		log "the data in $PG_DIR was made with another test CA: making it again"
		rm -rf "$PG_DIR"
	fi
	if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
		rm -rf "$PG_DIR"
		mkdir -p "$PG_DIR"
		[[ "$PG_DIR" == "$TB"/* ]] || log "user $PG_USER cannot reach $TB: PostgreSQL's directory is $PG_DIR"
		randpw >"$PG_DIR/admin.pw"
		cp "$CA_DIR/server.crt" "$CA_DIR/server.key" "$CA_DIR/ca.crt" "$PG_DIR/"
		chown -R "$PG_USER" "$PG_DIR"
		chmod 700 "$PG_DIR"
		chmod 600 "$PG_DIR/server.key"
		as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$PG_DIR/admin.pw" \
			--auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
			start_failed "initdb" "$PG_DIR/initdb.log"
		cat >>"$PG_DATA/postgresql.conf" <<-CONF
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$PG_DIR'
			password_encryption = 'scram-sha-256'
			ssl = on
			ssl_cert_file = '$PG_DIR/server.crt'
			ssl_key_file = '$PG_DIR/server.key'
			ssl_ca_file = '$PG_DIR/ca.crt'
			max_connections = 200
			fsync = off
		CONF
		# TLS and plaintext both use SCRAM: the tests check that the function
		# verifies TLS by default and uses plaintext only with "ssl": false.
		cat >"$PG_DATA/pg_hba.conf" <<-CONF
			local   all all                scram-sha-256
			hostssl all all 127.0.0.1/32   scram-sha-256
			host    all all 127.0.0.1/32   scram-sha-256
		CONF
	fi
	# The port and the address are given on the command line, so that a data
	# directory made for another port (or by an older db.sh) follows PG_PORT.
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG" -w -t 60 \
		-o "-p $PORT -c listen_addresses=127.0.0.1" start >/dev/null 2>&1 ||
		start_failed "PostgreSQL" "$LOG"
	log "up on 127.0.0.1:$PORT after $((SECONDS - start))s (log: $LOG)"
	finish
}

finish() {
	head -1 "$PG_DATA/postmaster.pid" >"$RUN/$NAME.pid"
	cat >"$ENVD/$NAME.env" <<-EOF
		export PG_HOST=127.0.0.1
		export PG_PORT=$PORT
		export PG_ADMIN_USER=postgres
		export PG_ADMIN_PASSWORD=$(cat "$PG_DIR/admin.pw")
		export PG_CA_FILE=$CA_DIR/ca.crt
		export PG_LOG_FILE=$LOG
	EOF
	chmod 600 "$ENVD/$NAME.env"
}

down() {
	find_pg_bin
	resolve_pg_dir
	if running; then
		as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
		log "stopped"
	fi
	rm -f "$RUN/$NAME.pid" "$ENVD/$NAME.env"
}

status() {
	find_pg_bin
	resolve_pg_dir
	if running; then
		echo "up      127.0.0.1:$(sed -n 4p "$PG_DATA/postmaster.pid") (pid $(head -1 "$PG_DATA/postmaster.pid"), log $LOG)"
	else
		echo "down"
		return 1
	fi
}

server_main "$@"

#!/usr/bin/env bash
# MariaDB for the MySQL rotation tests, on 127.0.0.1:$MYSQL_PORT (default
# 13306), TLS from the test CA. A private instance with its data under
# .testbed/mariadb, never the system service; it runs with --user=root as CI
# does. A missing mariadbd is installed from Debian (apt-get, as root).
#
#   MYSQL_PORT=13306
set -euo pipefail
NAME=mariadb
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
# shellcheck source=../lib/dbca.sh
. "$LIB/dbca.sh"

PORT="${MYSQL_PORT:-13306}"
MY_DIR="$TB/mariadb"
SOCK="$TB/mariadb.sock"
LOG="$TB/mariadb.err"

install_server() {
	command -v mariadbd >/dev/null 2>&1 && return
	local start=$SECONDS policy=/usr/sbin/policy-rc.d created=0
	((EUID == 0)) || die "mariadbd is missing and installing it needs root: sudo apt-get install -y mariadb-server"
	log "mariadbd missing: installing mariadb-server from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# policy-rc.d keeps the package from starting the system service.
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	apt-get install -y -qq mariadb-server >/dev/null || die "apt-get install mariadb-server failed"
	[[ $created == 1 ]] && rm -f "$policy"
	log "mariadb-server installed in $((SECONDS - start))s"
}

# --protocol=socket: the client would follow MYSQL_HOST (which .testbed/env
# sets, for the tests) to TCP, where root has no access.
client() { mariadb --no-defaults --protocol=socket --socket="$SOCK" -uroot "$@"; }
answers() { client -e 'SELECT 1' >/dev/null 2>&1; }

up() {
	local pid start fresh=0
	check_port MYSQL_PORT "$PORT"
	pid="$(pid_of $NAME)"
	if group_alive "$pid" && answers; then
		if [[ "$(client -N -e 'SELECT @@port')" == "$PORT" ]]; then
			log "up on 127.0.0.1:$PORT (pid $pid), reusing it"
			finish
			return
		fi
		log "running on another port than MYSQL_PORT=$PORT: restarting it"
		down
	fi
	stop_group $NAME 30
	install_server
	make_ca
	port_free "$PORT" "MariaDB (MYSQL_PORT)"
	start=$SECONDS
	if [[ ! -d "$MY_DIR/mysql" ]]; then
		rm -rf "$MY_DIR"
		mkdir -p "$MY_DIR"
		mariadb-install-db --no-defaults --datadir="$MY_DIR" --user=root \
			--auth-root-authentication-method=socket --skip-test-db >"$TB/mariadb-install.log" 2>&1 ||
			start_failed "mariadb-install-db" "$TB/mariadb-install.log"
		fresh=1
	fi
	: >"$LOG"
	setsid mariadbd --no-defaults --datadir="$MY_DIR" --user=root \
		--port="$PORT" --bind-address=127.0.0.1 --socket="$SOCK" \
		--pid-file="$TB/mariadb.pid" --log-error="$LOG" \
		--ssl-ca="$CA_DIR/ca.crt" --ssl-cert="$CA_DIR/server.crt" --ssl-key="$CA_DIR/server.key" \
		--max-connections=300 --skip-name-resolve --innodb-buffer-pool-size=64M \
		--log-warnings=2 \
		>/dev/null 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$RUN/$NAME.pid"
	wait_until "MariaDB" "$LOG" "$pid" answers
	if [[ $fresh == 1 || ! -s "$TB/mariadb-admin.pw" ]]; then
		randpw >"$TB/mariadb-admin.pw"
		chmod 600 "$TB/mariadb-admin.pw"
		client <<-SQL
			CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED BY '$(cat "$TB/mariadb-admin.pw")';
			ALTER USER 'admin'@'%' IDENTIFIED BY '$(cat "$TB/mariadb-admin.pw")';
			GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;
		SQL
	fi
	log "$(client -N -e 'SELECT VERSION()') up on 127.0.0.1:$PORT after $((SECONDS - start))s (log: $LOG)"
	finish
}

finish() {
	cat >"$ENVD/$NAME.env" <<-EOF
		export MYSQL_HOST=127.0.0.1
		export MYSQL_PORT=$PORT
		export MYSQL_ADMIN_USER=admin
		export MYSQL_ADMIN_PASSWORD=$(cat "$TB/mariadb-admin.pw")
		export MYSQL_CA_FILE=$CA_DIR/ca.crt
		export MYSQL_ERROR_LOG=$LOG
	EOF
	chmod 600 "$ENVD/$NAME.env"
}

down() { stop_group $NAME 30; }

status() {
	local pid
	pid="$(pid_of $NAME)"
	if ! group_alive "$pid"; then
		echo "down"
		return 1
	elif answers; then
		echo "up      127.0.0.1:$(client -N -e 'SELECT @@port') (pid $pid, log $LOG)"
	else
		echo "unhealthy: pid $pid runs but does not answer on $SOCK (log $LOG)"
		return 2
	fi
}

server_main "$@"

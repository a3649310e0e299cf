#!/usr/bin/env bash
# Real database servers for the PostgreSQL and MySQL/MariaDB rotation tests.
#
#   scripts/db.sh up     start PostgreSQL 15 on 127.0.0.1:55432 and MariaDB on
#                        127.0.0.1:53306, both with TLS from a test CA, and write
#                        .testbed/db.env (PG_* and MYSQL_* settings the tests read,
#                        and the servers' log files: refused logins are counted there)
#   scripts/db.sh down   stop both and keep nothing running
#
# Both servers are private instances with their data under .testbed/, never the
# system services. It runs as root (as CI does): PostgreSQL refuses to run as
# root, so it runs as the user "postgres" (created when missing); MariaDB runs
# with --user=root. A missing mariadbd is installed from Debian.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB="$ROOT/.testbed"
CA_DIR="$TB/dbca"
PG_DIR="$TB/postgres"
PG_DATA="$PG_DIR/data"
MY_DIR="$TB/mariadb"
MY_SOCK="$TB/mariadb.sock"
PG_PORT="${PG_PORT:-55432}"
MY_PORT="${MYSQL_PORT:-53306}"
PG_BIN=/usr/lib/postgresql/15/bin
PG_USER=postgres

log() { printf '[db.sh] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2fs", b-a}'; }

# randpw prints a random password made only of characters that need no
# quoting in a DSN, a connection string or the shell.
randpw() { openssl rand -hex 16; }

find_pg_bin() {
	for d in "$PG_BIN" /usr/local/bin; do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			PG_BIN="$d"
			return
		fi
	done
	log "initdb/pg_ctl not found in /usr/lib/postgresql/15/bin or /usr/local/bin"
	log "install them: apt-get install -y postgresql-15"
	exit 1
}

make_ca() {
	[[ -s "$CA_DIR/server.crt" ]] && return
	mkdir -p "$CA_DIR"
	log "generating the test CA and a server certificate for 127.0.0.1/localhost"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=secrets-rotation test CA" \
		-keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$CA_DIR/server.key" -out "$CA_DIR/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$CA_DIR/server.ext"
	openssl x509 -req -in "$CA_DIR/server.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
		-CAcreateserial -days 3650 -extfile "$CA_DIR/server.ext" -out "$CA_DIR/server.crt" 2>/dev/null
	chmod 600 "$CA_DIR/ca.key" "$CA_DIR/server.key"
}

# resolve_pg_dir moves the PostgreSQL directory out of the checkout when the
# server user cannot reach it (a checkout under /root, mode 700, say): it
# then lives in /var/tmp, under a name derived from the checkout's path so
# that up and down agree and two checkouts do not collide.
resolve_pg_dir() {
	if id "$PG_USER" >/dev/null 2>&1 && ! runuser -u "$PG_USER" -- test -x "$TB" 2>/dev/null; then
		PG_DIR="/var/tmp/secrets-rotation-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
		PG_DATA="$PG_DIR/data"
	fi
}

pg_up() {
	local t0
	t0="$(now)"
	find_pg_bin
	if ! id "$PG_USER" >/dev/null 2>&1; then
		log "creating system user $PG_USER"
		useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
	fi
	resolve_pg_dir
	if [[ "$PG_DIR" != "$TB"/* ]]; then
		log "user $PG_USER cannot reach $TB: PostgreSQL's directory is $PG_DIR"
	fi
	if runuser -u "$PG_USER" -- "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
		log "PostgreSQL already running"
		return
	fi
	# A data directory made with another test CA (a checkout whose .testbed
	# was removed while its /var/tmp directory stayed) is made again.
	if [[ -s "$PG_DATA/PG_VERSION" ]] && ! cmp -s "$CA_DIR/server.crt" "$PG_DIR/server.crt"; then
		log "PostgreSQL data in $PG_DIR was made with another test CA: making it again"
		rm -rf "$PG_DIR"
	fi
	if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
		rm -rf "$PG_DIR"
		mkdir -p "$PG_DIR"
		randpw >"$PG_DIR/admin.pw"
		cp "$CA_DIR/server.crt" "$CA_DIR/server.key" "$CA_DIR/ca.crt" "$PG_DIR/"
		chown -R "$PG_USER" "$PG_DIR"
		chmod 700 "$PG_DIR"
		chmod 600 "$PG_DIR/server.key"
		runuser -u "$PG_USER" -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres \
			--pwfile="$PG_DIR/admin.pw" --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log"
		cat >>"$PG_DATA/postgresql.conf" <<-EOF
			listen_addresses = '127.0.0.1'
			port = $PG_PORT
			unix_socket_directories = '$PG_DIR'
			password_encryption = 'scram-sha-256'
			ssl = on
			ssl_cert_file = '$PG_DIR/server.crt'
			ssl_key_file = '$PG_DIR/server.key'
			ssl_ca_file = '$PG_DIR/ca.crt'
			max_connections = 200
			fsync = off
		EOF
		# TLS and plaintext both use SCRAM: the tests check that the function
		# verifies TLS by default and uses plaintext only with "ssl": false.
		cat >"$PG_DATA/pg_hba.conf" <<-EOF
			local   all all                scram-sha-256
			hostssl all all 127.0.0.1/32   scram-sha-256
			host    all all 127.0.0.1/32   scram-sha-256
		EOF
	fi
	runuser -u "$PG_USER" -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null
	log "PostgreSQL up on 127.0.0.1:$PG_PORT in $(elapsed "$t0")"
}

pg_down() {
	find_pg_bin
	resolve_pg_dir
	if [[ -d "$PG_DATA" ]] && runuser -u "$PG_USER" -- "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
		runuser -u "$PG_USER" -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
		log "PostgreSQL stopped"
	fi
}

my_install() {
	if command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]]; then
		return
	fi
	local t0
	t0="$(now)"
	log "mariadbd missing: installing mariadb-server from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# policy-rc.d keeps the package from starting the system service.
	local policy=/usr/sbin/policy-rc.d created=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	apt-get install -y -qq mariadb-server >/dev/null
	[[ $created == 1 ]] && rm -f "$policy"
	log "mariadb-server installed in $(elapsed "$t0")"
}

my_client() { mariadb --no-defaults --socket="$MY_SOCK" -uroot "$@"; }

my_up() {
	local t0
	my_install
	t0="$(now)"
	if [[ -S "$MY_SOCK" ]] && my_client -e 'SELECT 1' >/dev/null 2>&1; then
		log "MariaDB already running"
		return
	fi
	local fresh=0
	if [[ ! -d "$MY_DIR/mysql" ]]; then
		rm -rf "$MY_DIR"
		mkdir -p "$MY_DIR"
		mariadb-install-db --no-defaults --datadir="$MY_DIR" --user=root \
			--auth-root-authentication-method=socket --skip-test-db >"$TB/mariadb-install.log" 2>&1
		fresh=1
	fi
	mariadbd --no-defaults --datadir="$MY_DIR" --user=root \
		--port="$MY_PORT" --bind-address=127.0.0.1 --socket="$MY_SOCK" \
		--pid-file="$TB/mariadb.pid" --log-error="$TB/mariadb.err" \
		--ssl-ca="$CA_DIR/ca.crt" --ssl-cert="$CA_DIR/server.crt" --ssl-key="$CA_DIR/server.key" \
		--max-connections=300 --skip-name-resolve --innodb-buffer-pool-size=64M \
		--log-warnings=2 \
		>/dev/null 2>&1 &
	local i
	for i in $(seq 1 120); do
		if my_client -e 'SELECT 1' >/dev/null 2>&1; then break; fi
		sleep 0.25
	done
	if ! my_client -e 'SELECT 1' >/dev/null 2>&1; then
		log "MariaDB did not start; its log:"
		tail -20 "$TB/mariadb.err" >&2 || true
		exit 1
	fi
	if [[ $fresh == 1 || ! -s "$TB/mariadb-admin.pw" ]]; then
		randpw >"$TB/mariadb-admin.pw"
		chmod 600 "$TB/mariadb-admin.pw"
		my_client <<-EOF
			CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED BY '$(cat "$TB/mariadb-admin.pw")';
			ALTER USER 'admin'@'%' IDENTIFIED BY '$(cat "$TB/mariadb-admin.pw")';
			GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;
		EOF
	fi
	log "MariaDB $(my_client -N -e 'SELECT VERSION()') up on 127.0.0.1:$MY_PORT in $(elapsed "$t0")"
}

my_down() {
	if [[ -f "$TB/mariadb.pid" ]]; then
		local pid
		pid="$(cat "$TB/mariadb.pid")"
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
			log "MariaDB stopped"
		fi
		rm -f "$TB/mariadb.pid"
	fi
}

write_env() {
	cat >"$TB/db.env" <<-EOF
		export DB_CA_FILE=$CA_DIR/ca.crt
		export PG_HOST=127.0.0.1
		export PG_PORT=$PG_PORT
		export PG_ADMIN_USER=postgres
		export PG_ADMIN_PASSWORD=$(cat "$PG_DIR/admin.pw")
		export PG_CA_FILE=$CA_DIR/ca.crt
		export PG_LOG_FILE=$PG_DIR/server.log
		export MYSQL_HOST=127.0.0.1
		export MYSQL_PORT=$MY_PORT
		export MYSQL_ADMIN_USER=admin
		export MYSQL_ADMIN_PASSWORD=$(cat "$TB/mariadb-admin.pw")
		export MYSQL_CA_FILE=$CA_DIR/ca.crt
		export MYSQL_ERROR_LOG=$TB/mariadb.err
	EOF
	chmod 600 "$TB/db.env"
	log "wrote $TB/db.env"
}

case "${1:-}" in
up)
	t0="$(now)"
	mkdir -p "$TB"
	chmod 755 "$TB"
	make_ca
	pg_up
	my_up
	write_env
	log "databases up in $(elapsed "$t0")"
	;;
down)
	pg_down
	my_down
	;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac

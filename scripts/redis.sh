#!/usr/bin/env bash
# A real Redis server for the Redis ACL-user rotation tests
# (internal/targets/redis): Debian's redis-server, a private instance with
# its data under .testbed/redis, never the system service.
#
#   scripts/redis.sh up      start it (installing redis-server from Debian when
#                            missing) and write .testbed/redis.env
#   scripts/redis.sh down    stop it
#   scripts/redis.sh status  print whether it is up
#
# Ports, on 127.0.0.1 only, below 32768, checked free before the start:
#   REDIS_PORT=16379       plaintext (for the tests of the explicit "no TLS" opt-out)
#   REDIS_TLS_PORT=16380   TLS, certificate from the test CA (.testbed/dbca)
#
# The default user is off; an ACL user "admin" (+@all, password random, in
# .testbed/redis.env) stands for the master user. Every command is written
# to the slow log (slowlog-log-slower-than 0) so that the tests can check
# that no password ever reaches it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB="$ROOT/.testbed"
LOG_TAG=redis.sh
# shellcheck source=lib/testbed-common.sh
. "$ROOT/scripts/lib/testbed-common.sh"

DIR="$TB/redis"
ENV_FILE="$TB/redis.env"
PORT="${REDIS_PORT:-16379}"
TLS_PORT="${REDIS_TLS_PORT:-16380}"
PID_FILE="$DIR/redis.pid"

install() {
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return
	apt_install redis-server redis-tools
}

# cli runs redis-cli as admin over TLS; the password goes through the
# environment, never argv.
cli() {
	REDISCLI_AUTH="$(cat "$DIR/admin.pw")" redis-cli --no-auth-warning --user admin \
		-h 127.0.0.1 -p "$TLS_PORT" --tls --cacert "$CA_DIR/ca.crt" "$@"
}

running() {
	[[ -s $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

healthy() { [[ "$(cli PING 2>/dev/null)" == PONG ]]; }

up() {
	local t0 hash
	t0="$(now)"
	mkdir -p "$TB"
	install
	make_ca
	if running; then
		healthy || die "redis-server $(cat "$PID_FILE") runs but does not answer; try: $0 down"
		log "Redis already running"
		write_env
		return
	fi
	check_port "$PORT"
	check_port "$TLS_PORT"
	mkdir -p "$DIR"
	chmod 700 "$DIR"
	[[ -s "$DIR/admin.pw" ]] || { randpw >"$DIR/admin.pw"; chmod 600 "$DIR/admin.pw"; }
	hash="$(tr -d '\n' <"$DIR/admin.pw" | sha256sum | cut -d' ' -f1)"
	# The ACL file is written anew at every start: users the tests made are
	# gone after a restart, which is what a test bed wants.
	cat >"$DIR/users.acl" <<-EOF_ACL
		user default off resetpass -@all
		user admin on #$hash ~* &* +@all
	EOF_ACL
	chmod 600 "$DIR/users.acl"
	cat >"$DIR/redis.conf" <<-EOF_CONF
		bind 127.0.0.1
		protected-mode yes
		port $PORT
		tls-port $TLS_PORT
		tls-cert-file $CA_DIR/server.crt
		tls-key-file $CA_DIR/server.key
		tls-ca-cert-file $CA_DIR/ca.crt
		tls-auth-clients no
		daemonize yes
		pidfile $PID_FILE
		logfile $DIR/redis.log
		loglevel verbose
		dir $DIR
		aclfile $DIR/users.acl
		save ""
		appendonly no
		maxclients 1000
		slowlog-log-slower-than 0
		slowlog-max-len 4096
		acllog-max-len 1024
		enable-debug-command no
	EOF_CONF
	redis-server "$DIR/redis.conf"
	local i
	for i in $(seq 1 100); do
		healthy && break
		sleep 0.1
	done
	healthy || { tail -20 "$DIR/redis.log" >&2; die "redis-server did not answer on 127.0.0.1:$TLS_PORT"; }
	listens_only_on_loopback "$PORT" && listens_only_on_loopback "$TLS_PORT" ||
		die "redis-server listens beyond 127.0.0.1: $(ss -Hltn "( sport = :$PORT or sport = :$TLS_PORT )")"
	write_env
	log "Redis $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') up on 127.0.0.1:$PORT, TLS 127.0.0.1:$TLS_PORT in $(elapsed "$t0")"
}

write_env() {
	cat >"$ENV_FILE" <<-EOF_ENV
		export REDIS_HOST=127.0.0.1
		export REDIS_PORT=$PORT
		export REDIS_TLS_PORT=$TLS_PORT
		export REDIS_ADMIN_USER=admin
		export REDIS_ADMIN_PASSWORD=$(cat "$DIR/admin.pw")
		export REDIS_CA_FILE=$CA_DIR/ca.crt
		export REDIS_LOG_FILE=$DIR/redis.log
	EOF_ENV
	chmod 600 "$ENV_FILE"
	log "wrote $ENV_FILE"
}

down() {
	running || { rm -f "$PID_FILE"; return 0; }
	local pid
	pid="$(cat "$PID_FILE")"
	kill "$pid"
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && die "redis-server $pid still running after 10s"
	rm -f "$PID_FILE"
	log "Redis stopped"
}

status() {
	if running && healthy; then
		echo "up: redis-server $(cat "$PID_FILE") on 127.0.0.1:$PORT, TLS 127.0.0.1:$TLS_PORT"
	elif running; then
		echo "unhealthy: redis-server $(cat "$PID_FILE") runs but does not answer"
		return 1
	else
		echo "down"
		return 1
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac

#!/usr/bin/env bash
# A real RabbitMQ broker for the RabbitMQ user rotation tests
# (internal/targets/rabbitmq): Debian's rabbitmq-server with the management
# plugin, a private node with its data under .testbed/rabbitmq, never the
# system service. It runs as root, like the MariaDB of scripts/db.sh.
#
#   scripts/rabbitmq.sh up      start it (installing rabbitmq-server from Debian
#                               when missing) and write .testbed/rabbitmq.env
#   scripts/rabbitmq.sh down    stop it and its epmd
#   scripts/rabbitmq.sh status  print whether it is up
#
# Ports, on 127.0.0.1 only, below 32768, checked free before the start:
#   RABBITMQ_AMQPS_PORT=16671  AMQP 0-9-1 over TLS (no plaintext AMQP listener)
#   RABBITMQ_MGMT_PORT=16672   management HTTP API over TLS (no plaintext one)
#   RABBITMQ_DIST_PORT=16673   Erlang distribution
#   RABBITMQ_EPMD_PORT=16369   epmd, this node's own (not the shared 4369), so
#                              that down can stop it without touching another's;
#                              epmd adds ::1 to 127.0.0.1 by itself (loopback too)
# Certificates come from the test CA (.testbed/dbca). The node uses no CLI
# tool (rabbitmqctl would open distribution ports of its own): the admin
# user is created by default_user on the first boot, health is read from
# the management API. The log (debug level, so that a test can check that
# no password reaches even that level) is .testbed/rabbitmq/log/rabbit.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB="$ROOT/.testbed"
LOG_TAG=rabbitmq.sh
# shellcheck source=lib/testbed-common.sh
. "$ROOT/scripts/lib/testbed-common.sh"

DIR="$TB/rabbitmq"
ENV_FILE="$TB/rabbitmq.env"
AMQPS_PORT="${RABBITMQ_AMQPS_PORT:-16671}"
MGMT_PORT="${RABBITMQ_MGMT_PORT:-16672}"
DIST_PORT="${RABBITMQ_DIST_PORT:-16673}"
EPMD_PORT="${RABBITMQ_EPMD_PORT:-16369}"
SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
PID_FILE="$DIR/rabbit.pid"
LOG_FILE="$DIR/log/rabbit.log"
START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-120}"

install() {
	[[ -x $SERVER ]] && return
	apt_install rabbitmq-server
}

# node_env sets what the rabbitmq-server script and the Erlang VM read:
# every path under $DIR (nothing from /etc/rabbitmq or /var/lib/rabbitmq),
# the distribution and epmd on loopback.
node_env() {
	export HOME="$DIR" # the Erlang cookie
	export RABBITMQ_NODENAME=rabbit@localhost
	export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
	export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
	export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
	export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
	export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
	export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
	export RABBITMQ_LOG_BASE="$DIR/log"
	export RABBITMQ_LOGS="$LOG_FILE"
	export RABBITMQ_PID_FILE="$PID_FILE"
	export RABBITMQ_DIST_PORT="$DIST_PORT"
	export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
	export ERL_EPMD_ADDRESS=127.0.0.1
	export ERL_EPMD_PORT="$EPMD_PORT"
}

# api PATH: GET on the management API as admin; the password goes to curl
# through its config on stdin, never argv.
api() {
	printf 'user = "admin:%s"\n' "$(cat "$DIR/admin.pw")" |
		curl -fsS --max-time 5 --cacert "$CA_DIR/ca.crt" -K - "https://127.0.0.1:$MGMT_PORT$1"
}

running() { [[ -s $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

healthy() { api /api/health/checks/alarms >/dev/null 2>&1 && port_in_use "$AMQPS_PORT"; }

up() {
	local t0
	t0="$(now)"
	mkdir -p "$TB"
	install
	make_ca
	if running; then
		healthy || die "rabbitmq $(cat "$PID_FILE") runs but its API does not answer; try: $0 down"
		log "RabbitMQ already running"
		write_env
		return
	fi
	check_port "$AMQPS_PORT"
	check_port "$MGMT_PORT"
	check_port "$DIST_PORT"
	if port_in_use "$EPMD_PORT"; then
		# An epmd left by a node that died: reuse it, if it is loopback-only.
		listens_only_on_loopback "$EPMD_PORT" ipv6 && [[ "$(ss -Hltnp "( sport = :$EPMD_PORT )")" == *'"epmd"'* ]] ||
			die "port $EPMD_PORT is in use by something other than a loopback epmd"
	else
		check_port "$EPMD_PORT"
	fi
	mkdir -p "$DIR/log"
	chmod 700 "$DIR"
	[[ -s "$DIR/admin.pw" ]] || { randpw >"$DIR/admin.pw"; chmod 600 "$DIR/admin.pw"; }
	: >"$DIR/rabbitmq-env.conf"
	echo '[].' >"$DIR/advanced.config"
	echo '[rabbitmq_management].' >"$DIR/enabled_plugins"
	# default_user takes effect on the first boot only (an empty database);
	# later boots keep the admin user the first one made.
	cat >"$DIR/rabbitmq.conf" <<-EOF_CONF
		listeners.tcp = none
		listeners.ssl.default = 127.0.0.1:$AMQPS_PORT
		ssl_options.cacertfile = $CA_DIR/ca.crt
		ssl_options.certfile = $CA_DIR/server.crt
		ssl_options.keyfile = $CA_DIR/server.key
		ssl_options.verify = verify_none
		ssl_options.fail_if_no_peer_cert = false
		management.ssl.ip = 127.0.0.1
		management.ssl.port = $MGMT_PORT
		management.ssl.cacertfile = $CA_DIR/ca.crt
		management.ssl.certfile = $CA_DIR/server.crt
		management.ssl.keyfile = $CA_DIR/server.key
		default_user = admin
		default_pass = $(cat "$DIR/admin.pw")
		default_user_tags.administrator = true
		default_permissions.configure = .*
		default_permissions.read = .*
		default_permissions.write = .*
		loopback_users = none
		log.console = false
		log.file.level = debug
		disk_free_limit.absolute = 50MB
	EOF_CONF
	chmod 600 "$DIR/rabbitmq.conf"
	node_env
	setsid "$SERVER" >"$DIR/log/stdout.log" 2>&1 </dev/null &
	local i
	for i in $(seq 1 $((START_TIMEOUT * 4))); do
		healthy && break
		running || [[ $i -lt 40 ]] || { tail -30 "$DIR/log/stdout.log" >&2; die "rabbitmq-server exited"; }
		sleep 0.25
	done
	healthy || { tail -30 "$DIR/log/stdout.log" >&2; die "RabbitMQ did not answer within ${START_TIMEOUT}s"; }
	local p
	for p in "$AMQPS_PORT" "$MGMT_PORT" "$DIST_PORT"; do
		listens_only_on_loopback "$p" || die "port $p is listened on beyond 127.0.0.1: $(ss -Hltn "( sport = :$p )")"
	done
	# epmd listens on the loopback address of each family (127.0.0.1 and
	# ::1) even when told ERL_EPMD_ADDRESS=127.0.0.1; both stay on the machine.
	listens_only_on_loopback "$EPMD_PORT" ipv6 || die "epmd listens beyond loopback: $(ss -Hltn "( sport = :$EPMD_PORT )")"
	# Nothing else of the node's listens: no plaintext AMQP or HTTP port.
	local pid others
	pid="$(cat "$PID_FILE")"
	others="$(ss -Hltnp | grep "pid=$pid," | awk '{print $4}' |
		grep -v -x -e "127.0.0.1:$AMQPS_PORT" -e "127.0.0.1:$MGMT_PORT" -e "127.0.0.1:$DIST_PORT" || true)"
	[[ -z $others ]] || die "the node listens on more than its configured ports: $others"
	write_env
	log "RabbitMQ $(api /api/overview | sed -n 's/.*"rabbitmq_version":"\([^"]*\)".*/\1/p') up: AMQPS 127.0.0.1:$AMQPS_PORT, management https://127.0.0.1:$MGMT_PORT, dist $DIST_PORT, epmd $EPMD_PORT, in $(elapsed "$t0")"
}

write_env() {
	cat >"$ENV_FILE" <<-EOF_ENV
		export RABBITMQ_HOST=127.0.0.1
		export RABBITMQ_AMQPS_PORT=$AMQPS_PORT
		export RABBITMQ_MGMT_PORT=$MGMT_PORT
		export RABBITMQ_MGMT_URL=https://127.0.0.1:$MGMT_PORT
		export RABBITMQ_ADMIN_USER=admin
		export RABBITMQ_ADMIN_PASSWORD=$(cat "$DIR/admin.pw")
		export RABBITMQ_CA_FILE=$CA_DIR/ca.crt
		export RABBITMQ_LOG_FILE=$LOG_FILE
	EOF_ENV
	chmod 600 "$ENV_FILE"
	log "wrote $ENV_FILE"
}

down() {
	if running; then
		local pid
		pid="$(cat "$PID_FILE")"
		kill "$pid"
		for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		if kill -0 "$pid" 2>/dev/null; then
			log "rabbitmq $pid still running after 60s: SIGKILL"
			kill -9 "$pid"
		fi
		log "RabbitMQ stopped"
	fi
	rm -f "$PID_FILE"
	# Our own epmd (its own port): stop it once no node is registered.
	if port_in_use "$EPMD_PORT" && command -v epmd >/dev/null; then
		ERL_EPMD_PORT="$EPMD_PORT" epmd -kill >/dev/null 2>&1 && log "epmd on $EPMD_PORT stopped" ||
			log "epmd on $EPMD_PORT still has nodes registered: left running"
	fi
}

status() {
	if running && healthy; then
		echo "up: rabbitmq $(cat "$PID_FILE"): AMQPS 127.0.0.1:$AMQPS_PORT, management https://127.0.0.1:$MGMT_PORT"
	elif running; then
		echo "unhealthy: rabbitmq $(cat "$PID_FILE") runs but does not answer"
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

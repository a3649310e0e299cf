# shellcheck shell=bash
# Shared by scripts/testbed.sh and the server scripts in scripts/bed/. Sourced,
# never run. A server script defines NAME before sourcing it.
#
# Conventions every server script follows (see scripts/bed/README.md):
#   - its process runs in its own session (setsid) and its pid is written to
#     $RUN/$NAME.pid, so that `down` stops the whole process group and the
#     loopback test (internal/testbed) finds its sockets;
#   - it listens on 127.0.0.1 only, on a port below 32768 taken from an
#     environment variable, after `port_free` said the port is free;
#   - its log is $TB/$NAME.log (or a path it names), printed by `start_failed`;
#   - what clients need is written to $ENVD/$NAME.env (export lines) on up and
#     removed on down; testbed.sh joins these into .testbed/env.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TB="$ROOT/.testbed"
RUN="$TB/run"
ENVD="$TB/env.d"
LIB="$ROOT/scripts/lib"
START_TIMEOUT="${TESTBED_START_TIMEOUT:-120}"

mkdir -p "$TB" "$RUN" "$ENVD"

log() { printf '[%s] %s\n' "${NAME:-testbed}" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "${NAME:-testbed}" "$*" >&2
	exit 1
}

# emulator prints the AWS API emulator asked for: EMULATOR, or the one that
# testbed.sh chose (it writes $TB/emulator when it had to fall back to moto).
emulator() {
	if [[ -n "${EMULATOR:-}" ]]; then
		echo "$EMULATOR"
	elif [[ -s "$TB/emulator" ]]; then
		cat "$TB/emulator"
	else
		echo localstack
	fi
}

# check_port NAME PORT: the port must be a number below 32768 (32768-60999 is
# Linux's ephemeral range: any outgoing connection may hold such a port).
check_port() {
	[[ "$2" =~ ^[0-9]+$ ]] || die "$1 is '$2', not a port number"
	((10#$2 > 0 && 10#$2 < 32768)) || die "$1=$2: choose a port below 32768 (32768-60999 is Linux's ephemeral range)"
}

# port_free PORT WHAT: fail, naming the holder, when any socket on this machine
# uses PORT as its local port (a listener, or an outgoing connection), except
# in TIME-WAIT (closed connections of a server that just stopped: the
# servers of the bed set SO_REUSEADDR and bind all the same).
port_free() {
	local port="$1" what="$2" holders
	holders="$(ss -Htanp state all exclude time-wait "( sport = :$port )" 2>/dev/null || true)"
	[[ -z "$holders" ]] && return 0
	log "port $port, wanted by $what, is in use:"
	printf '%s\n' "$holders" | awk '{printf "  %s %s %s\n", $1, $4, $6}' >&2
	die "port $port is taken (see the process above); stop it or choose another port: see scripts/testbed.sh --help"
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

# group_alive PID: true while the process PID or any process of the process
# group PID lives (right after `setsid cmd &` the child may not have made its
# group yet).
group_alive() { [[ -n "$1" ]] && { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }; }

# stop_group NAME [SECONDS]: SIGTERM the process group of NAME's pid file,
# wait for it to go (polling), SIGKILL what is left.
stop_group() {
	local name="$1" secs="${2:-30}" pid i
	pid="$(pid_of "$name")"
	if group_alive "$pid"; then
		log "stopping $name (process group $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 4; i++)); do
			group_alive "$pid" || break
			sleep 0.25
		done
		if group_alive "$pid"; then
			log "$name still running after ${secs}s: SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$RUN/$name.pid" "$ENVD/$name.env"
}

# start_failed WHAT LOGFILE: the tail of the log, its path, and exit; what
# was started (the pid file of NAME) is stopped, so nothing half-started stays.
start_failed() {
	log "$1 did not start; the last lines of its log:"
	tail -n 30 "$2" >&2 2>/dev/null || true
	if [[ -n "${NAME:-}" && -s "$RUN/$NAME.pid" ]]; then
		stop_group "$NAME" 10
	fi
	die "$1 did not start: read $2"
}

# wait_until WHAT LOGFILE PID CHECK...: poll CHECK every 0.25 s until it
# succeeds; fail (with the log) when the process group PID died or after
# TESTBED_START_TIMEOUT seconds.
wait_until() {
	local what="$1" logfile="$2" pid="$3"
	shift 3
	local deadline=$((SECONDS + START_TIMEOUT))
	until "$@" >/dev/null 2>&1; do
		if ! group_alive "$pid"; then
			start_failed "$what (exited)" "$logfile"
		fi
		if ((SECONDS >= deadline)); then
			start_failed "$what (not ready after ${START_TIMEOUT}s)" "$logfile"
		fi
		sleep 0.25
	done
}

# aws_call ENDPOINT TARGET: one real, unsigned-but-well-formed JSON API call
# (the emulators accept any credentials), e.g. secretsmanager.ListSecrets.
aws_call() {
	local service="${2%%.*}"
	curl -fsS --max-time 30 -X POST "$1/" \
		-H "Content-Type: application/x-amz-json-1.1" \
		-H "X-Amz-Target: $2" \
		-H "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/$service/aws4_request, SignedHeaders=host;x-amz-target, Signature=0000" \
		-d '{}'
}

# usage_server: the three commands every server script has.
server_main() {
	case "${1:-}" in
	up) up ;;
	down) down ;;
	status) status ;;
	wanted) wanted ;;
	*)
		echo "usage: $0 up|down|status|wanted" >&2
		exit 2
		;;
	esac
}

# wanted: by default a server is part of every bed; a script overrides it.
wanted() { return 0; }

# A server whose own script in scripts/ does the work (install, configure,
# start, write .testbed/<NAME>.env: Redis, RabbitMQ, slapd, Samba) is run
# through these, after the adapter in scripts/bed/ set SCRIPT (that script),
# PIDFILE (where it writes the server's pid), LOGFILE and WHAT: they record
# the pid for `down` and the loopback test and hand the settings to
# testbed.sh.
script_up() {
	"$SCRIPT" up || start_failed "$WHAT" "$LOGFILE"
	cp "$PIDFILE" "$RUN/$NAME.pid"
	cp "$TB/$NAME.env" "$ENVD/$NAME.env"
	chmod 600 "$ENVD/$NAME.env"
}

script_down() {
	"$SCRIPT" down
	rm -f "$RUN/$NAME.pid" "$ENVD/$NAME.env"
}

# script_status prints the script's own status in the bed's form: "up ..."
# when it is up, its line (or "down") otherwise.
script_status() {
	local line
	if line="$("$SCRIPT" status 2>/dev/null)"; then
		echo "up      ${line#up: }"
	else
		echo "${line:-down}"
		return 1
	fi
}

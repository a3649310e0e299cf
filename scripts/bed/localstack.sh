#!/usr/bin/env bash
# LocalStack 4.14.0 (the last release that runs without an auth token) in host
# mode, without Docker, on 127.0.0.1:$LOCALSTACK_PORT (default 4566). Part of
# the bed when the emulator is LocalStack (EMULATOR=localstack, the default).
#
# Installed from PyPI into .testbed/venv under Python 3.13 or newer (its code
# uses 3.13's warnings.deprecated), with the dependency versions of its
# release day pinned (scripts/lib/localstack-constraints.txt), plus the test
# bed's Lambda executor (scripts/lib/localstack-noexec: functions become
# Active and run nothing, since LocalStack's free executor needs Docker).
#
#   LOCALSTACK_PORT=4566
#   LOCALSTACK_PYTHON=/path/to/python3.13   (default: the newest python3.13+
#                                            on PATH or under pyenv)
set -euo pipefail
NAME=localstack
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"

VERSION=4.14.0
PORT="${LOCALSTACK_PORT:-4566}"
VENV="$TB/venv"
LOG="$TB/localstack.log"
# What the tests and the deploy check use; nothing else is served.
SERVICES="secretsmanager,kms,iam,sts,acm,lambda,cloudformation,s3,logs,sns,events,cloudwatch,ec2"

wanted() { [[ "$(emulator)" == localstack ]]; }

# find_python prints the newest Python >= 3.13 found, or nothing.
find_python() {
	local cand best="" bestv=0 v
	if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then
		echo "$LOCALSTACK_PYTHON"
		return
	fi
	for cand in $(compgen -c python3. 2>/dev/null | grep -E '^python3\.[0-9]+$' | sort -u) \
		"$(pyenv root 2>/dev/null)"/versions/3.*/bin/python3.[0-9]*; do
		[[ "$cand" == *-config ]] && continue
		v="$("$cand" -c 'import sys; print(sys.version_info[0]*100+sys.version_info[1])' 2>/dev/null)" || continue
		if ((v >= 313 && v > bestv)); then
			best="$(command -v "$cand" 2>/dev/null || echo "$cand")"
			bestv=$v
		fi
	done
	echo "$best"
}

install() {
	local py want start
	py="$(find_python)"
	[[ -n "$py" ]] || die "LocalStack $VERSION needs Python 3.13 or newer, and none was found.
  Install one (pyenv install 3.13, or your distribution's python3.13 package) and run again,
  or point LOCALSTACK_PYTHON at one, or use moto: EMULATOR=moto (see README.md, Requirements)."
	want="localstack-core==$VERSION $("$py" -c 'import sys; print(sys.version.split()[0])') $(cat "$LIB/localstack-constraints.txt" "$LIB/localstack-noexec/pyproject.toml" "$LIB/localstack-noexec/testbed_noexec.py" | sha256sum | cut -c1-16)"
	if [[ -x "$VENV/bin/python" ]] && [[ "$(cat "$VENV/.testbed-stamp" 2>/dev/null)" == "$want" ]]; then
		return
	fi
	log "installing localstack-core[runtime]==$VERSION into $VENV (python: $py); about 2 minutes"
	start=$SECONDS
	if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$VENV/.testbed-stamp" 2>/dev/null)" != "localstack-core==$VERSION $("$py" -c 'import sys; print(sys.version.split()[0])') "* ]]; then
		rm -rf "$VENV"
		"$py" -m venv "$VENV"
	fi
	mkdir -p "$TB/pip-cache"
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
		--cache-dir "$TB/pip-cache" \
		--constraint "$LIB/localstack-constraints.txt" \
		"localstack-core[runtime]==$VERSION" ||
		die "pip could not install LocalStack into $VENV (see above)"
	# Built from a copy (pip writes build/ and *.egg-info beside the sources);
	# its build backend (setuptools) came with LocalStack: no download.
	rm -rf "$TB/localstack-noexec"
	cp -r "$LIB/localstack-noexec" "$TB/localstack-noexec"
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation \
		--cache-dir "$TB/pip-cache" --force-reinstall --no-deps "$TB/localstack-noexec" ||
		die "pip could not install $LIB/localstack-noexec into $VENV (see above)"
	echo "$want" >"$VENV/.testbed-stamp"
	log "installed in $((SECONDS - start))s"
}

healthy() {
	local body
	body="$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/_localstack/health")" || return 1
	printf '%s' "$body" | grep -Eq '"secretsmanager": *"(available|running)"' &&
		printf '%s' "$body" | grep -Eq '"cloudformation": *"(available|running)"'
}

up() {
	local pid start fs="$TB/localstack-fs"
	check_port LOCALSTACK_PORT "$PORT"
	pid="$(pid_of $NAME)"
	if group_alive "$pid" && healthy; then
		log "up at http://127.0.0.1:$PORT (pid $pid), reusing it"
		write_env
		return
	fi
	stop_group $NAME
	port_free "$PORT" "LocalStack (LOCALSTACK_PORT)"
	install
	rm -rf "$fs"
	mkdir -p "$fs"
	log "starting on 127.0.0.1:$PORT"
	start=$SECONDS
	# GATEWAY_LISTEN=[::ffff:127.0.0.1]: LocalStack's gateway server (twisted)
	#   ignores the host of an IPv4 GATEWAY_LISTEN and listens on 0.0.0.0
	#   (localstack/runtime/server/twisted.py: "TODO: interface = host?"); an
	#   IPv6 host is honoured, and the IPv4-mapped loopback address accepts
	#   IPv4 connections to 127.0.0.1 only. (Its other server, hypercorn, binds
	#   127.0.0.1 but cuts keep-alive connections under the crash tests.)
	# OVERRIDE_IN_DOCKER=0: this machine may have /.dockerenv, which would make
	#   LocalStack use /var/lib/localstack and listen on 0.0.0.0 by default.
	# AWS_DEFAULT_REGION: LocalStack sets it around the SAM transform and, when it
	#   was unset, removes it after, process-wide: two stacks transformed at once
	#   then fail with "AWS Region cannot be found" (cloudformation/engine/v2/
	#   change_set_model_transform.py). Set, it is only ever restored.
	# DNS_ADDRESS=0: no DNS server. SKIP_SSL_CERT_DOWNLOAD, DISABLE_EVENTS: no internet.
	# LAMBDA_RUNTIME_EXECUTOR=testbed-noexec: see scripts/lib/localstack-noexec.
	env \
		GATEWAY_LISTEN="[::ffff:127.0.0.1]:$PORT" \
		SERVICES="$SERVICES" \
		EAGER_SERVICE_LOADING=0 \
		OVERRIDE_IN_DOCKER=0 \
		FILESYSTEM_ROOT="$fs" \
		LOCALSTACK_VOLUME_DIR="$fs/var/lib/localstack" \
		DNS_ADDRESS=0 \
		SKIP_SSL_CERT_DOWNLOAD=1 \
		DISABLE_EVENTS=1 \
		LOCALSTACK_CLI=0 \
		PERSISTENCE=0 \
		LAMBDA_RUNTIME_EXECUTOR=testbed-noexec \
		AWS_DEFAULT_REGION=us-east-1 \
		setsid "$VENV/bin/python" -m localstack.runtime.main >"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$RUN/$NAME.pid"
	wait_until "LocalStack" "$LOG" "$pid" healthy
	# The first call loads the service (several seconds on a busy machine).
	wait_until "LocalStack (a Secrets Manager call)" "$LOG" "$pid" aws_call "http://127.0.0.1:$PORT" secretsmanager.ListSecrets
	log "up at http://127.0.0.1:$PORT after $((SECONDS - start))s (log: $LOG)"
	write_env
}

write_env() {
	cat >"$ENVD/$NAME.env" <<-EOF
		export LOCALSTACK_ENDPOINT=http://127.0.0.1:$PORT
	EOF
}

down() { stop_group $NAME 30; }

status() {
	local pid
	pid="$(pid_of $NAME)"
	if ! group_alive "$pid"; then
		echo "down"
		return 1
	elif healthy; then
		echo "up      http://127.0.0.1:$PORT (pid $pid, log $LOG)"
	else
		echo "unhealthy: pid $pid runs but http://127.0.0.1:$PORT/_localstack/health does not answer (log $LOG)"
		return 2
	fi
}

case "${1:-}" in
python) find_python ;;
*) server_main "$@" ;;
esac

#!/usr/bin/env bash
# The local test bed, without Docker: one script per server in scripts/bed/
# (each with up, down, status), run by this one.
#
#   scripts/testbed.sh up [SERVER...]     start (or reuse) every server of the bed, or those
#                                         named, and write .testbed/env (source it, or let
#                                         the Go tests read it)
#   scripts/testbed.sh down [SERVER...]   stop every server of the bed (databases included),
#                                         or only those named
#   scripts/testbed.sh status             one line per server; exit 0 when all are up
#
# SERVER is a script name in scripts/bed/ (localstack, moto, postgres, mariadb, rie)
# or "aws": the AWS API emulator(s) of EMULATOR.
#
# Environment (every port is on 127.0.0.1 and below 32768):
#   EMULATOR=localstack|moto  default localstack when a Python 3.13+ is found, else moto
#                             (with a notice). With LocalStack, moto also runs, for the APIs
#                             LocalStack's free edition lacks (RDS, ACM Private CA).
#   LOCALSTACK_PORT=4566  MOTO_PORT=4567  PG_PORT=15432  MYSQL_PORT=13306
#   LOCALSTACK_PYTHON=/path/to/python3.13   TESTBED_START_TIMEOUT=120 (seconds)
#
# Everything lives in .testbed/ (git-ignored, about 1.2 GB with LocalStack and the SAM CLI).
set -euo pipefail
NAME=testbed
# shellcheck source=lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bed.sh"
BED="$ROOT/scripts/bed"

all_servers() { for f in "$BED"/*.sh; do basename "$f" .sh; done; }

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

# resolve_emulator sets and exports EMULATOR (falling back to moto when
# LocalStack cannot run here and nobody asked for it) and records it.
resolve_emulator() {
	if [[ -z "${EMULATOR:-}" ]]; then
		EMULATOR=localstack
		if [[ -z "$("$BED/localstack.sh" python)" ]]; then
			log "NOTICE: no Python 3.13 or newer found, which LocalStack 4.14.0 needs: using moto"
			log "NOTICE: for LocalStack, install Python 3.13 (pyenv install 3.13) or set LOCALSTACK_PYTHON"
			EMULATOR=moto
		fi
	fi
	case "$EMULATOR" in
	localstack | moto) ;;
	*) die "unknown EMULATOR '$EMULATOR' (want localstack or moto)" ;;
	esac
	export EMULATOR
	echo "$EMULATOR" >"$TB/emulator"
}

# expand turns the arguments into server names ("aws" into the emulators).
expand() {
	local s
	for s in "$@"; do
		case "$s" in
		aws)
			echo moto
			[[ "$EMULATOR" == localstack ]] && echo localstack
			;;
		*)
			[[ -x "$BED/$s.sh" ]] || die "no server '$s' (there are: $(all_servers | tr '\n' ' ')and aws)"
			echo "$s"
			;;
		esac
	done
}

wanted_servers() {
	local s
	for s in $(all_servers); do
		"$BED/$s.sh" wanted && echo "$s"
	done
}

# write_env joins what the running servers wrote into .testbed/env (and
# .testbed/db.env, which the database tests read): the SDK's endpoint
# settings for the emulator, then every server's own lines.
write_env() {
	local f tmp="$TB/env.tmp" aws=""
	case "$EMULATOR" in
	localstack) [[ -s "$ENVD/localstack.env" ]] && aws="$(. "$ENVD/localstack.env" && echo "$LOCALSTACK_ENDPOINT")" ;;
	moto) [[ -s "$ENVD/moto.env" ]] && aws="$(. "$ENVD/moto.env" && echo "$MOTO_ENDPOINT")" ;;
	esac
	{
		echo "# Written by scripts/testbed.sh up; the Go tests read it when AWS_ENDPOINT_URL is unset."
		if [[ -n "$aws" ]]; then
			cat <<-EOF
				export AWS_ENDPOINT_URL=$aws
				export AWS_REGION=us-east-1
				export AWS_DEFAULT_REGION=us-east-1
				export AWS_ACCESS_KEY_ID=test
				export AWS_SECRET_ACCESS_KEY=test
				export EMULATOR=$EMULATOR
			EOF
			if [[ "$EMULATOR" == localstack && -s "$ENVD/moto.env" ]]; then
				moto="$(. "$ENVD/moto.env" && echo "$MOTO_ENDPOINT")"
				echo "export AWS_ENDPOINT_URL_RDS=$moto"
				echo "export AWS_ENDPOINT_URL_ACM_PCA=$moto"
			else
				echo "unset AWS_ENDPOINT_URL_RDS AWS_ENDPOINT_URL_ACM_PCA"
			fi
		fi
		[[ -s "$TB/dbca/ca.crt" ]] && echo "export DB_CA_FILE=$TB/dbca/ca.crt"
		for f in "$ENVD"/*.env; do
			[[ -e "$f" ]] && cat "$f"
		done
	} >"$tmp"
	chmod 600 "$tmp"
	cp "$tmp" "$TB/db.env"
	mv "$tmp" "$TB/env"
}

cmd_up() {
	local s started=()
	resolve_emulator
	(($# > 0)) || set -- $(wanted_servers)
	for s in $(expand "$@"); do
		"$BED/$s.sh" up
		started+=("$s")
	done
	if [[ "$EMULATOR" == moto ]] && group_alive "$(pid_of localstack)"; then
		log "LocalStack is running but not used with EMULATOR=moto; scripts/testbed.sh down localstack stops it"
	fi
	write_env
	log "up: ${started[*]} (EMULATOR=$EMULATOR); settings in $TB/env"
}

cmd_down() {
	local s
	EMULATOR="$(emulator)"
	export EMULATOR
	(($# > 0)) || set -- $(all_servers)
	for s in $(expand "$@"); do
		"$BED/$s.sh" down
	done
	write_env
	if [[ -z "$(ls -A "$ENVD")" ]]; then
		rm -f "$TB/env" "$TB/db.env"
	fi
	log "down: $*"
}

cmd_status() {
	local s line rc=0 used
	EMULATOR="$(emulator)"
	export EMULATOR
	for s in $(all_servers); do
		line="$("$BED/$s.sh" status)" || true
		if "$BED/$s.sh" wanted; then
			used=""
			[[ "$line" == up* || "$line" == built* ]] || rc=1
		else
			used=" (not part of the bed with EMULATOR=$EMULATOR)"
		fi
		printf '%-11s %s%s\n' "$s" "$line" "$used"
	done
	return $rc
}

case "${1:-}" in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
status) cmd_status ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac

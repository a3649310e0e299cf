# Helpers shared by the per-server test bed scripts (scripts/redis.sh,
# scripts/rabbitmq.sh). Source it after setting ROOT, TB and LOG_TAG.
#
# The test CA is the database servers' (scripts/lib/dbca.sh, .testbed/dbca),
# so every server of the bed is verified against one ca.crt: whichever
# script runs first creates it, the others reuse it.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2fs", b-a}'; }

# The bed's one test CA (CA_DIR, make_ca) and randpw, as the database
# servers have them.
# shellcheck source=dbca.sh
. "$ROOT/scripts/lib/dbca.sh"

# port_in_use PORT: true when anything listens on PORT, on any address.
port_in_use() { [[ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]]; }

# check_port PORT: the rules of the bed: below 32768 (Linux's ephemeral
# range starts there) and free.
check_port() {
	local p="$1"
	[[ "$p" =~ ^[0-9]+$ ]] && ((p > 0 && p < 32768)) || die "port $p: want a number below 32768"
	if port_in_use "$p"; then
		die "port $p is in use: $(ss -Hltnp "( sport = :$p )" | head -1)"
	fi
}

# listens_only_on_loopback PORT [ipv6]: true when PORT is listened on and
# every listening socket on it is bound to 127.0.0.1 (or, with "ipv6", to
# ::1 as well: epmd always adds the loopback address of each family).
listens_only_on_loopback() {
	local addrs allowed='^127\.0\.0\.1:'
	[[ ${2:-} == ipv6 ]] && allowed='^(127\.0\.0\.1|\[::1\]):'
	addrs="$(ss -Hltn "( sport = :$1 )" | awk '{print $4}')"
	[[ -n "$addrs" ]] || return 1
	! grep -Eqv "$allowed" <<<"$addrs"
}

# apt_install PACKAGE...: installs Debian packages without letting their
# services start (policy-rc.d answers 101, as scripts/db.sh does for
# MariaDB). Waits for the dpkg lock rather than failing while another
# install runs.
apt_install() {
	local t0 policy=/usr/sbin/policy-rc.d created=0
	t0="$(now)"
	[[ $(id -u) == 0 ]] || die "installing $* needs root"
	log "installing $* from Debian"
	export DEBIAN_FRONTEND=noninteractive
	# DPkg::Lock::Timeout waits for dpkg's lock, not for the lists' lock
	# that apt-get update takes: retry that one while another apt runs.
	local i
	for i in $(seq 1 120); do
		apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>"$TB/apt-update.err" && break
		grep -q 'Could not get lock' "$TB/apt-update.err" || { cat "$TB/apt-update.err" >&2; die "apt-get update failed"; }
		((i == 1)) && log "another apt-get holds the lock: waiting"
		sleep 5
	done
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	local rc=0
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
	if [[ $created == 1 ]]; then rm -f "$policy"; fi
	((rc == 0)) || die "apt-get install $* failed (exit $rc)"
	log "$* installed in $(elapsed "$t0")"
}

# shellcheck shell=bash
# For scripts that start the test bed for one job and stop it afterwards
# (test.sh, bench.sh): `session_start SERVER...` notes which servers were
# already up, starts the rest; at exit, the servers this job started are
# stopped again and the ones left running are named. KEEP_TESTBED=1 leaves
# everything running.
SESSION_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
session_before=()

session_start() {
	local line
	while read -r line; do
		session_before+=("${line%% *}")
	done < <("$SESSION_ROOT/scripts/testbed.sh" status 2>/dev/null | awk '$2 == "up" {print $1}')
	trap session_end EXIT
	"$SESSION_ROOT/scripts/testbed.sh" up "$@"
}

session_end() {
	local rc=$? s stop=() keep=()
	if [[ -n "${KEEP_TESTBED:-}" ]]; then
		echo "== KEEP_TESTBED is set: the test bed keeps running (scripts/testbed.sh status; scripts/testbed.sh down stops it)"
		return $rc
	fi
	# Every server that was not up before is stopped, whatever its state now
	# (an unhealthy one too); down is a no-op for one that is down.
	for s in $("$SESSION_ROOT/scripts/testbed.sh" status 2>/dev/null | awk '{print $1}'); do
		if [[ " ${session_before[*]} " == *" $s "* ]]; then
			keep+=("$s")
		else
			stop+=("$s")
		fi
	done
	((${#stop[@]} == 0)) || "$SESSION_ROOT/scripts/testbed.sh" down "${stop[@]}" || true
	local still
	still="$("$SESSION_ROOT/scripts/testbed.sh" status 2>/dev/null | awk '$2 == "up" || $2 == "unhealthy:" {print $1}' | tr '\n' ' ')" || true
	for s in $still; do
		[[ " ${keep[*]} " == *" $s "* ]] || echo "== WARNING: $s is still running although this job started it (scripts/testbed.sh down $s)"
	done
	if ((${#keep[@]} > 0)); then
		echo "== left running, as they were up before: ${keep[*]} (scripts/testbed.sh down stops them)"
	else
		echo "== nothing left running"
	fi
	return $rc
}

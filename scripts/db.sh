#!/usr/bin/env bash
# The database servers of the test bed only (PostgreSQL and MariaDB):
# scripts/testbed.sh up|down postgres mariadb. Kept for muscle memory;
# scripts/testbed.sh covers them.
set -euo pipefail
case "${1:-}" in
up | down) exec "$(dirname "$0")/testbed.sh" "$1" postgres mariadb ;;
status) exec "$(dirname "$0")/testbed.sh" status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac

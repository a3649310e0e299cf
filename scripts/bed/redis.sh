#!/usr/bin/env bash
# Redis for the functions/redis tests, in the bed's conventions
# (scripts/bed/README.md).
# scripts/redis.sh does the work: install from Debian when missing, configure,
# start on 127.0.0.1 below 32768 after checking the ports are free, write
# .testbed/redis.env; its header lists the ports and their variables.
# lib/bed.sh's script_up/down/status record its pid for `down` and the
# loopback test, and hand its settings to scripts/testbed.sh.
set -euo pipefail
NAME=redis
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
SCRIPT="$ROOT/scripts/redis.sh"
PIDFILE="$TB/redis/redis.pid"
LOGFILE="$TB/redis/redis.log"
WHAT="Redis"

up() { script_up; }
down() { script_down; }
status() { script_status; }

server_main "$@"

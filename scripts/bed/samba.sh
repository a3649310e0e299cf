#!/usr/bin/env bash
# A Samba Active Directory domain controller for the functions/directory
# (Active Directory) tests, in the bed's conventions (scripts/bed/README.md).
# scripts/samba.sh does the work: install from Debian when missing, configure,
# start on 127.0.0.1 below 32768 after checking the ports are free, write
# .testbed/samba.env; its header lists the ports and their variables.
# lib/bed.sh's script_up/down/status record its pid for `down` and the
# loopback test, and hand its settings to scripts/testbed.sh.
set -euo pipefail
NAME=samba
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
SCRIPT="$ROOT/scripts/samba.sh"
PIDFILE="$TB/samba/run/samba.pid"
LOGFILE="$TB/samba/log/samba.log"
WHAT="A Samba Active Directory domain controller"

up() { script_up; }
down() { script_down; }
status() { script_status; }

server_main "$@"

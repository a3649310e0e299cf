#!/usr/bin/env bash
# RabbitMQ for the functions/rabbitmq (and provider's RabbitMQ configuration)
# tests, in the bed's conventions (scripts/bed/README.md).
# scripts/rabbitmq.sh does the work: install from Debian when missing, configure,
# start on 127.0.0.1 below 32768 after checking the ports are free, write
# .testbed/rabbitmq.env; its header lists the ports and their variables.
# lib/bed.sh's script_up/down/status record its pid for `down` and the
# loopback test, and hand its settings to scripts/testbed.sh.
set -euo pipefail
NAME=rabbitmq
# shellcheck source=../lib/bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/bed.sh"
SCRIPT="$ROOT/scripts/rabbitmq.sh"
PIDFILE="$TB/rabbitmq/rabbit.pid"
LOGFILE="$TB/rabbitmq/log/stdout.log"
WHAT="RabbitMQ"

up() { script_up; }
down() { script_down; }
status() { script_status; }

server_main "$@"

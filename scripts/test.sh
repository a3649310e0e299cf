#!/usr/bin/env bash
# The README's test command (`make test`): start the test bed (AWS API
# emulator, aws-lambda-rie, PostgreSQL and MariaDB, Redis and RabbitMQ),
# run every test against it, check the SAM template offline (cfn-lint,
# sam validate --lint, sam build), stop the test bed again. KEEP_TESTBED=1
# leaves it running. EMULATOR=moto selects the fallback emulator. Extra
# arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
cleanup() {
	if [[ -z ${KEEP_TESTBED:-} ]]; then
		scripts/db.sh down || true
		scripts/redis.sh down || true
		scripts/rabbitmq.sh down || true
		if [[ $started == 1 ]]; then
			scripts/testbed.sh down || true
		fi
	fi
}
trap cleanup EXIT

if ! scripts/testbed.sh status >/dev/null 2>&1; then
	started=1
fi
scripts/testbed.sh up
scripts/db.sh up
scripts/redis.sh up
scripts/rabbitmq.sh up
# shellcheck source=/dev/null
. .testbed/env

go vet ./...
# The zero-downtime tests run apart, verbosely, so that their figures (logins
# and refusals while rotations run back to back) are printed.
go test -count=1 -timeout 20m -skip '^TestZeroDowntime' "$@" ./...
echo "== zero-downtime figures (PostgreSQL, MariaDB, Redis, RabbitMQ)"
go test -count=1 -timeout 5m -run '^TestZeroDowntime' -v "$@" ./internal/targets/postgres/ ./internal/targets/mysql/ ./internal/targets/redis/ ./internal/targets/rabbitmq/ |
	grep -E '^(--- |ok|FAIL|panic)|clients, .* rotations'
echo "== SAM template: cfn-lint, sam validate --lint, sam build (no Docker)"
scripts/sam-check.sh

#!/usr/bin/env bash
# The README's test command (`make test`): start the test bed (AWS API
# emulator, aws-lambda-rie, PostgreSQL, MariaDB, Redis, RabbitMQ, OpenLDAP
# and a Samba AD domain controller), check and build the SAM
# template offline (cfn-lint, sam validate --lint, sam build), run every Go
# test against the bed (among them the deploy check, which packages the
# built template and deploys it into LocalStack's CloudFormation), then stop
# what it started and say what it left running. KEEP_TESTBED=1 leaves the bed
# running. Extra arguments go to go test.
#
# EMULATOR=moto runs the tests against moto instead, except the deploy check
# (it needs LocalStack's CloudFormation), and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/session.sh
. scripts/lib/session.sh

session_start
# shellcheck source=/dev/null
. .testbed/env

go vet ./...
echo "== SAM template: cfn-lint, sam validate --lint, sam build (no Docker)"
scripts/sam-check.sh
packages=$(go list ./...)
if [[ "$EMULATOR" != localstack ]]; then
	echo "== EMULATOR=$EMULATOR: internal/deploycheck is left out (it deploys into LocalStack's CloudFormation)"
	packages=$(grep -v '/internal/deploycheck$' <<<"$packages")
fi
# The zero-downtime tests run apart, verbosely, so that their figures (logins
# and refusals while rotations run back to back) are printed.
# shellcheck disable=SC2086
go test -count=1 -timeout 20m -skip '^TestZeroDowntime' "$@" $packages
echo "== zero-downtime figures (PostgreSQL, MariaDB, Redis, RabbitMQ, OpenLDAP, Samba AD)"
go test -count=1 -timeout 5m -run '^TestZeroDowntime' -v "$@" ./internal/targets/postgres/ ./internal/targets/mysql/ \
	./internal/targets/redis/ ./internal/targets/rabbitmq/ ./internal/targets/directory/ |
	grep -E '^(--- |ok|FAIL|panic)|clients, .* rotations'

#!/usr/bin/env bash
# `make demo`: rotate a sample secret locally, end to end. It starts the AWS
# API emulator and builds functions/generic for this machine, then
# `rotationctl rotate` (cmd/rotationctl) opens a rotation the way RotateSecret
# does and invokes the four steps through the Lambda Runtime Interface
# Emulator, printing each step as it ends. Values are never printed, only a
# short SHA-256 fingerprint of each version.
set -euo pipefail
cd "$(dirname "$0")/.."

# The AWS API emulator and aws-lambda-rie only: the demo needs no database.
scripts/testbed.sh up aws rie >/dev/null
# shellcheck source=/dev/null
. .testbed/env
make --no-print-directory build-local >/dev/null

secret="demo/generic/api-key"
echo "== rotating $secret with functions/generic (SECRET_KIND=apikey, SECRET_FIELD=api_key, KEY_PREFIX=sk_demo_)"
echo
go run ./cmd/rotationctl rotate "$secret" \
	-init-value '{"client_id":"demo-client","api_key":"sk_demo_initial"}' \
	-bootstrap build/local/generic/bootstrap \
	-function-log .testbed/demo-function.log \
	-env AWS_LAMBDA_FUNCTION_NAME=generic-rotation \
	-env SECRET_KIND=apikey -env SECRET_FIELD=api_key -env KEY_PREFIX=sk_demo_
echo
echo "The function's JSON log lines (the audit trail CloudWatch would get):"
grep '^{' .testbed/demo-function.log | grep '"rotation step' || true
echo
go run ./cmd/rotationctl status -prefix demo/ -logs=false
echo
echo "The emulator keeps running for the next demo (EMULATOR=$EMULATOR); scripts/testbed.sh status shows it, scripts/testbed.sh down stops it."

#!/usr/bin/env bash
# sam-check.sh: lint and build template.yaml the way a deployer would, with no
# Docker and no AWS account: cfn-lint, `sam validate` (the SAM translator),
# `sam validate --lint`, `sam build` (BuildMethod makefile, so the Makefile's
# Go flags apply), then a check that each function's artifact holds an
# executable linux/arm64 `bootstrap`.
#
# The SAM CLI and cfn-lint are installed at the versions pinned, with every
# dependency, in scripts/sam-requirements.txt into .testbed/sam-venv (reused
# when present); the downloaded wheels are kept in .testbed/sam-wheels.
# Needs python3 (3.9+) and Go on PATH; no Docker, no AWS credentials.
set -euo pipefail

SAM_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv=.testbed/sam-venv
wheels=.testbed/sam-wheels
requirements=scripts/sam-requirements.txt
build_dir=.testbed/sam-build
export SAM_CLI_TELEMETRY=0
# `sam` wants a region even for local work; nothing here calls AWS.
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}

start=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$1" $(($(date +%s) - start)); }

installed() {
	[ -x "$venv/bin/sam" ] && [ -x "$venv/bin/cfn-lint" ] || return 1
	"$venv/bin/sam" --version 2>/dev/null | grep -qx "SAM CLI, version $SAM_VERSION" || return 1
	"$venv/bin/cfn-lint" --version 2>/dev/null | grep -qx "cfn-lint $CFN_LINT_VERSION"
}

step "SAM CLI $SAM_VERSION, cfn-lint $CFN_LINT_VERSION in $venv"
if installed; then
	echo "reusing $venv"
else
	t0=$(date +%s)
	mkdir -p "$wheels"
	[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
	pip=("$venv/bin/pip" --quiet --disable-pip-version-check)
	# Install from the wheels already under .testbed when they are all
	# there; otherwise download the missing ones first. Every version is
	# pinned (--no-deps), so nothing is resolved against the index.
	# --no-compile: byte-compiling botocore alone takes longer than the rest.
	install=("${pip[@]}" install --no-compile --no-deps --no-index --find-links "$wheels" -r "$requirements")
	if ! "${install[@]}" 2>/dev/null; then
		"${pip[@]}" download --no-deps --dest "$wheels" -r "$requirements"
		"${install[@]}"
	fi
	"$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; exit 1; }
	installed || { echo "sam-check: $venv does not hold SAM CLI $SAM_VERSION and cfn-lint $CFN_LINT_VERSION: update $requirements" >&2; exit 1; }
	echo "installed in $(($(date +%s) - t0))s"
fi

step "cfn-lint template.yaml (errors, warnings and informational findings all fail)"
"$venv/bin/cfn-lint" --include-checks I -- template.yaml

step "sam validate (the SAM translator) and sam validate --lint"
"$venv/bin/sam" validate --region "$AWS_REGION" --template-file template.yaml
"$venv/bin/sam" validate --lint --region "$AWS_REGION" --template-file template.yaml

step "sam build into $build_dir"
command -v go >/dev/null || { echo "sam-check: go is not on PATH" >&2; exit 1; }
rm -rf "$build_dir"
# --build-in-source: make runs in the work tree instead of a copy of it
# (which would include .testbed), and Go's build cache is reused.
"$venv/bin/sam" build --build-in-source --template-file template.yaml --build-dir "$build_dir"

step "artifacts: an executable linux/arm64 bootstrap per function"
# Every directory under functions/ must map to a build-<LogicalId> target
# of the Makefile, and that function's artifact must be an ARM64 ELF.
declare -A logical
while read -r id dir; do logical[$dir]=$id; done < <(
	awk '/^build-[A-Za-z0-9]+:/ { id = substr($1, 7, length($1) - 7); next }
	     id != "" && match($0, /\.\/functions\/[a-z0-9]+/) { print id, substr($0, RSTART + 12, RLENGTH - 12); id = "" }' Makefile)
fail=0
count=0
for d in functions/*/; do
	name=$(basename "$d")
	id=${logical[$name]:-}
	if [ -z "$id" ]; then
		echo "FAIL functions/$name: no build-<LogicalId> target in the Makefile builds it"; fail=1; continue
	fi
	bin="$build_dir/$id/bootstrap"
	if [ ! -x "$bin" ]; then
		echo "FAIL $id: $bin is missing or not executable"; fail=1; continue
	fi
	# ELF header: magic, 64-bit, little-endian, type EXEC or DYN, machine
	# EM_AARCH64 (183). Read with od so the check needs nothing installed.
	read -r m0 m1 m2 m3 class data < <(od -An -tu1 -N6 "$bin")
	read -r etype machine < <(od -An -tu2 -j16 -N4 "$bin")
	if [ "$m0 $m1 $m2 $m3" != "127 69 76 70" ] || [ "$class" != 2 ] || [ "$data" != 1 ] ||
		{ [ "$etype" != 2 ] && [ "$etype" != 3 ]; } || [ "$machine" != 183 ]; then
		echo "FAIL $id: $bin is not a 64-bit little-endian ARM64 ELF executable ($(file -b "$bin" 2>/dev/null || echo unknown))"
		fail=1; continue
	fi
	printf 'ok   %-18s functions/%-9s bootstrap %9d bytes, ELF64 aarch64\n' "$id" "$name" "$(stat -c %s "$bin")"
	count=$((count + 1))
done
built=$(grep -c 'Type: AWS::Serverless::Function' "$build_dir/template.yaml" || true)
if [ "$built" != "$count" ]; then
	echo "FAIL the built template has $built functions, $count checked"; fail=1
fi
[ "$fail" = 0 ] || exit 1

step "sam-check passed: $count functions"

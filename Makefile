# The commands the README names. `make test`, `make bench` and `make demo`
# start what they need through scripts/testbed.sh (the AWS API emulator, the
# databases, aws-lambda-rie); test and bench stop again what they started.
# EMULATOR=moto selects the fallback emulator.

SHELL      := /bin/bash
FUNCTIONS  := $(notdir $(wildcard functions/*))
GOARCH     ?= arm64
BUILD_DIR  := build
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: all build build-local test unit demo bench lint fmt clean testbed-up testbed-down testbed-status sam-check

all: lint build

## build: one bootstrap zip per function for Lambda (linux/$(GOARCH)).
build: $(addprefix $(BUILD_DIR)/,$(addsuffix .zip,$(FUNCTIONS)))

$(BUILD_DIR)/%.zip: FORCE
	@mkdir -p $(BUILD_DIR)/$*
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build $(GOFLAGS_LAMBDA) -o $(BUILD_DIR)/$*/bootstrap ./functions/$*
	@rm -f $@ && cd $(BUILD_DIR)/$* && python3 -m zipfile -c ../$*.zip bootstrap
	@printf '%-10s bootstrap %8d bytes   zip %8d bytes\n' $* $$(stat -c %s $(BUILD_DIR)/$*/bootstrap) $$(stat -c %s $@)

## build-local: bootstraps for this machine, to run under aws-lambda-rie.
build-local:
	@for f in $(FUNCTIONS); do \
	  mkdir -p $(BUILD_DIR)/local/$$f && \
	  CGO_ENABLED=0 go build $(GOFLAGS_LAMBDA) -o $(BUILD_DIR)/local/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## test: start the test bed, check and build the template, run every test
## (the deploy check among them), stop what it started.
test:
	scripts/test.sh

## unit: the tests that need no emulator (fast feedback while editing).
unit:
	go test ./internal/password/ ./internal/redact/ ./internal/secretstore/ ./internal/grace/ ./pkg/...
	go test -run 'ValidateEvent|StepError' ./internal/rotation/

## demo: rotate a sample secret locally, end to end.
demo:
	scripts/demo.sh

## bench: cold start, step and rotation durations, AWS calls, memory, sizes;
## starts and stops the test bed like test.
bench:
	scripts/bench.sh

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

fmt:
	gofmt -w .

## sam-check: cfn-lint, `sam validate --lint` and `sam build` of template.yaml,
## then a check that every built bootstrap is a linux/arm64 executable.
sam-check:
	scripts/sam-check.sh

# `sam build` (BuildMethod makefile) runs `make build-<LogicalId>` with
# ARTIFACTS_DIR set; each writes the function's bootstrap there. Database
# functions also get certs/db-ca-bundle.pem when it exists (see DbCaBundle).
SAM_GO_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap
SAM_DB_CA    = if [ -f certs/db-ca-bundle.pem ]; then cp certs/db-ca-bundle.pem $(ARTIFACTS_DIR)/; fi

build-GenericFunction:
	$(SAM_GO_BUILD) ./functions/generic
build-PostgresFunction:
	$(SAM_GO_BUILD) ./functions/postgres
	$(SAM_DB_CA)
build-MySqlFunction:
	$(SAM_GO_BUILD) ./functions/mysql
	$(SAM_DB_CA)
build-DataKeyFunction:
	$(SAM_GO_BUILD) ./functions/datakey
build-JwtKeysFunction:
	$(SAM_GO_BUILD) ./functions/jwtkeys
build-TlsCertFunction:
	$(SAM_GO_BUILD) ./functions/tlscert
build-IamKeyFunction:
	$(SAM_GO_BUILD) ./functions/iamkey
# The provider configurations ship beside the bootstrap (/var/task/<name>.json),
# with certs/provider-ca.pem when a provider needs a private CA.
build-ProviderFunction:
	$(SAM_GO_BUILD) ./functions/provider
	cp functions/provider/configs/*.json $(ARTIFACTS_DIR)/
	if [ -f certs/provider-ca.pem ]; then cp certs/provider-ca.pem $(ARTIFACTS_DIR)/; fi
# Redis servers with a private CA: certs/redis-ca-bundle.pem ships beside the
# bootstrap (RedisCaBundle /var/task/redis-ca-bundle.pem).
build-RedisFunction:
	$(SAM_GO_BUILD) ./functions/redis
	if [ -f certs/redis-ca-bundle.pem ]; then cp certs/redis-ca-bundle.pem $(ARTIFACTS_DIR)/; fi
# With certs/rabbitmq-ca-bundle.pem for self-managed brokers with a private CA
# (RabbitMqCaBundle=/var/task/rabbitmq-ca-bundle.pem).
build-RabbitMqFunction:
	$(SAM_GO_BUILD) ./functions/rabbitmq
	if [ -f certs/rabbitmq-ca-bundle.pem ]; then cp certs/rabbitmq-ca-bundle.pem $(ARTIFACTS_DIR)/; fi

# The directory's CA ships beside the bootstrap when certs/directory-ca-bundle.pem
# exists (DirectoryCaBundle=/var/task/directory-ca-bundle.pem).
build-DirectoryFunction:
	$(SAM_GO_BUILD) ./functions/directory
	if [ -f certs/directory-ca-bundle.pem ]; then cp certs/directory-ca-bundle.pem $(ARTIFACTS_DIR)/; fi

build-AuditorFunction:
	$(SAM_GO_BUILD) ./functions/auditor

testbed-up:
	scripts/testbed.sh up

testbed-down:
	scripts/testbed.sh down

testbed-status:
	scripts/testbed.sh status

clean:
	rm -rf $(BUILD_DIR)

FORCE:

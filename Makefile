# Entry points. Everything is idempotent: `make up` twice starts nothing twice.
SHELL := /bin/bash
STACK := infrastructure/local/stack.sh
export PATH := $(CURDIR)/.local/bin:$(PATH)

.PHONY: up down deps infra-up infra-down apps-up apps-down status clean test lag typecheck \
        bench stress-capture stress-query seed

## up: install what is missing, start Kafka, ClickHouse, PostgreSQL, Redis and the three apps
up: deps infra-up apps-up

## down: stop the apps and the infrastructure we started
down: apps-down infra-down

deps:
	@infrastructure/local/deps.sh

infra-up:
	@$(STACK) up

infra-down:
	@$(STACK) down

apps-up:
	@$(STACK) apps-up

apps-down:
	@$(STACK) apps-down

status:
	@$(STACK) status

clean:
	@$(STACK) clean

## test: unit + integration tests against the real stack; leaves running exactly what was running before
test: deps
	@tests/run.sh

lag:
	@bun run lag

typecheck:
	@bunx tsc --noEmit -p .

# Entry points. Everything is idempotent: `make up` twice starts nothing twice.
SHELL := /bin/bash
STACK := infrastructure/local/stack.sh
export PATH := $(CURDIR)/.local/bin:$(PATH)

.PHONY: up down deps infra-up infra-down apps-up apps-down status clean test lag typecheck \
        bench stress-capture stress-query seed check-compose cluster-up cluster-down cluster-status cluster-clean \
        test-cluster bench-cluster chaos

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

## stress-capture: vegeta stages of constant arrival rate against capture (RATES=100,1000,5000 STAGE=40s)
stress-capture:
	@bun tests/stress-capture.ts

## stress-query: trend and funnel requests at a constant rate (RATE=4 DURATION=60s MIX=trend:2,breakdown:1,funnel:1)
stress-query:
	@bun tests/stress-query.ts

## seed: load a synthetic dataset straight into ClickHouse (EVENTS=10000000 USERS=200000 DAYS=30)
seed:
	@bun run seed --events $${EVENTS:-10000000} --users $${USERS:-200000} --days $${DAYS:-30}

## check-compose: what can be proven about docker-compose.yml and the Dockerfile without a Docker engine (README)
check-compose: deps
	@bun infrastructure/compose-check/main.ts

typecheck:
	@bunx tsc --noEmit -p .
	@bunx tsc --noEmit -p apps/query/ui

## chaos: load through capture on a private stack while consumer, ClickHouse, Kafka, Redis, PostgreSQL and capture
## fail in turn; checks nothing acknowledged is lost; writes bench/results/chaos-*.json (CHAOS=short: ~3 min)
chaos: deps
	@bun bench/chaos/run.ts

## bench: every benchmark and stress scenario in sequence (STEPS=kafka,capture,... for a subset), then the SLO table
bench: deps
	@bun bench/run-all.ts

## cluster-up: the scale-out layout beside the single-node stack: 3 Kafka nodes, ZooKeeper, ClickHouse 2 shards x 2
## replicas, 2 captures on one port, 2 consumers, query on the Distributed table (runbooks/scaling.md)
cluster-up: deps
	@infrastructure/cluster/deps.sh
	@infrastructure/cluster/cluster.sh up

## cluster-down: stop everything cluster-up started (its data stays in .local/cluster; cluster-clean removes it)
cluster-down:
	@infrastructure/cluster/cluster.sh down

cluster-status:
	@infrastructure/cluster/cluster.sh status

cluster-clean:
	@infrastructure/cluster/cluster.sh clean

## test-cluster: failure tests against the running cluster (make cluster-up first): broker, replica, app kills
test-cluster:
	@tests/cluster/run.sh

## bench-cluster: the capture and consumer benchmarks against the running cluster
bench-cluster:
	@bun bench/cluster.ts

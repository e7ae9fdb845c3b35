#!/usr/bin/env bash
# `make test-cluster`: the failure tests against the cluster that `make cluster-up` started (not part of
# `make test`: the cluster alone takes minutes to start on two cores). The oracle comparison and the migration
# test also need the single-node stack (Kafka, ClickHouse); what of it is not running is started here and stopped
# again afterwards.
# Prints bun's summary and a final "N passed, N failed" line.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
stack=infrastructure/local/stack.sh

infrastructure/cluster/cluster.sh status | grep -q ' stopped$' && {
  infrastructure/cluster/cluster.sh status >&2
  echo "the cluster is not fully up: run 'make cluster-up' first" >&2
  exit 1
}

started=()
running=" $($stack running | tr '\n' ' ') "
# Another checkout's single-node stack on this machine (pid files not ours) counts when its ports answer.
curl -fsS --max-time 2 "http://127.0.0.1:${CLICKHOUSE_HTTP_PORT:-8123}/?query=SELECT%201" >/dev/null 2>&1 && running+=" clickhouse "
(exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && running+=" kafka "
(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && running+=" postgres "
(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && running+=" redis "
for s in kafka clickhouse postgres redis; do [[ $running == *" $s "* ]] || started+=("$s"); done
cleanup() { if ((${#started[@]})); then $stack stop "${started[@]}"; fi; }
trap cleanup EXIT
if ((${#started[@]})); then
  $stack start "${started[@]}" || exit 1
  $stack init >/dev/null || exit 1
fi

log=$(mktemp)
# One file after the other, each leaving the cluster whole: the oracle first (no failures injected), the broker kill last.
bun test --timeout 600000 ./tests/cluster/oracle.cluster.ts ./tests/cluster/persons.cluster.ts ./tests/cluster/apps-kill.cluster.ts \
  ./tests/cluster/clickhouse-replica.cluster.ts ./tests/cluster/migrate.cluster.ts ./tests/cluster/broker-kill.cluster.ts "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -n 1 | tr -dc 0-9)
fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -n 1 | tr -dc 0-9)
grep '^FIGURE ' "$log" >"${CLUSTER_FIGURES:-/dev/null}" || true
rm -f "$log"
echo "${pass:-0} passed, ${fail:-0} failed"
exit "$status"

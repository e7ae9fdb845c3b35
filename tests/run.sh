#!/usr/bin/env bash
# `make test`: start whatever infrastructure is not running, run every test against it, then stop exactly what
# this run started, so the machine is left as it was found. Prints bun's summary and a final
# "N passed, N failed" line.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
stack=infrastructure/local/stack.sh

before=$($stack running | tr '\n' ' ')
started=()
for s in kafka clickhouse postgres redis; do
  [[ " $before " == *" $s "* ]] || started+=("$s")
done
cleanup() {
  # Tests may stop and restart services; stop what this run started, plus anything a test left half-way.
  if ((${#started[@]})); then $stack stop "${started[@]}"; fi
}
trap cleanup EXIT

$stack up || exit 1

log=$(mktemp)
# Tests that need test-only packages (the chdb oracle) install them here, outside the runtime dependencies.
tests/setup-oracle.sh || exit 1
# The posthog-python SDK tests (tests/sdk/) run the real SDK from a test-only venv, pinned (.local/pyenv).
tests/setup-pyenv.sh || exit 1
bun test --timeout 300000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -n 1 | tr -dc 0-9)
fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -n 1 | tr -dc 0-9)
rm -f "$log"
echo "${pass:-0} passed, ${fail:-0} failed"
if [ "$status" -ne 0 ] && [ "${fail:-0}" = 0 ]; then echo "bun test exited with status $status" >&2; fi
exit "$status"

#!/usr/bin/env bash
# The native stack: Kafka, ClickHouse, PostgreSQL, Redis and the three apps, each started only if not running,
# each stopped only if we started it (pid files in .local/run).
#
#   stack.sh up [service...]     start infrastructure (default: all) and apply topics/DDL/migrations
#   stack.sh down [service...]   stop infrastructure (default: all, apps first)
#   stack.sh apps-up|apps-down   start/stop capture, consumer, query in the background
#   stack.sh status              one line per service
#   stack.sh running             names of the infrastructure services running now (used by make test)
#   stack.sh init                topics, ClickHouse DDL, PostgreSQL migrations
#   stack.sh clean               stop everything and remove the state folder
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/common.sh"
for s in "$here"/services/*.sh; do . "$s"; done

INFRA=(kafka clickhouse postgres redis)
APPS=(capture consumer query)
export PATH="$STATE/bin:$PATH"

is_infra() { local s; for s in "${INFRA[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

start_service() {
  is_infra "$1" || die "unknown service '$1' (one of: ${INFRA[*]})"
  if "${1}_running"; then say "$1" "already running"; return; fi
  say "$1" "starting"
  "${1}_start"
  say "$1" "ready"
}

stop_service() {
  is_infra "$1" || die "unknown service '$1' (one of: ${INFRA[*]})"
  if "${1}_running"; then say "$1" "stopping"; "${1}_stop"; else rm -f "$RUN/$1.pid"; fi
}

init_stack() {
  say init "Kafka topics"
  kafka_topics
  say init "ClickHouse DDL"
  "$ROOT/infrastructure/init-clickhouse.sh" "127.0.0.1:$CLICKHOUSE_HTTP_PORT" >/dev/null
  say init "PostgreSQL migrations"
  (cd "$ROOT" && bun infrastructure/postgres/migrate.ts)
}

app_port() {
  case $1 in
  capture) echo "${CAPTURE_PORT:-8000}" ;;
  consumer) echo "${CONSUMER_PORT:-8002}" ;;
  query) echo "${QUERY_PORT:-8001}" ;;
  esac
}

apps_up() {
  local a
  for a in "${APPS[@]}"; do
    if pid_alive "app-$a"; then say "$a" "already running"; continue; fi
    # Started directly from this shell (no subshell), so the pid file holds bun's own pid.
    setsid bun "$ROOT/apps/$a/main.ts" >>"$LOGS/$a.log" 2>&1 </dev/null &
    echo $! >"$RUN/app-$a.pid"
  done
  for a in "${APPS[@]}"; do
    wait_until "$a" 60 "$LOGS/$a.log" curl -fsS --max-time 2 "http://127.0.0.1:$(app_port "$a")/ready"
    say "$a" "ready  http://127.0.0.1:$(app_port "$a")  (log: $LOGS/$a.log)"
  done
  say query "insights page: http://127.0.0.1:$(app_port query)/app  (sign in with a project's secret key)"
}

apps_down() {
  local a
  for a in "${APPS[@]}"; do
    pid_alive "app-$a" && say "$a" "stopping"
    stop_pid "app-$a" 30
  done
}

status() {
  local s
  for s in "${INFRA[@]}"; do
    if "${s}_running"; then
      if "${s}_ready"; then printf '%-11s running, ready (pid %s)\n' "$s" "$(cat "$RUN/$s.pid")"
      else printf '%-11s running, NOT ready (pid %s)\n' "$s" "$(cat "$RUN/$s.pid")"; fi
    else
      printf '%-11s stopped\n' "$s"
    fi
  done
  for s in "${APPS[@]}"; do
    if pid_alive "app-$s"; then printf '%-11s running http://127.0.0.1:%s (pid %s)\n' "$s" "$(app_port "$s")" "$(cat "$RUN/app-$s.pid")"
    else printf '%-11s stopped\n' "$s"; fi
  done
}

cmd=${1:-status}
shift || true
case $cmd in
up)
  services=("$@")
  ((${#services[@]})) || services=("${INFRA[@]}")
  for s in "${services[@]}"; do start_service "$s"; done
  if ((${#@} == 0)); then init_stack; fi
  ;;
down)
  if (($# == 0)); then apps_down; set -- "${INFRA[@]}"; fi
  for s in "$@"; do stop_service "$s"; done
  ;;
start) for s in "$@"; do start_service "$s"; done ;;
stop) for s in "$@"; do stop_service "$s"; done ;;
apps-up) apps_up ;;
apps-down) apps_down ;;
init) init_stack ;;
status) status ;;
running) for s in "${INFRA[@]}"; do "${s}_running" && echo "$s"; done; true ;;
clean)
  "$0" down
  say clean "removing $STATE"
  rm -rf "$STATE"
  ;;
*) die "unknown command '$cmd' (up, down, start, stop, apps-up, apps-down, init, status, running, clean)" ;;
esac

#!/usr/bin/env bash
# Applies the ClickHouse migrations (infrastructure/clickhouse/NNN_*.sql, in name order) over HTTP, keeping data.
# Idempotent: every statement is CREATE ... IF NOT EXISTS, or carries a guard line
#   -- skip-if: <SELECT returning a non-zero number when the statement was already applied>
# (ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS).
# Usage: infrastructure/init-clickhouse.sh [host:port]     (default localhost:8123)
#        infrastructure/init-clickhouse.sh --cluster NAME host:port [host:port...]
#
# Cluster mode applies the same files to every node listed (guards are asked per node), with *MergeTree engines
# made Replicated*: `events` is sharded (ZooKeeper path /clickhouse/tables/{shard}/<db>.events) and gets
# `events_distributed` over cluster NAME, sharded by cityHash64(distinct_id); every other table (the person
# mappings) is one full copy per node (path /clickhouse/tables/all/<db>.<table>), because queries join it on the
# node that runs them. runbooks/scaling.md says why. After the files, a Distributed table whose columns no longer
# match its local table (a migration added one) is recreated: it holds no data (inserts into it are synchronous).
set -euo pipefail
cluster=""
if [ "${1:-}" = --cluster ]; then
  cluster=${2:?--cluster needs a cluster name}
  shift 2
  (($# > 0)) || { echo "--cluster needs at least one host:port" >&2; exit 1; }
  targets=("$@")
else
  targets=("${1:-localhost:8123}")
fi
database=${CLICKHOUSE_DATABASE:-analytics}
[[ $database =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "CLICKHOUSE_DATABASE must be an identifier" >&2; exit 1; }
[[ -z $cluster || $cluster =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "the cluster name must be an identifier" >&2; exit 1; }
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/clickhouse"

# replicated <statement>: the statement for a cluster node, a *MergeTree engine made Replicated*.
replicated() {
  local stmt=$1 table engine args path
  if [[ $stmt =~ CREATE\ TABLE\ IF\ NOT\ EXISTS\ [A-Za-z0-9_]+\.([A-Za-z0-9_]+) ]] &&
    [[ $stmt =~ ENGINE\ =\ ([A-Za-z]*MergeTree)\(([^\)]*)\) ]]; then
    engine=${BASH_REMATCH[1]} args=${BASH_REMATCH[2]}
    [[ $stmt =~ CREATE\ TABLE\ IF\ NOT\ EXISTS\ [A-Za-z0-9_]+\.([A-Za-z0-9_]+) ]] && table=${BASH_REMATCH[1]}
    path="/clickhouse/tables/all/$database.$table"
    [ "$table" = events ] && path="/clickhouse/tables/{shard}/$database.$table"
    printf '%s' "${stmt/"ENGINE = $engine($args)"/"ENGINE = Replicated$engine('$path', '{replica}'${args:+, $args})"}"
  else
    printf '%s' "$stmt"
  fi
}

# run <url> <what> <sql>: one statement; on failure print ClickHouse's answer and stop.
run() {
  local out code
  out=$(curl -sS --max-time 60 "$1" --data-binary "$3" -w '\n%{http_code}') || { echo "$out" >&2; exit 1; }
  code=${out##*$'\n'}
  if [ "$code" != 200 ]; then
    echo "failed in $2:" >&2
    echo "${out%$'\n'*}" >&2
    exit 1
  fi
  printf '%s' "${out%$'\n'*}"
}

url_of() {
  local url="http://$1/"
  [ -n "${CLICKHOUSE_USER:-}" ] && url="$url?user=$CLICKHOUSE_USER&password=${CLICKHOUSE_PASSWORD:-}"
  printf '%s' "$url"
}

# apply <host:port> <file>: the file's statements on one server.
apply() {
  local target=$1 f=$2 url raw guard stmt done_already
  url=$(url_of "$target")
  # One statement per file section, separated by lines holding only ';' -- the HTTP interface takes one at a time.
  sed "s/\${DATABASE}/$database/g" "$f" | awk 'BEGIN{RS=";\n"} {if ($0 ~ /[^ \t\n]/) printf "%s%c", $0, 0}' |
    while IFS= read -r -d '' raw; do
      guard=$(printf '%s\n' "$raw" | sed -n 's/^-- skip-if: //p' | head -n 1)
      stmt=$(printf '%s\n' "$raw" | sed 's/--.*$//')
      [[ $stmt =~ [^[:space:]] ]] || continue
      if [ -n "$guard" ]; then
        done_already=$(curl -fsS --max-time 10 "$url" --data-binary "$guard") || { echo "guard failed in $(basename "$f")" >&2; exit 1; }
        [ "${done_already//[[:space:]]/}" != 0 ] && continue
      fi
      [ -n "$cluster" ] && stmt=$(replicated "$stmt")
      run "$url" "$(basename "$f")${cluster:+ on $target}" "$stmt" >/dev/null
    done
  echo "applied $(basename "$f")${cluster:+ on $target}"
}

# distributed <host:port>: events_distributed, created or recreated when the local table's columns changed.
distributed() {
  local target=$1 url cols
  url=$(url_of "$target")
  cols="SELECT groupArray(concat(name, ' ', type)) FROM system.columns WHERE database = '$database' AND table = '%s'"
  # shellcheck disable=SC2059
  if [ "$(run "$url" "events_distributed" "$(printf "$cols" events)")" != "$(run "$url" "events_distributed" "$(printf "$cols" events_distributed)")" ]; then
    run "$url" "events_distributed on $target" "DROP TABLE IF EXISTS $database.events_distributed" >/dev/null
    run "$url" "events_distributed on $target" "CREATE TABLE $database.events_distributed AS $database.events
ENGINE = Distributed($cluster, $database, events, cityHash64(distinct_id))" >/dev/null
    echo "created events_distributed on $target"
  fi
}

for t in "${targets[@]}"; do
  curl -fsS --max-time 5 "$(url_of "$t")" --data-binary "SELECT 1" >/dev/null ||
    { echo "ClickHouse is not answering at $t" >&2; exit 1; }
done
# File by file over every server: a replica created after its peer already ran a later migration would find
# the table in ZooKeeper different from its own CREATE and refuse it. A replicated ALTER reaches the peer
# through ZooKeeper, and the peer's guard then skips it.
for f in "$dir"/*.sql; do
  for t in "${targets[@]}"; do apply "$t" "$f"; done
done
if [ -n "$cluster" ]; then
  for t in "${targets[@]}"; do distributed "$t"; done
fi

#!/usr/bin/env bash
# Applies the ClickHouse migrations (infrastructure/clickhouse/NNN_*.sql, in name order) over HTTP, keeping data.
# Idempotent: every statement is CREATE ... IF NOT EXISTS, or carries a guard line
#   -- skip-if: <SELECT returning a non-zero number when the statement was already applied>
# (ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS).
# Usage: infrastructure/init-clickhouse.sh [host:port]     (default localhost:8123)
set -euo pipefail
target=${1:-localhost:8123}
database=${CLICKHOUSE_DATABASE:-analytics}
[[ $database =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "CLICKHOUSE_DATABASE must be an identifier" >&2; exit 1; }
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/clickhouse"
url="http://$target/"
[ -n "${CLICKHOUSE_USER:-}" ] && url="$url?user=$CLICKHOUSE_USER&password=${CLICKHOUSE_PASSWORD:-}"

curl -fsS --max-time 5 "${url}" --data-binary "SELECT 1" >/dev/null ||
  { echo "ClickHouse is not answering at $target" >&2; exit 1; }
for f in "$dir"/*.sql; do
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
      out=$(curl -sS --max-time 60 "$url" --data-binary "$stmt" -w '\n%{http_code}') || { echo "$out" >&2; exit 1; }
      code=${out##*$'\n'}
      if [ "$code" != 200 ]; then
        echo "failed in $(basename "$f"):" >&2
        echo "${out%$'\n'*}" >&2
        exit 1
      fi
    done
  echo "applied $(basename "$f")"
done

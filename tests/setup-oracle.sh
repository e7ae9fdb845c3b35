#!/usr/bin/env bash
# Test-only install of chdb (current ClickHouse in-process, 566 MB unpacked) into the state folder, kept out of
# the runtime dependencies. Tests import it from .local/oracle/node_modules.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="${INGEST_STATE_DIR:-$root/.local}/oracle"
version=3.4.0
if [ -f "$dir/node_modules/chdb/package.json" ] && grep -q "\"version\": \"$version\"" "$dir/node_modules/chdb/package.json"; then
  exit 0
fi
mkdir -p "$dir"
echo "installing chdb $version (test-only oracle) into $dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"oracle","private":true}' >package.json
npm install --silent --no-audit --no-fund "chdb@$version" >/dev/null

#!/usr/bin/env bash
# Test-only Python environment for the posthog-python SDK tests (tests/sdk/): a venv in the state folder with
# the pinned SDK from PyPI, kept out of the runtime. Idempotent: does nothing when the pinned version is there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="${INGEST_STATE_DIR:-$root/.local}/pyenv"
version=7.91.1
python=$(command -v python3 || true)
# Debian's interpreter has its venv module from python3-venv (make deps); prefer it over others on PATH.
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('posthog') != '$version')" 2>/dev/null; then
  exit 0
fi
echo "installing posthog-python $version (test-only) into $dir"
rm -rf "$dir"
"$python" -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check "posthog==$version"

#!/usr/bin/env bash
# Installs whatever the project needs and is missing; safe to run again (each step checks first).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUN_VERSION=1.4.5
VEGETA_VERSION=v12.13.0
# chromium: the browser tests (tests/support/browser.ts drives it through playwright-core).
# python3, python3-venv: the posthog-python SDK tests (tests/setup-pyenv.sh makes their venv).
# mmdebstrap: `make check-compose` builds the Docker base image's Debian root filesystem with it.
APT_PACKAGES=(clickhouse-server clickhouse-client postgresql redis-server librdkafka1 librdkafka-dev curl ca-certificates chromium python3 python3-venv mmdebstrap)

apt_updated=0
apt_install() {
  if ((apt_updated == 0)); then
    say deps "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  say deps "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1 || true)
if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null || missing+=(maven)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
command -v npm >/dev/null || missing+=(npm)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

# Bun, pinned: the npm package ships the binary itself.
if [ "$(bun --version 2>/dev/null || true)" != "$BUN_VERSION" ]; then
  say deps "installing bun $BUN_VERSION from npm"
  npm install -g --silent "bun@$BUN_VERSION" >/dev/null
fi

# Kafka broker + tools from Maven Central; refetched when the pom changes.
maven_libs "$ROOT/infrastructure/kafka/pom.xml" "$STATE/kafka/libs" Kafka

# vegeta, the open-model load generator (MIT), into the state folder's bin.
if [ ! -x "$STATE/bin/vegeta" ]; then
  say deps "go install vegeta $VEGETA_VERSION"
  mkdir -p "$STATE/bin"
  PATH="$PATH:/usr/local/go/bin" GOBIN="$STATE/bin" go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
fi

say deps "bun install"
(cd "$ROOT" && bun install --frozen-lockfile --silent)
say deps "ok"

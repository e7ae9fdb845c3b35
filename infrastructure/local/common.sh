# Shared by the native-stack scripts: paths, pid files, waiting with a deadline.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${INGEST_STATE_DIR:-$ROOT/.local}
RUN="$STATE/run"     # pid files of everything we started
LOGS="$STATE/logs"
KAFKA_BIN="$ROOT/infrastructure/kafka/bin"
mkdir -p "$RUN" "$LOGS"

say() { printf '\033[1m[%s]\033[0m %s\n' "$1" "${*:2}"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# pid_running <pid>: the process exists and has not exited. kill -0 alone also succeeds on a zombie (exited, not
# yet reaped by its parent), e.g. for a second after a kill -9: read its state from /proc.
pid_running() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  # Field 3, after the command name in parentheses (which may itself hold spaces or parentheses).
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$state" != X ]
}

# pid_alive <name>: the pid file exists and that process still runs.
pid_alive() {
  local f="$RUN/$1.pid"
  [ -f "$f" ] && pid_running "$(cat "$f")"
}

# stop_pid <name> [timeout_s]: SIGTERM the recorded process (and its group), SIGKILL after the timeout.
stop_pid() {
  local name=$1 timeout=${2:-30} f="$RUN/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if pid_running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      pid_running "$pid" || break
      sleep 0.1
    done
    if pid_running "$pid"; then
      say "$name" "did not stop within ${timeout}s, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

# wait_until <name> <timeout_s> <log file> <command...>: retry the probe until it succeeds; on timeout print
# the tail of the service's log and fail.
wait_until() {
  local name=$1 timeout=$2 log=$3 start
  shift 3
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) - start >= timeout)); then
      echo "--- last lines of $log ---" >&2
      tail -n 40 "$log" >&2 2>/dev/null || true
      die "$name did not become ready within ${timeout}s"
    fi
    sleep 0.3
  done
}

# port_open <port>: something listens on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# maven_libs <pom> <dir> <what>: the pom's runtime jars in <dir>, fetched with Maven from Central; fetched again
# only when the pom changes (its hash is kept beside the jars).
maven_libs() {
  local pom=$1 libs=$2 what=$3 stamp="$2/.pom.sha256"
  if [ ! -f "$stamp" ] || [ "$(sha256sum "$pom" | cut -d' ' -f1)" != "$(cat "$stamp")" ]; then
    say deps "fetching $what jars with Maven (${pom#"$ROOT"/})"
    rm -rf "$libs"
    mvn -q -B -f "$pom" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime
    sha256sum "$pom" | cut -d' ' -f1 >"$stamp"
  fi
}

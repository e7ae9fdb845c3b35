#!/usr/bin/env bash
# The native scale-out layout on one machine, beside the single-node stack (own ports, own state folder):
#   3 Kafka KRaft nodes (broker + controller each), 1 ZooKeeper, ClickHouse 2 shards x 2 replicas,
#   2 capture processes sharing one port (SO_REUSEPORT), 2 consumers in one group, 1 query app on the
#   Distributed table. PostgreSQL and Redis are the single-node stack's (started here if not running).
#
#   cluster.sh up                       start everything missing, create topics and tables, start the apps
#   cluster.sh down                     stop everything this script started (and PostgreSQL/Redis if it started them)
#   cluster.sh status                   one line per process
#   cluster.sh start|stop|kill NAME...  one process: kafka-1..3, zookeeper, ch-1..4, capture-1..2, consumer-1..2, query
#   cluster.sh env                      the ports and URLs, as shell assignments (tests and benches read them)
#
# Ports: CLUSTER_PORT_BASE (default 29000) + fixed offsets, see ports below. Memory: see runbooks/scaling.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../local/common.sh"
CSTATE="$STATE/cluster"
CRUN="$CSTATE/run"
CLOGS="$CSTATE/logs"
mkdir -p "$CRUN" "$CLOGS"
exec 3>&2
export PATH="$STATE/bin:$PATH"

B=${CLUSTER_PORT_BASE:-29000}
KAFKA_NODES=(1 2 3)
CH_NODES=(1 2 3 4)
kafka_port() { echo $((B + 90 + $1)); }            # 29091..29093
kafka_controller_port() { echo $((B + 190 + $1)); } # 29191..29193
ZK_PORT=$((B + 181))                                # 29181
ch_http_port() { echo $((B + 120 + $1)); }          # 29121..29124
ch_tcp_port() { echo $((B + 100 + $1)); }           # 29101..29104
ch_interserver_port() { echo $((B + 130 + $1)); }   # 29131..29134
ch_shard() { echo $((($1 + 1) / 2)); }              # ch-1, ch-2 -> shard 1; ch-3, ch-4 -> shard 2
CAPTURE_PORT=$((B + 800))
QUERY_PORT=$((B + 801))
consumer_port() { echo $((B + 801 + $1)); }        # 29802, 29803
CH_CLUSTER=ingest_cluster
BOOTSTRAP="127.0.0.1:$(kafka_port 1),127.0.0.1:$(kafka_port 2),127.0.0.1:$(kafka_port 3)"
# Which ClickHouse node each app talks to; each inserts/reads through its node's Distributed table.
CLICKHOUSE_ENTRY_QUERY=1
clickhouse_entry_consumer() { echo "$1"; } # consumer-1 -> ch-1, consumer-2 -> ch-2
ZK_LIBS="$STATE/zookeeper/libs"

# Heaps: three brokers at 256 MB and ZooKeeper at 128 MB (runbooks/scaling.md, "Memory and CPU").
CLUSTER_KAFKA_HEAP=${CLUSTER_KAFKA_HEAP:--Xmx256m -Xms256m}
CLUSTER_ZK_HEAP=${CLUSTER_ZK_HEAP:--Xmx128m -Xms128m}

pid_alive_c() { local f="$CRUN/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
stop_pid_c() { RUN="$CRUN" stop_pid "$@"; }
kafka_tool() { KAFKA_HEAP_OPTS=-Xmx128m "$KAFKA_BIN/$1" "${@:2}"; }

# ---- Kafka ----

kafka_ready_node() {
  port_open "$(kafka_port "$1")" &&
    kafka_tool kafka-topics --bootstrap-server "127.0.0.1:$(kafka_port "$1")" --list >/dev/null 2>&1
}

start_kafka() {
  local n=$1 dir="$CSTATE/kafka-$1" props voters="" i cid
  pid_alive_c "kafka-$n" && return 0
  port_open "$(kafka_port "$n")" && die "port $(kafka_port "$n") is taken by a process we did not start"
  [ -d "$STATE/kafka/libs" ] || die "Kafka jars missing: run 'make deps'"
  for i in "${KAFKA_NODES[@]}"; do voters+="${voters:+,}$i@127.0.0.1:$(kafka_controller_port "$i")"; done
  mkdir -p "$dir/data" "$CLOGS/kafka-$n"
  props="$dir/server.properties"
  sed -e "s#@DATA_DIR@#$dir/data#" -e "s#@NODE_ID@#$n#" -e "s#@VOTERS@#$voters#" \
    -e "s#@PORT@#$(kafka_port "$n")#" -e "s#@CONTROLLER_PORT@#$(kafka_controller_port "$n")#" \
    "$here/kafka/server.properties" >"$props"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # One cluster id for the three nodes, made once.
    [ -f "$CSTATE/kafka-cluster-id" ] ||
      kafka_tool kafka-run-class kafka.tools.StorageTool random-uuid >"$CSTATE/kafka-cluster-id"
    cid=$(cat "$CSTATE/kafka-cluster-id")
    kafka_tool kafka-run-class kafka.tools.StorageTool format -t "$cid" -c "$props" \
      >"$CLOGS/kafka-$n-format.log" 2>&1 || { tail -n 20 "$CLOGS/kafka-$n-format.log" >&2; die "formatting kafka-$n failed"; }
  fi
  # shellcheck disable=SC2086
  setsid java $CLUSTER_KAFKA_HEAP -XX:+UseSerialGC -XX:CICompilerCount=2 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infrastructure/kafka/log4j2.properties" -Dkafka.logs.dir="$CLOGS/kafka-$n" \
    -cp "$STATE/kafka/libs/*" kafka.Kafka "$props" >"$CLOGS/kafka-$n.stdout" 2>&1 </dev/null 3>&- &
  echo $! >"$CRUN/kafka-$n.pid"
}

# A node counts as caught up when no partition lists it outside the ISR.
kafka_topics_create() {
  local t
  for t in "events:${EVENTS_PARTITIONS:-12}" "events_dlq:3" "events_overflow:${EVENTS_PARTITIONS:-12}"; do
    kafka_tool kafka-topics --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "${t%%:*}" \
      --partitions "${t##*:}" --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  done
}

# ---- ZooKeeper ----

zk_ready() { [ "$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && echo ruok >&3 && timeout 2 cat <&3) 2>/dev/null)" = imok ]; }

start_zookeeper() {
  local dir="$CSTATE/zookeeper"
  pid_alive_c zookeeper && return 0
  port_open "$ZK_PORT" && die "port $ZK_PORT is taken by a process we did not start"
  [ -d "$ZK_LIBS" ] || die "ZooKeeper jars missing: run 'infrastructure/cluster/deps.sh'"
  mkdir -p "$dir/data" "$CLOGS/zookeeper"
  sed -e "s#@DATA_DIR@#$dir/data#" -e "s#@PORT@#$ZK_PORT#" "$here/zookeeper/zoo.cfg" >"$dir/zoo.cfg"
  # shellcheck disable=SC2086
  setsid java $CLUSTER_ZK_HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError \
    -Dlog4j2.configurationFile="$ROOT/infrastructure/kafka/log4j2.properties" -Dkafka.logs.dir="$CLOGS/zookeeper" \
    -Dzookeeper.jmx.log4j.disable=true -cp "$ZK_LIBS/*" org.apache.zookeeper.server.quorum.QuorumPeerMain \
    "$dir/zoo.cfg" >"$CLOGS/zookeeper.stdout" 2>&1 </dev/null 3>&- &
  echo $! >"$CRUN/zookeeper.pid"
}

# ---- ClickHouse ----

ch_ready() { [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$(ch_http_port "$1")/?query=SELECT%201" 2>/dev/null)" = 1 ]; }

ch_config() {
  local n=$1 dir=$2 s r
  {
    echo '<?xml version="1.0"?>'
    echo "<!-- Generated by infrastructure/cluster/cluster.sh for ch-$n (shard $(ch_shard "$n")); edits are overwritten. -->"
    echo '<yandex>'
    echo "  <logger><level>warning</level><log>$CLOGS/ch-$n.log</log><errorlog>$CLOGS/ch-$n.err.log</errorlog><size>50M</size><count>2</count></logger>"
    echo "  <listen_host>127.0.0.1</listen_host>"
    echo "  <http_port>$(ch_http_port "$n")</http_port><tcp_port>$(ch_tcp_port "$n")</tcp_port>"
    echo "  <interserver_http_host>127.0.0.1</interserver_http_host><interserver_http_port>$(ch_interserver_port "$n")</interserver_http_port>"
    echo "  <path>$dir/</path><tmp_path>$dir/tmp/</tmp_path><user_files_path>$dir/user_files/</user_files_path>"
    echo "  <format_schema_path>$dir/format_schemas/</format_schema_path>"
    echo "  <users_config>$here/clickhouse/users.xml</users_config>"
    echo "  <default_profile>default</default_profile><default_database>default</default_database>"
    echo "  <timezone>UTC</timezone><umask>027</umask>"
    # Small caches: four servers on one machine (the Debian defaults are 5 GB of marks, 8 GB uncompressed).
    echo "  <mark_cache_size>67108864</mark_cache_size><uncompressed_cache_size>67108864</uncompressed_cache_size>"
    echo "  <max_concurrent_queries>50</max_concurrent_queries><max_connections>1024</max_connections>"
    echo "  <keep_alive_timeout>3</keep_alive_timeout>"
    echo "  <remote_servers><$CH_CLUSTER>"
    for s in 1 2; do
      # internal_replication: the Distributed table writes one replica per shard, replication copies it on.
      echo "    <shard><internal_replication>true</internal_replication>"
      for r in "${CH_NODES[@]}"; do
        [ "$(ch_shard "$r")" = "$s" ] && echo "      <replica><host>127.0.0.1</host><port>$(ch_tcp_port "$r")</port></replica>"
      done
      echo "    </shard>"
    done
    echo "  </$CH_CLUSTER></remote_servers>"
    echo "  <zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>"
    echo "  <macros><cluster>$CH_CLUSTER</cluster><shard>$(ch_shard "$n")</shard><replica>ch-$n</replica></macros>"
    echo "  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
    echo '</yandex>'
  } >"$dir.config.xml"
}

start_ch() {
  local n=$1 dir="$CSTATE/ch-$1"
  pid_alive_c "ch-$n" && return 0
  port_open "$(ch_http_port "$n")" && die "port $(ch_http_port "$n") is taken by a process we did not start"
  mkdir -p "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  ch_config "$n" "$dir"
  setsid clickhouse-server --config-file="$dir.config.xml" >"$CLOGS/ch-$n.stdout" 2>&1 </dev/null 3>&- &
  echo $! >"$CRUN/ch-$n.pid"
}

ch_urls() {
  local n out=()
  for n in "${CH_NODES[@]}"; do out+=("127.0.0.1:$(ch_http_port "$n")"); done
  echo "${out[@]}"
}

# ---- apps ----

app_env() {
  case $1 in
  capture-*) echo "CAPTURE_HOST=127.0.0.1 CAPTURE_PORT=$CAPTURE_PORT CAPTURE_REUSE_PORT=true CAPTURE_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP" ;;
  consumer-*)
    local i=${1#consumer-}
    # A crashed consumer's partitions move to the other after 10 s instead of librdkafka's 45 s.
    echo "CONSUMER_PORT=$(consumer_port "$i") CONSUMER_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP CONSUMER_KAFKA_SESSION_TIMEOUT_MS=10000" \
      "CLICKHOUSE_URL=http://127.0.0.1:$(ch_http_port "$(clickhouse_entry_consumer "$i")") CONSUMER_EVENTS_TABLE=events_distributed"
    ;;
  # No trend rollup: its insert counter is kept by a materialized view per node, and replicated tables drop
  # identical blocks as duplicates, so on a cluster it could miss inserts (runbooks/scaling.md).
  query) echo "QUERY_HOST=127.0.0.1 QUERY_PORT=$QUERY_PORT CLICKHOUSE_URL=http://127.0.0.1:$(ch_http_port "$CLICKHOUSE_ENTRY_QUERY") QUERY_EVENTS_TABLE=events_distributed QUERY_TREND_ROLLUP=false" ;;
  esac
}
app_main() { local a=${1%-[0-9]}; echo "$ROOT/apps/$a/main.ts"; }
app_ready_url() {
  case $1 in
  capture-*) echo "http://127.0.0.1:$CAPTURE_PORT/ready" ;;
  consumer-*) echo "http://127.0.0.1:$(consumer_port "${1#consumer-}")/ready" ;;
  query) echo "http://127.0.0.1:$QUERY_PORT/ready" ;;
  esac
}
APPS=(capture-1 capture-2 consumer-1 consumer-2 query)

start_app() {
  local a=$1
  pid_alive_c "$a" && return 0
  # shellcheck disable=SC2046
  env $(app_env "$a") setsid bun "$(app_main "$a")" >>"$CLOGS/$a.log" 2>&1 </dev/null 3>&- &
  echo $! >"$CRUN/$a.pid"
}

# ---- the whole layout ----

ALL=(kafka-1 kafka-2 kafka-3 zookeeper ch-1 ch-2 ch-3 ch-4 "${APPS[@]}")

start_one() {
  case $1 in
  kafka-[123]) start_kafka "${1#kafka-}" ;;
  zookeeper) start_zookeeper ;;
  ch-[1234]) start_ch "${1#ch-}" ;;
  capture-[12] | consumer-[12] | query) start_app "$1" ;;
  *) die "unknown cluster process '$1' (one of: ${ALL[*]})" ;;
  esac
}

wait_one() {
  # A process that died at start fails at once, with its log, instead of after the whole timeout.
  case $1 in
  kafka-[123]) wait_until "$1" 120 "$CLOGS/$1/server.log" ready_or_dead "$1" "$CLOGS/$1.stdout" kafka_ready_node "${1#kafka-}" ;;
  zookeeper) wait_until zookeeper 60 "$CLOGS/zookeeper/server.log" ready_or_dead zookeeper "$CLOGS/zookeeper.stdout" zk_ready ;;
  ch-[1234]) wait_ch "$1" ;;
  *) wait_until "$1" 90 "$CLOGS/$1.log" ready_or_dead "$1" "$CLOGS/$1.log" curl -fsS --max-time 2 "$(app_ready_url "$1")" ;;
  esac
}

# wait_ch <ch-N>: ClickHouse 18.16 on today's glibc now and then fails its start-up right after a restart: it
# aborts on a robust-mutex assertion ("__pthread_mutex_lock_full") or hangs on a futex before opening its ports.
# Either way it is killed and started again, at most three tries of 60 s.
wait_ch() {
  local name=$1 n=${1#ch-} try start
  for try in 1 2 3; do
    start=$(date +%s)
    while (($(date +%s) - start < 60)); do
      ch_ready "$n" && return 0
      pid_alive_c "$name" || break
      sleep 0.3
    done
    if pid_alive_c "$name"; then
      say cluster "$name not answering after 60 s (try $try): killing it"
      kill -KILL "$(cat "$CRUN/$name.pid")" 2>/dev/null || true
      sleep 1
    else
      say cluster "$name exited during start-up (try $try): $(grep -m1 -o 'Assertion.*' "$CLOGS/$name.stdout" 2>/dev/null || echo 'see its log')"
    fi
    rm -f "$CRUN/$name.pid"
    ((try < 3)) && start_ch "$n"
  done
  tail -n 30 "$CLOGS/$name.err.log" >&2 2>/dev/null
  die "$name did not become ready (logs: $CLOGS/$name.err.log, $CLOGS/$name.stdout)"
}

# ready_or_dead <name> <log> <probe...>: the probe's answer while the process runs; if it died, stop waiting.
ready_or_dead() {
  local name=$1 log=$2
  shift 2
  # wait_until silences the probe: report on the script's own stderr (fd 3).
  pid_alive_c "$name" || { tail -n 30 "$log" >&3 2>/dev/null; die "$name exited during start-up (log: $log)" 2>&3; }
  "$@"
}

# Stop order matters only for a clean shutdown: apps first (they flush), then ClickHouse, ZooKeeper, Kafka.
stop_one() {
  local t=30
  case $1 in kafka-*) t=60 ;; ch-*) t=60 ;; esac
  pid_alive_c "$1" && say cluster "stopping $1"
  stop_pid_c "$1" "$t"
}

shared_up() {
  # PostgreSQL and Redis are not scaled out here: the apps use the single-node stack's. Remember what we started.
  local s running
  running=" $("$ROOT/infrastructure/local/stack.sh" running | tr '\n' ' ') "
  # Another checkout's stack (its pid files are not ours) counts as running when its port answers.
  port_open 5432 && running+=" postgres "
  port_open 6379 && running+=" redis "
  for s in postgres redis; do
    if [[ $running != *" $s "* ]]; then
      "$ROOT/infrastructure/local/stack.sh" start "$s"
      echo "$s" >>"$CSTATE/started-shared"
    fi
  done
  (cd "$ROOT" && bun infrastructure/postgres/migrate.ts >/dev/null)
}

shared_down() {
  [ -f "$CSTATE/started-shared" ] || return 0
  # shellcheck disable=SC2046
  "$ROOT/infrastructure/local/stack.sh" stop $(sort -u "$CSTATE/started-shared")
  rm -f "$CSTATE/started-shared"
}

up() {
  local p
  shared_up
  for p in kafka-1 kafka-2 kafka-3 zookeeper ch-1 ch-2 ch-3 ch-4; do
    pid_alive_c "$p" && { say cluster "$p already running"; continue; }
    # A ClickHouse server with replicated tables gives up at start when ZooKeeper does not answer yet.
    [[ $p == ch-1 ]] && wait_one zookeeper
    say cluster "starting $p"
    start_one "$p"
  done
  for p in kafka-1 kafka-2 kafka-3 zookeeper ch-1 ch-2 ch-3 ch-4; do wait_one "$p"; done
  say cluster "Kafka topics (RF 3, min.insync.replicas 2)"
  kafka_topics_create
  say cluster "ClickHouse DDL (replicated tables on 4 nodes + Distributed)"
  # shellcheck disable=SC2046
  "$ROOT/infrastructure/init-clickhouse.sh" --cluster "$CH_CLUSTER" $(ch_urls) >/dev/null
  for p in "${APPS[@]}"; do
    pid_alive_c "$p" && continue
    start_one "$p"
  done
  for p in "${APPS[@]}"; do wait_one "$p"; done
  say cluster "ready: capture http://127.0.0.1:$CAPTURE_PORT (x2), query http://127.0.0.1:$QUERY_PORT," \
    "consumers :$(consumer_port 1) :$(consumer_port 2), Kafka $BOOTSTRAP, ClickHouse $(ch_urls)"
}

down() {
  local i p
  for ((i = ${#ALL[@]} - 1; i >= 3; i--)); do stop_one "${ALL[$i]}"; done
  # The three brokers together: stopped one after the other, the last one loses its controller quorum and
  # waits for it until it is killed.
  for p in kafka-3 kafka-2 kafka-1; do
    pid_alive_c "$p" && say cluster "stopping $p" && kill -TERM "$(cat "$CRUN/$p.pid")" 2>/dev/null || true
  done
  for p in kafka-3 kafka-2 kafka-1; do stop_pid_c "$p" 60; done
  shared_down
}

status() {
  local p
  for p in "${ALL[@]}"; do
    if pid_alive_c "$p"; then printf '%-11s running (pid %s)\n' "$p" "$(cat "$CRUN/$p.pid")"; else printf '%-11s stopped\n' "$p"; fi
  done
}

print_env() {
  local n
  echo "CLUSTER_KAFKA=$BOOTSTRAP"
  for n in "${KAFKA_NODES[@]}"; do echo "CLUSTER_KAFKA_$n=127.0.0.1:$(kafka_port "$n")"; done
  for n in "${CH_NODES[@]}"; do echo "CLUSTER_CH_$n=http://127.0.0.1:$(ch_http_port "$n")"; done
  echo "CLUSTER_ZOOKEEPER=127.0.0.1:$ZK_PORT"
  echo "CLUSTER_CAPTURE=http://127.0.0.1:$CAPTURE_PORT"
  echo "CLUSTER_QUERY=http://127.0.0.1:$QUERY_PORT"
  echo "CLUSTER_CONSUMER_1=http://127.0.0.1:$(consumer_port 1)"
  echo "CLUSTER_CONSUMER_2=http://127.0.0.1:$(consumer_port 2)"
  echo "CLUSTER_CH_NAME=$CH_CLUSTER"
  echo "CLUSTER_STATE=$CSTATE"
}

cmd=${1:-status}
shift || true
case $cmd in
up) up ;;
down) down ;;
status) status ;;
env) print_env ;;
start)
  for p in "$@"; do start_one "$p"; done
  for p in "$@"; do wait_one "$p"; done
  ;;
wait) for p in "$@"; do wait_one "$p"; done ;;
stop) for p in "$@"; do stop_one "$p"; done ;;
# kill -9: the crash the cluster exists to survive (no flush, no clean shutdown).
kill) for p in "$@"; do pid_alive_c "$p" && kill -KILL "$(cat "$CRUN/$p.pid")"; rm -f "$CRUN/$p.pid"; done ;;
clean)
  down
  rm -rf "$CSTATE"
  ;;
*) die "unknown command '$cmd' (up, down, status, env, start, stop, kill, wait, clean)" ;;
esac

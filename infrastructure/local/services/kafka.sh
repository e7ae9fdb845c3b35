# Apache Kafka 4.x in KRaft mode (one broker that is its own controller) from the Maven jars, on 127.0.0.1:9092
# (KAFKA_PORT; its controller on KAFKA_CONTROLLER_PORT, 9093).
# shellcheck shell=bash
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}

kafka_running() { pid_alive kafka; }
# A real metadata round trip, not just an open port: the broker answers only once it has joined the quorum.
kafka_ready() {
  port_open "$KAFKA_PORT" &&
    KAFKA_HEAP_OPTS=-Xmx128m "$KAFKA_BIN/kafka-topics" --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

kafka_start() {
  local dir="$STATE/kafka" props
  port_open "$KAFKA_PORT" && ! kafka_running && die "port $KAFKA_PORT is taken by a process we did not start"
  port_open "$KAFKA_CONTROLLER_PORT" && ! kafka_running && die "port $KAFKA_CONTROLLER_PORT is taken by a process we did not start"
  [ -d "$dir/libs" ] || die "Kafka jars missing: run 'make deps'"
  mkdir -p "$dir/data"
  props="$dir/server.properties"
  sed -e "s#@DATA_DIR@#$dir/data#" -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$ROOT/infrastructure/kafka/server.properties" >"$props"
  if [ ! -f "$dir/data/meta.properties" ]; then
    KAFKA_HEAP_OPTS=-Xmx256m "$KAFKA_BIN/kafka-run-class" kafka.tools.StorageTool format --standalone \
      -t "$(KAFKA_HEAP_OPTS=-Xmx128m "$KAFKA_BIN/kafka-run-class" kafka.tools.StorageTool random-uuid)" \
      -c "$props" >"$LOGS/kafka-format.log" 2>&1 || {
      tail -n 20 "$LOGS/kafka-format.log" >&2
      die "formatting Kafka storage failed"
    }
  fi
  setsid java ${KAFKA_BROKER_HEAP:--Xmx768m -Xms768m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infrastructure/kafka/log4j2.properties" -Dkafka.logs.dir="$LOGS/kafka" \
    -cp "$dir/libs/*" kafka.Kafka "$props" >"$LOGS/kafka.stdout" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
  wait_until kafka 90 "$LOGS/kafka/server.log" kafka_ready
}

kafka_stop() { stop_pid kafka 60; }

# The application topics, created once; an existing topic is left as it is (partitions may have been raised).
kafka_topics() {
  local t existing
  # One metadata request without a JVM: on a running stack (`make up` again) every topic is there already.
  existing=$(cd "$ROOT" && bun lib/kafka/topics-cli.ts --bootstrap-server "127.0.0.1:$KAFKA_PORT" 2>/dev/null) || existing=""
  for t in "events:${EVENTS_PARTITIONS:-12}" "events_dlq:3" "events_overflow:${EVENTS_PARTITIONS:-12}"; do
    grep -qxF "${t%%:*}" <<<"$existing" && continue
    KAFKA_HEAP_OPTS=-Xmx128m "$KAFKA_BIN/kafka-topics" --bootstrap-server "127.0.0.1:$KAFKA_PORT" --create \
      --if-not-exists --topic "${t%%:*}" --partitions "${t##*:}" --replication-factor 1 >/dev/null
  done
}

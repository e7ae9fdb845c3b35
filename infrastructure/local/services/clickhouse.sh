# ClickHouse (Debian's clickhouse-server) with its own data path under the state folder, HTTP 8123, native 9000,
# interserver 9009 (CLICKHOUSE_HTTP_PORT, CLICKHOUSE_TCP_PORT, CLICKHOUSE_INTERSERVER_PORT).
# shellcheck shell=bash
CLICKHOUSE_HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-8123}
CLICKHOUSE_TCP_PORT=${CLICKHOUSE_TCP_PORT:-9000}
CLICKHOUSE_INTERSERVER_PORT=${CLICKHOUSE_INTERSERVER_PORT:-9009}

clickhouse_running() { pid_alive clickhouse; }
clickhouse_ready() {
  [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%201" 2>/dev/null)" = 1 ]
}

clickhouse_start() {
  local dir="$STATE/clickhouse"
  mkdir -p "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  port_open "$CLICKHOUSE_HTTP_PORT" && ! clickhouse_running &&
    die "port $CLICKHOUSE_HTTP_PORT is taken by a process we did not start"
  # Runs as root outside systemd; every path that defaults to /var is redirected into the state folder.
  setsid clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
    --path="$dir/" --tmp_path="$dir/tmp/" --user_files_path="$dir/user_files/" \
    --format_schema_path="$dir/format_schemas/" --logger.log="$LOGS/clickhouse.log" \
    --logger.errorlog="$LOGS/clickhouse.err.log" --logger.level=warning \
    --http_port="$CLICKHOUSE_HTTP_PORT" --tcp_port="$CLICKHOUSE_TCP_PORT" \
    --interserver_http_port="$CLICKHOUSE_INTERSERVER_PORT" --mark_cache_size=536870912 \
    >"$LOGS/clickhouse.stdout" 2>&1 </dev/null &
  echo $! >"$RUN/clickhouse.pid"
  wait_until clickhouse 60 "$LOGS/clickhouse.err.log" clickhouse_ready
}

clickhouse_stop() { stop_pid clickhouse 60; }

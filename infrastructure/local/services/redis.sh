# Redis on 127.0.0.1:6379, data and log in the state folder.
# shellcheck shell=bash
REDIS_PORT=${REDIS_PORT:-6379}

redis_running() { pid_alive redis; }
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_start() {
  mkdir -p "$STATE/redis"
  port_open "$REDIS_PORT" && ! redis_running && die "port $REDIS_PORT is taken by a process we did not start"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" --daemonize yes \
    --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log" --save "" --appendonly no \
    --protected-mode yes >/dev/null
  wait_until redis 20 "$LOGS/redis.log" redis_ready
}

redis_stop() { stop_pid redis 10; }

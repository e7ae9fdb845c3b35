# PostgreSQL cluster of our own (initdb) on 127.0.0.1:5432, owned by the `postgres` system user, with the
# project's role and database.
# shellcheck shell=bash
POSTGRES_PORT=${POSTGRES_PORT:-5432}
PG_DB=${PG_DB:-ingest}
PG_USER=${PG_USER:-ingest}
PG_PASSWORD=${PG_PASSWORD:-ingest}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || die "PostgreSQL binaries not found: run 'make deps'"
  echo "$d"
}

as_postgres() { runuser -u postgres -- "$@"; }

postgres_running() { pid_alive postgres; }
postgres_ready() { "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT"; }

postgres_start() {
  local bin dir="$STATE/postgres"
  bin=$(pg_bindir)
  port_open "$POSTGRES_PORT" && ! postgres_running && die "port $POSTGRES_PORT is taken by a process we did not start"
  mkdir -p "$dir/run"
  # The server refuses to run as root: its folder belongs to `postgres`, and every parent must be traversable.
  chown -R postgres:postgres "$dir"
  # A checkout in a private folder (mktemp -d is 0700) would hide the data folder from `postgres`: grant
  # traversal (x only, no listing) on each parent that lacks it.
  local d="$STATE"
  while [ "$d" != / ]; do
    runuser -u postgres -- test -x "$d" 2>/dev/null || chmod o+x "$d"
    d=$(dirname "$d")
  done
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 || {
      tail -n 20 "$LOGS/postgres-initdb.log" >&2
      die "initdb failed"
    }
  fi
  touch "$LOGS/postgres.log" && chown postgres:postgres "$LOGS/postgres.log"
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$LOGS/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -k $dir/run -c fsync=on -c shared_buffers=256MB" \
    start >/dev/null || {
    tail -n 20 "$LOGS/postgres.log" >&2
    die "PostgreSQL did not start"
  }
  head -n 1 "$dir/data/postmaster.pid" >"$RUN/postgres.pid"
  wait_until postgres 30 "$LOGS/postgres.log" postgres_ready
  # The project's role and database, created once.
  local psql=("$bin/psql" -q -h "$dir/run" -p "$POSTGRES_PORT" -U postgres -v ON_ERROR_STOP=1)
  if [ -z "$(as_postgres "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" ]; then
    as_postgres "${psql[@]}" -c "CREATE ROLE \"$PG_USER\" LOGIN PASSWORD '$PG_PASSWORD'"
  fi
  if [ -z "$(as_postgres "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" ]; then
    as_postgres "${psql[@]}" -c "CREATE DATABASE \"$PG_DB\" OWNER \"$PG_USER\""
  fi
}

postgres_stop() {
  local dir="$STATE/postgres"
  if postgres_running; then
    as_postgres "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || stop_pid postgres 30
  fi
  rm -f "$RUN/postgres.pid"
}

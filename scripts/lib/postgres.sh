#!/usr/bin/env bash
# A private PostgreSQL for TrainingService, from Debian's packages: installed if missing, initialised in a data
# directory of our own, started on a loopback port. PostgreSQL refuses to run as root, so as root it runs as the
# 'postgres' system user. Source this file, then call: pg_start DATA_DIR PORT [extra postgres -c settings...]

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

pg_log() { printf '[postgres] %s\n' "$*" >&2; }

pg_find_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then PG_BIN="$dir"; return 0; fi
  if command -v pg_ctl >/dev/null 2>&1; then PG_BIN=$(dirname "$(command -v pg_ctl)"); return 0; fi
  return 1
}

pg_install() {
  pg_log "PostgreSQL server not found; installing Debian's postgresql package (or set ConnectionStrings__Postgres)"
  apt_install postgresql
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start DATA_DIR PORT [settings...]: sets PG_CONNECTION (Npgsql connection string to database 'postgres').
pg_start() {
  local data=$1 port=$2; shift 2
  pg_find_bin || { pg_install && pg_find_bin; } || { pg_log "could not find or install PostgreSQL"; return 1; }
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    chown postgres "$data"; chmod 700 "$data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    pg_log "initialising $data"
    pg_as_owner "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null || return 1
  fi
  local options="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data -c max_connections=300"
  for setting in "$@"; do options="$options -c $setting"; done
  if pg_as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    pg_log "already running in $data"
  else
    pg_log "starting on 127.0.0.1:$port ($data)"
    pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -o "$options" -w -t 60 start >/dev/null || {
      pg_log "start failed; log follows"; tail -n 30 "$data/server.log" >&2; return 1; }
  fi
  PG_CONNECTION="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
}

# pg_create_database PORT NAME: creates the database unless it exists.
pg_create_database() {
  local port=$1 name=$2
  if ! "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" postgres | grep -q 1; then
    "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE \"$name\"" postgres >/dev/null
  fi
}

pg_stop() {
  local data=$1
  [ -n "${PG_BIN:-}" ] && [ -f "$data/PG_VERSION" ] && pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

#!/usr/bin/env bash
# Starts TrainingService at http://localhost:8080 (API and a worker in one process).
# Without ConnectionStrings__Postgres it starts a private PostgreSQL (installing Debian's package if needed) and keeps
# its data between runs. Extra arguments go to the service, e.g. scripts/run.sh --role api
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/postgres.sh"

if [ -z "${ConnectionStrings__Postgres:-}" ]; then
  port=${TRAININGSERVICE_PG_PORT:-55432}
  if [ "$(id -u)" -eq 0 ]; then data=${TRAININGSERVICE_PG_DATA:-/var/lib/trainingservice/postgres}
  else data=${TRAININGSERVICE_PG_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/trainingservice/postgres}; fi
  pg_start "$data" "$port"
  pg_create_database "$port" trainingservice
  export ConnectionStrings__Postgres="Host=127.0.0.1;Port=$port;Username=postgres;Database=trainingservice"
fi

cd "$root"
exec dotnet run --project src/TrainingService.Server -c Release -- "$@"

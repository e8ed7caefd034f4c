#!/usr/bin/env bash
# Runs a benchmark: scripts/bench.sh <train|losses|upload|service|evaluate|profile|fuzz|faults|fairness|scaleout|sweep|dashboard> [options]
# Builds in Release; for upload, service, evaluate, fuzz, fairness, scaleout, sweep and dashboard starts a throwaway PostgreSQL (and installs
# wrk for service, Debian's chromium for dashboard);
# for faults always a PostgreSQL of its own, which the benchmark restarts;
# for train installs the TensorFlow.js baseline (npm ci in bench/tfjs) and PyTorch (Debian's python3-torch, with apt-get).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/postgres.sh"
source "$root/scripts/lib/chromium.sh"
cd "$root"
command=${1:-}
dotnet build TrainingService.sln -c Release -v quiet -nologo >/dev/null

case "$command" in
  train)
    [ -d bench/tfjs/node_modules ] || npm ci --prefix bench/tfjs --no-audit --no-fund >&2
    # PyPI is not reachable from the build machines; Debian packages PyTorch (1.13, CPU). bench/torch/train.py runs with it.
    /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || apt_install python3-torch ;;
  upload|service|evaluate|fuzz|fairness|scaleout|sweep|dashboard)
    [ "$command" = dashboard ] && chromium_ensure
    if [ "$command" = service ] && ! command -v wrk >/dev/null 2>&1; then apt_install wrk; fi
    if [ -z "${TRAININGSERVICE_BENCH_POSTGRES:-}" ]; then
      data=$(mktemp -d /tmp/trainingservice-bench-pg.XXXXXX)
      trap 'pg_stop "$data"; rm -rf "$data"' EXIT
      pg_start "$data" "${TRAININGSERVICE_BENCH_PG_PORT:-55434}" max_wal_size=4GB
      pg_create_database "${TRAININGSERVICE_BENCH_PG_PORT:-55434}" bench
      export TRAININGSERVICE_BENCH_POSTGRES="Host=127.0.0.1;Port=${TRAININGSERVICE_BENCH_PG_PORT:-55434};Username=postgres;Database=bench;Maximum Pool Size=200"
    fi ;;
  faults)
    # Never a shared server: this one is restarted mid-job.
    data=$(mktemp -d /tmp/trainingservice-faults-pg.XXXXXX)
    port=${TRAININGSERVICE_FAULTS_PG_PORT:-55537}
    trap 'pg_stop "$data"; rm -rf "$data"' EXIT
    pg_start "$data" "$port"
    pg_create_database "$port" faults
    export TRAININGSERVICE_BENCH_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=faults;Maximum Pool Size=100"
    pg_ctl_cmd="$PG_BIN/pg_ctl -D $data -w -t 60 restart -m fast"
    [ "$(id -u)" -eq 0 ] && pg_ctl_cmd="runuser -u postgres -- $pg_ctl_cmd"
    export TRAININGSERVICE_BENCH_PG_RESTART="$pg_ctl_cmd" ;;
esac
dotnet bench/TrainingService.Bench/bin/Release/net10.0/TrainingService.Bench.dll "$@"

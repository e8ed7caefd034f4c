#!/usr/bin/env bash
# Runs every test. Starts a throwaway PostgreSQL (installing Debian's package if needed) unless
# TRAININGSERVICE_TEST_POSTGRES already names a server; the tests create and drop their own databases on it.
# The browser tests drive Debian's chromium, installed here if missing (scripts/lib/chromium.sh).
# Extra arguments go to dotnet test, e.g. scripts/test.sh --filter Losses
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/postgres.sh"
source "$root/scripts/lib/chromium.sh"
chromium_ensure

if [ -z "${TRAININGSERVICE_TEST_POSTGRES:-}" ]; then
  data=$(mktemp -d /tmp/trainingservice-test-pg.XXXXXX)
  port=${TRAININGSERVICE_TEST_PG_PORT:-55433}
  trap 'pg_stop "$data"; rm -rf "$data"' EXIT
  # Durability buys nothing in a throwaway test database.
  pg_start "$data" "$port" fsync=off synchronous_commit=off full_page_writes=off
  export TRAININGSERVICE_TEST_POSTGRES="$PG_CONNECTION"
fi

cd "$root"
# One test project at a time (-m:1): the browser tests drive chromium against a real service while the server tests
# train jobs and start processes of their own; on two cores, all at once made timing-sensitive steps flaky.
dotnet test TrainingService.sln -c Release -m:1 "$@"

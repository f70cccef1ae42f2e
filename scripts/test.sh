#!/usr/bin/env bash
# The project's one test command: installs PostgreSQL and pg_auto_failover if they are missing, starts a throwaway server (own data
# directory, port on 127.0.0.1, fsync on: durability is what we test), runs every test against it, then a 10-second
# peak-day smoke of the load tool against a PostgreSQL-mode silo, validates deploy/ (deploy/check.sh, and deploy/check-test.sh that it refuses broken copies), and stops everything.
# Extra arguments go to `dotnet test` (e.g. --filter Durability) and skip the smoke.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v dotnet >/dev/null || { echo "test.sh: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
source "$root/scripts/lib/throwaway-postgres.sh"
# The failover tests run a pg_auto_failover formation (pg_autoctl) built for the installed PostgreSQL major version.
if ! command -v pg_autoctl >/dev/null; then
  major="$(basename "$(dirname "$bin")")"
  echo "pg_autoctl not found; installing postgresql-$major-auto-failover from Debian's packages"
  [ "$(id -u)" -eq 0 ] || { echo "need root (or sudo) to apt-get install postgresql-$major-auto-failover" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$major-auto-failover" >/dev/null
fi
# The engine, the tests and the load tool share a signing key made for this run (never written to the repository).
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"

cd "$root"
# The whole solution (engine, tests, load tool), then the tests without building again.
dotnet build LoyaltyGrains.sln -c Release -nologo -v quiet
# Tests that measure something (the crash test's counts) append a line here; printed below, pass or fail.
export LOYALTY_TEST_SUMMARY="$data/test-summary.txt"
status=0
dotnet test LoyaltyGrains.sln -c Release --no-build --logger "console;verbosity=normal" "$@" || status=$?
if [ -s "$LOYALTY_TEST_SUMMARY" ]; then
  echo "test.sh: figures recorded by the tests:"
  cat "$LOYALTY_TEST_SUMMARY"
fi
[ "$status" -eq 0 ] || exit "$status"

# No timing assertions in the smoke: it fails only if the engine answers wrongly (balances, ledgers, duplicates).
if [ $# -eq 0 ] && [ -z "${LOYALTY_SKIP_SMOKE:-}" ]; then
  grpc_port=$((port + 100))
  start_silo loyalty_smoke "$grpc_port"
  dotnet loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll --scenario peak-day \
    --target "http://127.0.0.1:$grpc_port" --rate 50 --duration 10s --warmup 2s --members 200 --out "$data/smoke-report" \
    || { echo "test.sh: the peak-day smoke failed; silo log:"; tail -50 "$data/silo.log"; exit 1; }
  echo "test.sh: peak-day smoke passed"
  # deploy/ validated offline, its dashboard and alerts against what this engine really exports after the smoke.
  curl -s "http://127.0.0.1:$((grpc_port + 1))/metrics" > "$data/metrics.txt"
  METRICS_FILE="$data/metrics.txt" "$root/deploy/check.sh"
  # ... and check.sh itself refuses a broken copy of each artifact.
  METRICS_FILE="$data/metrics.txt" "$root/deploy/check-test.sh"
fi

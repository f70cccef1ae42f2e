#!/usr/bin/env bash
# PostgreSQL CPU per durable authorization (docs/BENCHMARKS.md, "PostgreSQL per durable posting"): a throwaway
# PostgreSQL and a PostgreSQL-mode silo (Release build, fresh database), the load tool's authorize scenario at a fixed
# rate, and over a window in its steady state: the CPU of every process of that PostgreSQL server (the postmaster,
# its backends and background processes, and children that exited meanwhile) from /proc, divided by the ledger rows
# committed in the window (authorization rows, and all rows). Prints one line per run.
#   scripts/pg-cpu-per-posting.sh                       # 1 000 authorizations/s, 20 s window
#   RATE=2000 WINDOW=30 RUNS=2 GRPC_PORT=41400 scripts/pg-cpu-per-posting.sh
# LOYALTY_TEST_PG_PORT picks the PostgreSQL port, GRPC_PORT the silo's (it also takes the next three).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rate="${RATE:-1000}"
window="${WINDOW:-20}"
runs="${RUNS:-1}"
[ -n "${NO_BUILD:-}" ] || dotnet build LoyaltyGrains.sln -c Release -v quiet -nologo
source "$root/scripts/lib/throwaway-postgres.sh"
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"
grpc_port="${GRPC_PORT:-$((port + 100))}"
ticks_per_second="$(getconf CLK_TCK)"

# Clock ticks used by the server: live processes' own time, plus the postmaster's children that already exited.
# One awk over /proc/*/stat (fields: 1 pid, 2 (comm), 4 ppid, 14 utime, 15 stime, 16 cutime, 17 cstime).
server_ticks() {
  awk -v postmaster="$(head -1 "$data/db/postmaster.pid")" '
    $2 != "(postgres)" { nextfile }
    $1 == postmaster { total += $14 + $15 + $16 + $17 }
    $4 == postmaster { total += $14 + $15 }
    { nextfile }
    END { print total + 0 }' /proc/[0-9]*/stat 2>/dev/null
}

psql_value() { "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$1" -Atq -c "$2"; }
ledger_rows() { psql_value "$1" "SELECT count(*) FROM loyalty.ledger_keys"; }
authorizations() { psql_value "$1" "SELECT count(*) FROM loyalty.ledger WHERE kind = 2"; }

for run in $(seq 1 "$runs"); do
  database="loyalty_pgcpu_$run"
  start_silo "$database" "$grpc_port"
  out="$data/load-$run"
  dotnet loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll --scenario authorize \
    --target "http://127.0.0.1:$grpc_port" --rate "$rate" --warmup 5s --duration "$((window + 60))s" --out "$out" > "$data/load-$run.log" 2>&1 &
  load_pid=$!
  # Steady state: set-up done (the ledger grows at about the rate), then 15 s more, so that every member has had its
  # first authorization (the first one of a month also writes the member's tier entry).
  previous="$(ledger_rows "$database")"
  for _ in $(seq 1 120); do
    sleep 2
    current="$(ledger_rows "$database")"
    [ $((current - previous)) -ge $((rate * 2 * 8 / 10)) ] && break
    previous="$current"
  done
  sleep 15
  rows_before="$(ledger_rows "$database")"; authorized_before="$(authorizations "$database")"; ticks_before="$(server_ticks)"; started="$(date +%s.%N)"
  sleep "$window"
  ticks_after="$(server_ticks)"; ended="$(date +%s.%N)"
  rows_after="$(ledger_rows "$database")"; authorized_after="$(authorizations "$database")"
  kill "$load_pid" 2>/dev/null || true
  wait "$load_pid" 2>/dev/null || true
  kill "$silo_pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$silo_pid" 2>/dev/null || true
  silo_pid=
  rows=$((rows_after - rows_before))
  authorized=$((authorized_after - authorized_before))
  awk -v run="$run" -v rows="$rows" -v authorized="$authorized" -v ticks=$((ticks_after - ticks_before)) -v hz="$ticks_per_second" -v s="$started" -v e="$ended" -v rate="$rate" 'BEGIN {
    seconds = e - s; cpu = ticks / hz
    printf "run %d: rate %d/s, window %.1f s, %d authorizations (%.0f/s) in %d ledger rows, PostgreSQL CPU %.2f s = %.1f%% of a core: %.1f us per authorization, %.1f us per row\n",
      run, rate, seconds, authorized, authorized / seconds, rows, cpu, 100 * cpu / seconds, (authorized > 0 ? 1e6 * cpu / authorized : 0), (rows > 0 ? 1e6 * cpu / rows : 0) }'
done

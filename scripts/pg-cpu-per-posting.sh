#!/usr/bin/env bash
# PostgreSQL CPU per durable authorization (docs/BENCHMARKS.md, "PostgreSQL per durable posting"): a throwaway
# PostgreSQL and a PostgreSQL-mode silo (Release build, fresh database), the load tool's authorize scenario at a fixed
# rate, and over a window in its steady state: the CPU of every process of that PostgreSQL server (the postmaster,
# its backends and background processes, and children that exited meanwhile) from /proc, divided by the ledger entries
# the silo committed in the window (its metrics; in the steady state every entry is an authorization: the tier entry
# of each member's first authorization of the month comes before the window). Prints one line per run.
#   scripts/pg-cpu-per-posting.sh                       # 1 000 authorizations/s, 20 s window
#   RATE=2000 WINDOW=30 RUNS=2 GRPC_PORT=41400 scripts/pg-cpu-per-posting.sh
# LOYALTY_TEST_PG_PORT picks the PostgreSQL port, GRPC_PORT the silo's (it also takes the next three). The silo's
# settings can be given as environment variables, e.g. Loyalty__Ledger__BatchDelayMax=00:00:00.002.
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

# Clock ticks used by the server: live processes' own time, plus the postmaster's children that already exited
# (/proc/PID/stat fields: 1 pid, 2 (comm), 4 ppid, 14 utime, 15 stime, 16 cutime, 17 cstime).
server_ticks() {
  local postmaster pid
  postmaster="$(head -1 "$data/db/postmaster.pid")"
  for pid in "$postmaster" $(ps -o pid= --ppid "$postmaster"); do cat "/proc/$pid/stat" 2>/dev/null || true; done |
    awk -v postmaster="$postmaster" '
      $1 == postmaster { total += $14 + $15 + $16 + $17; next }
      $4 == postmaster { total += $14 + $15 }
      END { print total + 0 }'
}

ledger_rows() { "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$1" -Atq -c "SELECT count(*) FROM loyalty.ledger_keys"; }
# Entries and batches the silo's ledger writers committed, and the sums (ms) of the batches' write times and of their
# oldest appends' queue waits (its /metrics: loyalty.ledger.batch.entries, .batch.write.duration, .queue.wait).
committed() {
  curl -s "http://127.0.0.1:$((grpc_port + 1))/metrics" | awk '
    /^loyalty_ledger_batch_entries[a-z_]*_sum[ {]/ { entries += $NF }
    /^loyalty_ledger_batch_entries[a-z_]*_count[ {]/ { batches += $NF }
    /^loyalty_ledger_batch_write_duration[a-z_]*_sum[ {]/ { write += $NF }
    /^loyalty_ledger_queue_wait[a-z_]*_sum[ {]/ { wait += $NF }
    END { printf "%d %d %f %f\n", entries, batches, write, wait }'
}

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
  ticks_before="$(server_ticks)"; read -r entries_before batches_before write_before wait_before < <(committed); started="$(date +%s.%N)"
  sleep "$window"
  ticks_after="$(server_ticks)"; read -r entries_after batches_after write_after wait_after < <(committed); ended="$(date +%s.%N)"
  kill "$load_pid" 2>/dev/null || true
  wait "$load_pid" 2>/dev/null || true
  kill "$silo_pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$silo_pid" 2>/dev/null || true
  silo_pid=
  entries=$((entries_after - entries_before)); batches=$((batches_after - batches_before))
  awk -v run="$run" -v entries="$entries" -v batches="$batches" -v ticks=$((ticks_after - ticks_before)) -v hz="$ticks_per_second" \
      -v s="$started" -v e="$ended" -v rate="$rate" -v write="$write_before $write_after" -v wait="$wait_before $wait_after" 'BEGIN {
    seconds = e - s; cpu = ticks / hz
    split(write, w, " "); split(wait, q, " ")
    printf "run %d: rate %d/s, window %.1f s: %d ledger entries (%.0f/s) in %d commits (%.1f per commit), PostgreSQL CPU %.2f s = %.1f%% of a core: %.1f us per entry; per batch: write %.2f ms, oldest append queued %.2f ms\n",
      run, rate, seconds, entries, entries / seconds, batches, (batches > 0 ? entries / batches : 0), cpu, 100 * cpu / seconds, (entries > 0 ? 1e6 * cpu / entries : 0),
      (batches > 0 ? (w[2] - w[1]) / batches : 0), (batches > 0 ? (q[2] - q[1]) / batches : 0) }'
done

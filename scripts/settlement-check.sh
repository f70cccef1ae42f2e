#!/usr/bin/env bash
# Partner settlement end to end, as an operator would check it, in one command:
#   a throwaway PostgreSQL and a PostgreSQL-mode silo; the load tool's campaign-rush (a partner-funded campaign) killed
#   by kill -9 of the silo mid-run; restart; a second campaign-rush run to the end while the delivery lag is sampled;
#   wait for the lag to reach 0; then loyalty.check_payouts(), the events in the payouts against the ledger's, and the
#   accounting export reconciled against the ledger, the delivered payouts and the engine's GetPayouts.
# Exit 0 when every partner's payouts equal the ledger, 1 otherwise.
#   scripts/settlement-check.sh                       # 200 purchases/s, 20 s per run, 1 000 members
#   scripts/settlement-check.sh --rate 400 --duration 30s --members 1000
# Environment: LOYALTY_TEST_PG_PORT (PostgreSQL port), SETTLE_GRPC_PORT (the silo takes it and the next three),
# SETTLE_NO_BUILD=1 to use the current Release build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v dotnet >/dev/null || { echo "settlement-check.sh: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
rate=200 duration=20s members=1000 kill_after=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --members) members="$2"; shift 2 ;;
    --kill-after) kill_after="$2"; shift 2 ;;
    *) echo "usage: $0 [--rate N] [--duration T] [--members N] [--kill-after SECONDS]" >&2; exit 2 ;;
  esac
done
cd "$root"
[ -n "${SETTLE_NO_BUILD:-}" ] || dotnet build LoyaltyGrains.sln -c Release -nologo -v quiet
source "$root/scripts/lib/throwaway-postgres.sh"
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"

grpc_port="${SETTLE_GRPC_PORT:-$((port + 100))}"
metrics="http://127.0.0.1:$((grpc_port + 1))/metrics"
database=loyalty_settle
connection="Host=127.0.0.1;Port=$port;Username=postgres;Database=$database"
silo_dll="$root/silo/bin/Release/net10.0/LoyaltyGrains.Silo.dll"
load_dll="$root/loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll"
sql() { "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$database" -qAt -c "$1"; }
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE $database" >/dev/null
# Kept after the run (the database goes with the throwaway server): load reports, logs, the export, metrics.
out="$(mktemp -d /tmp/settlement-check.XXXXXX)"
echo "reports, logs and the export: $out"

# The silo in the background, on the same database each time; returns when it serves gRPC. Tried three times: its
# ports are in the ephemeral range, where an outgoing connection may hold one for a moment.
run_silo() {
  for _ in 1 2 3; do
    LOYALTY_POSTGRES="$connection" LOYALTY_GRPC_PORT=$grpc_port LOYALTY_METRICS_PORT=$((grpc_port + 1)) \
      LOYALTY_SILO_PORT=$((grpc_port + 2)) LOYALTY_GATEWAY_PORT=$((grpc_port + 3)) \
      exec dotnet "$silo_dll" >> "$out/silo.log" 2>&1 &
    silo_pid=$!
    for _ in $(seq 1 240); do
      (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && return 0
      kill -0 "$silo_pid" 2>/dev/null || break
      sleep 0.5
    done
    grep -q "Address already in use" "$out/silo.log" || break
    echo "a port of the silo was in use; starting it again"; : > "$out/silo.log"; sleep 2
  done
  echo "the silo did not start; its log:"; tail -50 "$out/silo.log"; exit 1
}
# A metric's value from the silo's Prometheus endpoint (empty when unreachable), or from a saved copy of it.
metric() { { curl -s --max-time 2 "$metrics" || true; } | value_of "$1"; }
value_of() { awk -v name="$1" '$1 == name || index($1, name "{") == 1 { print $2; exit }'; }
campaign_rush() {
  exec dotnet "$load_dll" --scenario campaign-rush --target "http://127.0.0.1:$grpc_port" --rate "$rate" --duration "$duration" \
    --warmup 2s --members "$members" --out "$out/$1" "${@:2}"
}

echo "== run 1: campaign-rush at $rate/s, kill -9 of the silo after ${kill_after} s of load"
run_silo
campaign_rush run1 > "$out/run1.log" 2>&1 &
load_pid=$!
# Setup (members, campaign) first: count from the first acknowledged partner event.
for _ in $(seq 1 600); do
  [ "$(sql "SELECT (SELECT count(*) FROM loyalty.partner_outbox) + (SELECT coalesce(sum(events), 0) FROM loyalty.partner_payouts)")" -gt 0 ] && break
  kill -0 "$load_pid" 2>/dev/null || break
  sleep 0.5
done
sleep "$kill_after"
waiting_at_kill=$(sql "SELECT count(*) FROM loyalty.partner_outbox")
applied_at_kill=$(sql "SELECT coalesce(sum(events), 0) FROM loyalty.partner_payouts")
kill -9 "$silo_pid"
wait "$silo_pid" 2>/dev/null || true
silo_pid=
# Run 1's load tool has lost its engine: stop it (it would retry its unknown outcomes against nothing).
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
echo "killed -9 with $applied_at_kill events applied and $waiting_at_kill waiting in the outbox; $(sql "SELECT count(*) FROM loyalty.partner_outbox") waiting after the kill"

echo "== restart; run 2: campaign-rush at $rate/s for $duration, delivery lag sampled every 0.5 s"
restart_started=$(date +%s.%N)
run_silo
serving=$(date +%s.%N)
campaign_rush run2 > "$out/run2.log" 2>&1 &
load_pid=$!
max_lag=0 max_waiting=0 samples=0
while kill -0 "$load_pid" 2>/dev/null; do
  sample=$(curl -s --max-time 2 "$metrics" || true)
  lag=$(value_of loyalty_payouts_lag_seconds <<< "$sample"); waiting=$(value_of loyalty_payouts_undelivered <<< "$sample")
  if [ -n "$lag" ] && [ -n "$waiting" ]; then
    samples=$((samples + 1))
    max_lag=$(awk -v a="$max_lag" -v b="$lag" 'BEGIN { print (b > a ? b : a) }')
    max_waiting=$(awk -v a="$max_waiting" -v b="$waiting" 'BEGIN { print (b > a ? b : a) }')
  fi
  sleep 0.5
done
load_status=0
wait "$load_pid" || load_status=$?
# The load tool's summary of run 2 (its lines after the progress lines).
grep -v -E "^[0-9]{2}:[0-9]{2}:[0-9]{2} " "$out/run2.log" | tail -25 || true

drain_start=$(date +%s.%N)
for _ in $(seq 1 600); do
  [ "$(sql "SELECT count(*) FROM loyalty.partner_outbox")" -eq 0 ] && [ "$(metric loyalty_payouts_lag_seconds)" = "0" ] && break
  sleep 0.1
done
drained=$(awk -v a="$drain_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
curl -s --max-time 10 "$metrics" > "$out/metrics.txt" || true
delay_sum=$(value_of loyalty_payouts_delivery_delay_seconds_sum < "$out/metrics.txt")
delay_count=$(value_of loyalty_payouts_delivery_delay_seconds_count < "$out/metrics.txt")
mean_delay=$(awk -v s="${delay_sum:-0}" -v c="${delay_count:-0}" 'BEGIN { printf "%.0f", (c > 0 ? 1000 * s / c : 0) }')

problems=$(sql "SELECT count(*) FROM loyalty.check_payouts()")
ledger_events=$(sql "SELECT coalesce(sum(events), 0) FROM loyalty.partner_ledger_lines('-infinity', 'infinity')")
applied_events=$(sql "SELECT coalesce(sum(events), 0) FROM loyalty.partner_payouts")
partners=$(sql "SELECT count(DISTINCT partner_id) FROM loyalty.partner_ledger_lines('-infinity', 'infinity')")
waiting=$(sql "SELECT count(*) FROM loyalty.partner_outbox")
sql "SELECT partner_id, sum(accrued_minor), sum(clawed_back_minor), sum(redeemed_minor), sum(events) FROM loyalty.partner_ledger_lines('-infinity', 'infinity') GROUP BY 1 ORDER BY 1" \
  | sed 's/^/ledger: partner|accrued|clawed back|redeemed|events = /'
sql "SELECT partner_id, sum(accrued_minor), sum(clawed_back_minor), sum(redeemed_minor), sum(events) FROM loyalty.partner_payouts GROUP BY 1 ORDER BY 1" \
  | sed 's/^/payouts: partner|accrued|clawed back|redeemed|events = /'

# The export for the days of the runs, reconciled against the ledger, partner_payouts and the engine's GetPayouts.
first_day=$(sql "SELECT coalesce(min(day), current_date)::text FROM loyalty.partner_payouts")
last_day=$(sql "SELECT coalesce(max(day), current_date)::text FROM loyalty.partner_payouts")
export LOYALTY_TOKEN
LOYALTY_TOKEN=$(dotnet "$silo_dll" token --role admin --expires-in 1h 2>/dev/null)
export_status=0
LOYALTY_POSTGRES="$connection" dotnet "$silo_dll" export --from "$first_day" --to "$last_day" --out "$out/export" \
  --engine "http://127.0.0.1:$grpc_port" || export_status=$?
engine_checks=$(grep -c '^get_payouts_net,' "$out/export/reconciliation.csv" || true)
engine_differ=$(awk -F, '$1 == "get_payouts_net" && $8 != "0"' "$out/export/reconciliation.csv" | wc -l)

echo "== settlement check"
echo "load: campaign-rush at $rate/s (one arrival = authorize + capture), $members members, runs of $duration; silo restarted after kill -9 and serving $(awk -v a="$restart_started" -v b="$serving" 'BEGIN { printf "%.1f", b - a }') s later"
echo "delivery under load (run 2, $samples samples): lag at most ${max_lag} s, at most ${max_waiting} events waiting"
echo "ledger stamp to payout, mean over the ${delay_count:-0} events the restarted silo applied (with those the kill left waiting): ${mean_delay} ms"
echo "after the runs: outbox drained and lag 0 within ${drained} s; $waiting events waiting"
echo "reconciliation: $partners partners, ledger partner events $ledger_events, applied $applied_events; loyalty.check_payouts() rows $problems;" \
  "export exit $export_status, GetPayouts checks $engine_checks with $engine_differ differing"
[ "$load_status" -eq 0 ] || echo "note: the load tool's run 2 exited $load_status (see $out/run2.log)"
if [ "$problems" -eq 0 ] && [ "$ledger_events" -eq "$applied_events" ] && [ "$waiting" -eq 0 ] && [ "$export_status" -eq 0 ] \
   && [ "$engine_checks" -gt 0 ] && [ "$engine_differ" -eq 0 ] && [ "$ledger_events" -gt 0 ]; then
  echo "settlement-check: PASS: every partner's payouts equal the ledger"
else
  echo "settlement-check: FAIL"; tail -30 "$out/silo.log"; exit 1
fi

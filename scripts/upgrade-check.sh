#!/usr/bin/env bash
# Upgrade safety in one command: a database written by an OLDER engine with real traffic, then started by a NEWER one
# (its migrations apply), must read the same. Both arguments are repository checkouts with a Release build of the silo
# and the load tool (dotnet build silo/LoyaltyGrains.Silo.csproj -c Release; the same for loadtests/LoyaltyGrains.LoadTests).
#   scripts/upgrade-check.sh /work/wt/base .                      # older build dir, newer build dir
#   scripts/upgrade-check.sh OLD NEW --rate 100 --duration 20s --members 500
# Steps: a throwaway PostgreSQL; the OLD silo on it; the load tool's peak-day, then campaign-rush (partner-funded lines,
# so settlement has something to count); wait for every partner event to be delivered; stop the silo (SIGTERM). Then
# "before": loyalty.check_ledger(), loyalty.check_payouts(), every member's balances, the ledger's figures, and the OLD
# engine's accounting export of the traffic's days. Then the NEW silo starts (migrations apply) and stops, and "after":
# the same checks, and the NEW engine's export of the same days, compared byte for byte with the old one. Last, a short
# campaign-rush on the NEW silo, and the checks again (the upgraded database keeps working).
# Exit 0 only when the checks are clean before and after, balances are equal and the exports are identical.
# Environment: LOYALTY_TEST_PG_PORT (PostgreSQL port), UPGRADE_GRPC_PORT (the silo takes it and the next three).
set -euo pipefail

usage() { echo "usage: $0 OLD_BUILD_DIR NEW_BUILD_DIR [--rate N] [--duration T] [--members N]" >&2; exit 2; }
[ $# -ge 2 ] || usage
old_dir="$(cd "$1" && pwd)" new_dir="$(cd "$2" && pwd)"
shift 2
rate=100 duration=20s members=500
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --members) members="$2"; shift 2 ;;
    *) usage ;;
  esac
done
for dir in "$old_dir" "$new_dir"; do
  for dll in silo/bin/Release/net10.0/LoyaltyGrains.Silo.dll loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll; do
    [ -f "$dir/$dll" ] || { echo "upgrade-check: $dir/$dll is missing: build it (-c Release) first" >&2; exit 2; }
  done
done
command -v dotnet >/dev/null || { echo "upgrade-check: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/throwaway-postgres.sh"
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"
grpc_port="${UPGRADE_GRPC_PORT:-$((port + 100))}"
database=loyalty_upgrade
connection="Host=127.0.0.1;Port=$port;Username=postgres;Database=$database"
sql() { "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$database" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE $database" >/dev/null
out="$(mktemp -d /tmp/upgrade-check.XXXXXX)"
echo "reports, logs and both exports: $out"

# start_silo DIR LOG: that build's silo in the background on the database; returns when it serves gRPC.
start_silo() {
  LOYALTY_POSTGRES="$connection" LOYALTY_GRPC_PORT=$grpc_port LOYALTY_METRICS_PORT=$((grpc_port + 1)) \
    LOYALTY_SILO_PORT=$((grpc_port + 2)) LOYALTY_GATEWAY_PORT=$((grpc_port + 3)) \
    dotnet "$1/silo/bin/Release/net10.0/LoyaltyGrains.Silo.dll" >> "$out/$2" 2>&1 &
  silo_pid=$!
  for _ in $(seq 1 240); do
    (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && return 0
    kill -0 "$silo_pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "upgrade-check: the silo of $1 did not start; its log:"; tail -50 "$out/$2"; exit 1
}
# stop_silo: SIGTERM (drain, snapshots, leave the cluster) and wait for it to exit.
stop_silo() {
  kill "$silo_pid"
  for _ in $(seq 1 120); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$silo_pid" 2>/dev/null; then echo "upgrade-check: the silo did not stop within 60 s"; kill -9 "$silo_pid"; fi
  wait "$silo_pid" 2>/dev/null || true
  silo_pid=
}
load() { # DIR SCENARIO NAME
  dotnet "$1/loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll" --scenario "$2" \
    --target "http://127.0.0.1:$grpc_port" --rate "$rate" --duration "$duration" --warmup 2s --members "$members" --out "$out/$3" \
    > "$out/$3.log" 2>&1 || { echo "upgrade-check: load $3 failed:"; tail -30 "$out/$3.log"; exit 1; }
  echo "load $3: $(grep -m1 "^correctness:" "$out/$3.log" || tail -1 "$out/$3.log")"
}
drain() {
  for _ in $(seq 1 600); do
    [ "$(sql "SELECT count(*) FROM loyalty.partner_outbox")" -eq 0 ] && return 0
    sleep 0.2
  done
  echo "upgrade-check: partner events still waiting after 120 s"
}
# snapshot NAME: the figures compared before and after the upgrade, one file each.
snapshot() {
  sql "SELECT * FROM loyalty.check_ledger() ORDER BY 1" > "$out/$1.check_ledger"
  sql "SELECT * FROM loyalty.check_payouts() ORDER BY 1, 2" > "$out/$1.check_payouts"
  sql "SELECT DISTINCT ON (member_id) member_id, available_after_minor, pending_after_minor FROM loyalty.ledger ORDER BY member_id, sequence DESC" \
    > "$out/$1.balances"
  sql "SELECT count(*), count(DISTINCT member_id), sum(available_delta_minor), sum(pending_delta_minor), md5(string_agg(member_id || ':' || sequence || ':' || message_id || ':' || breakdown, ',' ORDER BY member_id, sequence)) FROM loyalty.ledger" \
    > "$out/$1.ledger"
  sql "SELECT partner_id, day, accrued_minor, clawed_back_minor, redeemed_minor, events FROM loyalty.partner_payouts ORDER BY 1, 2" > "$out/$1.payouts"
}
export_with() { # DIR NAME
  LOYALTY_POSTGRES="$connection" dotnet "$1/silo/bin/Release/net10.0/LoyaltyGrains.Silo.dll" export --from "$first_day" --to "$last_day" --out "$out/$2" \
    > "$out/$2.log" 2>&1 || { echo "upgrade-check: export by $1 exited non-zero:"; cat "$out/$2.log"; }
  tail -1 "$out/$2.log"
}

echo "== OLD engine ($old_dir, $(git -C "$old_dir" rev-parse --short HEAD 2>/dev/null || echo '?')): peak-day, then campaign-rush, $rate/s for $duration each, $members members"
start_silo "$old_dir" old-silo.log
load "$old_dir" peak-day old-peak-day
load "$old_dir" campaign-rush old-campaign-rush
drain
stop_silo
first_day=$(sql "SELECT (min(recorded_at) AT TIME ZONE 'UTC')::date FROM loyalty.ledger")
last_day=$(sql "SELECT (max(recorded_at) AT TIME ZONE 'UTC')::date FROM loyalty.ledger")
schema_before=$(sql "SELECT max(version) FROM loyalty_schema_migrations")
snapshot before
echo "before: schema $schema_before; ledger rows|members|available|pending|md5 = $(cat "$out/before.ledger")"
echo "before: check_ledger() rows $(wc -l < "$out/before.check_ledger"), check_payouts() rows $(wc -l < "$out/before.check_payouts")"
echo "before: export by the OLD engine: $(export_with "$old_dir" export-before)"

echo "== NEW engine ($new_dir, $(git -C "$new_dir" rev-parse --short HEAD 2>/dev/null || echo '?')): start (migrations apply), stop"
start_silo "$new_dir" new-silo.log
stop_silo
schema_after=$(sql "SELECT max(version) FROM loyalty_schema_migrations")
snapshot after
echo "after: schema $schema_after; ledger rows|members|available|pending|md5 = $(cat "$out/after.ledger")"
echo "after: check_ledger() rows $(wc -l < "$out/after.check_ledger"), check_payouts() rows $(wc -l < "$out/after.check_payouts")"
echo "after: export by the NEW engine: $(export_with "$new_dir" export-after)"
# Migrations of the new build that add the breakdown columns: the backfill must agree with the JSON, row by row.
backfill_wrong=0
if [ "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'loyalty' AND table_name = 'ledger' AND column_name = 'has_partner_line'")" -eq 1 ]; then
  backfill_wrong=$(sql "SELECT count(*) FROM loyalty.ledger WHERE has_partner_line IS DISTINCT FROM loyalty.breakdown_has_partner_line(breakdown) OR has_campaign_line IS DISTINCT FROM loyalty.breakdown_has_campaign_line(breakdown)")
  echo "after: breakdown columns backfilled: $(sql "SELECT count(*) FILTER (WHERE has_partner_line), count(*) FILTER (WHERE has_campaign_line) FROM loyalty.ledger" | tr '|' ' ' | awk '{print $1 " rows with a partner line, " $2 " with a campaign line"}'); $backfill_wrong disagree with the JSON"
fi

status=0
compare() { # WHAT FILE_BEFORE FILE_AFTER
  if cmp -s "$2" "$3"; then echo "same: $1"; else echo "DIFFERENT: $1"; diff "$2" "$3" | head -20; status=1; fi
}
[ -s "$out/before.check_ledger" ] && { echo "check_ledger() before the upgrade is not clean:"; head "$out/before.check_ledger"; status=1; }
[ -s "$out/before.check_payouts" ] && { echo "check_payouts() before the upgrade is not clean:"; head "$out/before.check_payouts"; status=1; }
[ -s "$out/after.check_ledger" ] && { echo "check_ledger() after the upgrade is not clean:"; head "$out/after.check_ledger"; status=1; }
[ -s "$out/after.check_payouts" ] && { echo "check_payouts() after the upgrade is not clean:"; head "$out/after.check_payouts"; status=1; }
compare "balances of $(wc -l < "$out/before.balances") members" "$out/before.balances" "$out/after.balances"
compare "ledger rows, sums and content hash" "$out/before.ledger" "$out/after.ledger"
compare "partner payouts ($(wc -l < "$out/before.payouts") partner-days)" "$out/before.payouts" "$out/after.payouts"
files=$(cd "$out/export-before" && ls | sort)
[ "$files" = "$(cd "$out/export-after" && ls | sort)" ] || { echo "DIFFERENT: the exports wrote different files"; status=1; }
for file in $files; do compare "export $file ($(wc -c < "$out/export-before/$file") bytes)" "$out/export-before/$file" "$out/export-after/$file"; done
[ "$backfill_wrong" -eq 0 ] || status=1

echo "== NEW engine keeps working on the upgraded database: campaign-rush, then the checks"
start_silo "$new_dir" new-silo.log
load "$new_dir" campaign-rush new-campaign-rush
drain
stop_silo
checks_after_traffic="$(sql "SELECT (SELECT count(*) FROM loyalty.check_ledger()) || ' ' || (SELECT count(*) FROM loyalty.check_payouts())")"
echo "after new traffic: $(sql "SELECT count(*) FROM loyalty.ledger") ledger rows; check_ledger() rows, check_payouts() rows: $checks_after_traffic"
[ "$checks_after_traffic" = "0 0" ] || status=1

if [ "$status" -eq 0 ]; then
  echo "upgrade-check: PASS: schema $schema_before -> $schema_after, checks clean, balances equal, exports identical"
else
  echo "upgrade-check: FAIL (files in $out)"; exit 1
fi

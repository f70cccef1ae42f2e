#!/usr/bin/env bash
# PostgreSQL CPU per ledger row by batch size and schema variant, on the server alone (docs/BENCHMARKS.md,
# "PostgreSQL per durable posting"): a throwaway PostgreSQL, the ledger schema from the migrations, and pgbench with
# two clients running, prepared, the shape of the engine's batch statement (keys and rows of K authorizations in one
# INSERT with a data-modifying CTE, its own transaction and fsync) for a few seconds per case. Prints the server's CPU
# (all its processes, from /proc) per row and per commit.
#   scripts/pg-ledger-batch-cpu.sh                         # K = 1 2 4 8 16 32, schema as is
#   SIZES="16" VARIANTS="full narrow one-index-less" SECONDS_EACH=10 scripts/pg-ledger-batch-cpu.sh
# The statement carries the partner-outbox CTE with empty arrays, as the engine's does for a batch without partner lines.
# Variants: full (the schema and statement as they are), without-outbox (no outbox CTE: what it costs per commit), narrow (the row's text payload empty: bounds what narrower rows could save),
# one-index-less (ledger_keys without its (member_id, sequence) unique index: what one index entry per row costs).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes="${SIZES:-1 2 4 8 16 32}"
variants="${VARIANTS:-full}"
seconds_each="${SECONDS_EACH:-10}"
source "$root/scripts/lib/throwaway-postgres.sh"
psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -v ON_ERROR_STOP=1)

prepare() { # database variant
  "${psql[@]}" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  # The engine's whole schema, so the statement below meets the table the engine writes.
  local migration
  for migration in "$root"/grains/LoyaltyGrains.Persistence/Migrations/*.sql; do
    "${psql[@]}" -d "$1" -f "$migration" >/dev/null
  done
  "${psql[@]}" -d "$1" -c "SELECT loyalty.ensure_ledger_partitions(now(), 2)" -c "CREATE SEQUENCE bench_sequence" >/dev/null
  if [ "$2" = one-index-less ]; then
    "${psql[@]}" -d "$1" -c "ALTER TABLE loyalty.ledger_keys DROP CONSTRAINT ledger_keys_member_sequence" >/dev/null
  fi
}

statement() { # rows variant: K authorizations of 2 000 members, as the engine writes them
  local text_or_empty
  text_or_empty() { if [ "$2" = narrow ]; then echo "''"; else echo "$1"; fi; }
  cat <<SQL
WITH v AS (SELECT nextval('bench_sequence') AS n FROM generate_series(1, $1)),
r AS (SELECT 'member-' || (n % 2000) AS member_id, n AS sequence, 'auth-' || lpad(n::text, 12, '0') AS message_id FROM v),
keys AS (INSERT INTO loyalty.ledger_keys (message_id, member_id, sequence, recorded_at) SELECT message_id, member_id, sequence, now() FROM r)$(
  [ "$2" = without-outbox ] || printf ',\nevents AS (INSERT INTO loyalty.partner_outbox (partner_id, member_id, sequence, recorded_at, accrued_minor, clawed_back_minor, redeemed_minor)\n  SELECT * FROM unnest(%s))' "'{}'::text[], '{}'::text[], '{}'::bigint[], '{}'::timestamptz[], '{}'::bigint[], '{}'::bigint[], '{}'::bigint[]")
INSERT INTO loyalty.ledger (member_id, sequence, message_id, kind, card_id, purchase_id, amount_minor, pending_delta_minor,
  available_delta_minor, pending_after_minor, available_after_minor, breakdown, mcc, category, merchant_id, currency, partner_id,
  occurred_at, recorded_at, fingerprint, purchase_month, category_cap_delta_minor, spend_delta_minor, lot_expires_at, detail,
  has_partner_line, has_campaign_line)
SELECT member_id, sequence, $(text_or_empty message_id "$2"), loyalty.kind('Authorize'), $(text_or_empty "'card-' || member_id" "$2"), $(text_or_empty message_id "$2"),
  100000, 1000, 0, 5000, 20000, $(text_or_empty "'[{\"rule\":\"base\",\"amountMinor\":1000,\"rateBps\":100,\"partnerId\":\"\"}]'" "$2"),
  5411, '', $(text_or_empty "'shop-17'" "$2"), 'RUB', '', now(), now(), 1234567890123, 202612, 0, 100000, now(), '', false, false
FROM r;
SQL
}

# Clock ticks of the server: its processes' own time plus the postmaster's exited children.
server_ticks() {
  local postmaster pid
  postmaster="$(head -1 "$data/db/postmaster.pid")"
  for pid in "$postmaster" $(ps -o pid= --ppid "$postmaster"); do cat "/proc/$pid/stat" 2>/dev/null || true; done |
    awk -v postmaster="$postmaster" '$1 == postmaster { t += $14 + $15 + $16 + $17; next } $4 == postmaster { t += $14 + $15 } END { print t + 0 }'
}

hz="$(getconf CLK_TCK)"
for variant in $variants; do
  for rows in $sizes; do
    prepare ledger_bench "$variant"
    statement "$rows" "$variant" > "$data/statement.sql"
    before="$(server_ticks)"
    result="$("$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -M prepared -c 2 -j 1 -T "$seconds_each" -f "$data/statement.sql" ledger_bench 2>&1)"
    after="$(server_ticks)"
    commits="$(echo "$result" | awk '/number of transactions actually processed/ { split($NF, n, "/"); print n[1] }')"
    awk -v variant="$variant" -v k="$rows" -v commits="${commits:-0}" -v ticks=$((after - before)) -v hz="$hz" 'BEGIN {
      cpu = ticks / hz; total = commits * k
      printf "%-15s %3d rows per commit: %6d commits, %7d rows, server CPU %.2f s: %6.1f us per row, %6.1f us per commit\n",
        variant, k, commits, total, cpu, (total > 0 ? 1e6 * cpu / total : 0), (commits > 0 ? 1e6 * cpu / commits : 0) }'
  done
done

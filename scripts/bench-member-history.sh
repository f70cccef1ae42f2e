#!/usr/bin/env bash
# The cost of history on one member (docs/BENCHMARKS.md): builds (Release), starts a throwaway PostgreSQL and a
# PostgreSQL-mode silo, writes one member's years of purchases into its ledger, then runs `Bench member-history`
# (pairs/s with and without history, same run; snapshot size). Extra options go to the bench (e.g. --history 20000).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet build LoyaltyGrains.sln -c Release -v quiet -nologo
source "$root/scripts/lib/throwaway-postgres.sh"
# The silo and the bench share a signing key made for this run (the bench mints its bearer token with it).
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"

grpc_port=$((port + 100))
start_silo loyalty_history "$grpc_port"
dotnet loadtests/LoyaltyGrains.Bench/bin/Release/net10.0/LoyaltyGrains.Bench.dll member-history \
  --target "http://127.0.0.1:$grpc_port" --postgres "Host=127.0.0.1;Port=$port;Username=postgres;Database=loyalty_history" "$@"

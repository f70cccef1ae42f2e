#!/usr/bin/env bash
# One command for a load test on this machine: builds the engine (Release), starts a throwaway PostgreSQL and a
# PostgreSQL-mode silo on 127.0.0.1, runs the load tool with the bare gRPC echo baseline, writes the report under
# loadtests/out/, and stops everything.
#   scripts/loadtest.sh                                    # peak-day, 500/s for 30 s, 2 000 members
#   scripts/loadtest.sh --scenario bulk --rate 2000 --duration 60s
# Any option of the load tool may be given (see: dotnet run --project loadtests/LoyaltyGrains.LoadTests -- --help).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v dotnet >/dev/null || { echo "loadtest.sh: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
cd "$root"
dotnet build LoyaltyGrains.sln -c Release -v quiet -nologo
source "$root/scripts/lib/throwaway-postgres.sh"
# The engine, the tests and the load tool share a signing key made for this run (never written to the repository).
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"

grpc_port=$((port + 100))
start_silo loyalty_load "$grpc_port"
args=("$@")
[[ " ${args[*]} " == *" --scenario "* ]] || args+=(--scenario peak-day)
dotnet loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll --target "http://127.0.0.1:$grpc_port" --baseline "${args[@]}"

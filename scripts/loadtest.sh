#!/usr/bin/env bash
# One command for a load test on this machine: builds the engine (Release), starts a throwaway PostgreSQL and a
# PostgreSQL-mode silo on 127.0.0.1, runs the load tool with the bare gRPC echo baseline, writes the report under
# loadtests/out/, and stops everything.
#   scripts/loadtest.sh                                    # peak-day, 500/s for 30 s, 2 000 members
#   scripts/loadtest.sh --scenario bulk --rate 2000 --duration 60s
#   scripts/loadtest.sh cpu                                # CPU µs per request against the bare-gRPC echo floor:
#                                                          # echo, Authorize, GetBalance at 1 000/s, then their ceilings
# Any option of the load tool may be given (see: dotnet run --project loadtests/LoyaltyGrains.LoadTests -- --help).
# Every run measures CPU per request of the silo, this PostgreSQL (postmaster and backends), the tool and the echo
# server process. LOYALTY_LOAD_GRPC_PORT sets the silo's gRPC port (it also takes the next three) [PostgreSQL's + 100].
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Help before any side effect (no build, no PostgreSQL): the usage above, then the load tool's options if it is built.
for arg in "$@"; do
  if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    tool="$root/loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll"
    if [ -f "$tool" ] && command -v dotnet >/dev/null; then
      echo; echo "The load tool's options:"; dotnet "$tool" --help
    fi
    exit 0
  fi
done
command -v dotnet >/dev/null || { echo "loadtest.sh: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
cd "$root"
dotnet build LoyaltyGrains.sln -c Release -v quiet -nologo
source "$root/scripts/lib/throwaway-postgres.sh"
# The engine, the tests and the load tool share a signing key made for this run (never written to the repository).
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"

grpc_port="${LOYALTY_LOAD_GRPC_PORT:-$((port + 100))}"
start_silo loyalty_load "$grpc_port"
if [[ "${1:-}" == "cpu" ]]; then
  shift
  # Later options override these: e.g. scripts/loadtest.sh cpu --duration 60s. The ceiling is judged on keeping up
  # (p99 up to 1 s): CPU per request at a capacity, not at a latency a shared machine cannot hold.
  args=(--scenario cpu --rate 1000 --duration 20s --warmup 5s --find-max --p99-ms 1000 --step 5s "$@")
else
  args=("$@")
  [[ " ${args[*]} " == *" --scenario "* ]] || args+=(--scenario peak-day)
  args=(--baseline "${args[@]}")
fi
dotnet loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll --target "http://127.0.0.1:$grpc_port" \
  --engine-pids "$silo_pid" --postgres-port "$port" "${args[@]}"

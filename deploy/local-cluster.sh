#!/usr/bin/env bash
# A production-shaped cluster on this machine, as processes on 127.0.0.1: a throwaway PostgreSQL, N silos and M
# gateways (Orleans clients) with distinct ports. Runs until Ctrl+C (or for --for SECONDS), then stops them all:
# gateways, then silos (SIGTERM: they drain and leave the cluster), then PostgreSQL.
#   deploy/local-cluster.sh                      # 3 silos, 2 gateways
#   deploy/local-cluster.sh --silos 2 --gateways 1 --for 60
# Load through every gateway at once:
#   dotnet loadtests/LoyaltyGrains.LoadTests/bin/Release/net10.0/LoyaltyGrains.LoadTests.dll --scenario peak-day \
#     --target http://127.0.0.1:7101,http://127.0.0.1:7111 --signing-key <the key it prints> --rate 500 --duration 30s
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
silos=3 gateways=2 base=7000 run_for=""
while [ $# -gt 0 ]; do
  case "$1" in
    --silos) silos="$2"; shift 2 ;;
    --gateways) gateways="$2"; shift 2 ;;
    --base-port) base="$2"; shift 2 ;;
    --for) run_for="$2"; shift 2 ;;
    *) echo "usage: $0 [--silos N] [--gateways M] [--base-port P] [--for SECONDS]" >&2; exit 2 ;;
  esac
done

silo_dll="$root/silo/bin/Release/net10.0/LoyaltyGrains.Silo.dll"
gateway_dll="$root/gateway/LoyaltyGrains.GatewayHost/bin/Release/net10.0/LoyaltyGrains.GatewayHost.dll"
if [ ! -f "$silo_dll" ] || [ ! -f "$gateway_dll" ]; then
  dotnet build "$root/LoyaltyGrains.sln" -c Release -nologo -v quiet
fi

source "$root/scripts/lib/throwaway-postgres.sh"
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE loyalty_cluster" >/dev/null
export LOYALTY_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=loyalty_cluster"
# Every node of the cluster checks tokens with the same key: the caller's, or one made for this run.
export LOYALTY_AUTH_SIGNING_KEY="${LOYALTY_AUTH_SIGNING_KEY:-$(head -c 32 /dev/urandom | base64)}"
pids=()

stop_all() {
  # Gateways first (nothing new comes in), then silos one by one so each hands its grains over, then the database.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 90); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  done
  stop_postgres
  echo "local cluster stopped; logs were in $data (removed)"
}
trap stop_all EXIT

wait_ready() {
  local name="$1" metrics="$2" pid="$3"
  for _ in $(seq 1 240); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics/readyz" || true)" = "200" ] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; its log:"; tail -30 "$data/$name.log"; exit 1; }
    sleep 0.5
  done
  echo "$name did not become ready; its log:"; tail -30 "$data/$name.log"; exit 1
}

for i in $(seq 1 "$silos"); do
  p=$((base + 10 * i))
  LOYALTY_GRPC_PORT=$p LOYALTY_METRICS_PORT=$((p + 1)) LOYALTY_SILO_PORT=$((p + 2)) LOYALTY_GATEWAY_PORT=$((p + 3)) \
    dotnet "$silo_dll" > "$data/silo-$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$silos"); do wait_ready "silo-$i" $((base + 10 * i + 1)) "${pids[$((i - 1))]}"; done
targets=()
for j in $(seq 1 "$gateways"); do
  p=$((base + 100 + 10 * j - 10 + 1))
  LOYALTY_GRPC_PORT=$p LOYALTY_METRICS_PORT=$((p + 1)) dotnet "$gateway_dll" > "$data/gateway-$j.log" 2>&1 &
  pids+=($!)
  wait_ready "gateway-$j" $((p + 1)) "${pids[-1]}"
  targets+=("http://127.0.0.1:$p")
done

echo
echo "local cluster up: PostgreSQL 127.0.0.1:$port, $silos silos, $gateways gateways"
for i in $(seq 1 "$silos"); do p=$((base + 10 * i)); echo "  silo-$i     gRPC 127.0.0.1:$p  metrics :$((p + 1))  silo :$((p + 2))  gateway :$((p + 3))  pid ${pids[$((i - 1))]}  log $data/silo-$i.log"; done
for j in $(seq 1 "$gateways"); do p=$((base + 100 + 10 * j - 10 + 1)); echo "  gateway-$j  gRPC 127.0.0.1:$p  metrics :$((p + 1))  pid ${pids[$((silos + j - 1))]}  log $data/gateway-$j.log"; done
echo "  load:  --target $(IFS=,; echo "${targets[*]}") --signing-key $LOYALTY_AUTH_SIGNING_KEY"
echo "  token: LOYALTY_AUTH_SIGNING_KEY=$LOYALTY_AUTH_SIGNING_KEY dotnet $silo_dll token --role admin"
if [ -n "$run_for" ]; then sleep "$run_for"; else echo "Ctrl+C stops everything"; while true; do sleep 3600; done; fi

#!/usr/bin/env bash
# The project's one test command: installs PostgreSQL if it is missing, starts a throwaway server (own data
# directory, port on 127.0.0.1, fsync on: durability is what we test), runs every test against it, stops it.
# Extra arguments go to `dotnet test` (e.g. --filter Durability).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${LOYALTY_TEST_PG_PORT:-55433}"

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! bin="$(pg_bin)"; then
  echo "test.sh: PostgreSQL not found; installing it from Debian's packages"
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: need root (or sudo) to apt-get install postgresql" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin="$(pg_bin)"
fi

if ! command -v dotnet >/dev/null; then
  echo "test.sh: the .NET SDK (dotnet) is not on PATH" >&2
  exit 1
fi

data="$(mktemp -d /tmp/loyalty-pg.XXXXXX)"
run_as=()
if [ "$(id -u)" -eq 0 ]; then
  # postgres refuses to run as root: run the throwaway server as the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --home "$data" postgres
  chown postgres "$data"
  run_as=(runuser -u postgres --)
fi

stop_server() {
  "${run_as[@]}" "$bin/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap stop_server EXIT

# A port still held by a server from an earlier, killed run: pick the next free one.
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

"${run_as[@]}" "$bin/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${run_as[@]}" "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $port -k $data -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on" start >/dev/null
for _ in $(seq 1 60); do
  "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q && break
  sleep 0.5
done
"$bin/pg_isready" -h 127.0.0.1 -p "$port" -q || { echo "test.sh: PostgreSQL did not become ready"; cat "$data/server.log"; exit 1; }
echo "test.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $data)"

export LOYALTY_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres;No Reset On Close=true;Maximum Pool Size=200"
cd "$root"
set +e
dotnet test LoyaltyGrains.sln -c Release --logger "console;verbosity=normal" "$@"
status=$?
set -e
exit $status

# Sourced by scripts/test.sh and scripts/loadtest.sh: a throwaway PostgreSQL on 127.0.0.1 for this run only.
# Installs Debian's postgresql when missing; own data directory under /tmp; fsync on; removed on exit.
# Sets: bin (server binaries), port, data, LOYALTY_TEST_POSTGRES; defines stop_postgres (registered on EXIT).

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! bin="$(pg_bin)"; then
  echo "PostgreSQL not found; installing it from Debian's packages"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root (or sudo) to apt-get install postgresql" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin="$(pg_bin)"
fi

# Spread by process id, so test runs started side by side rarely race for the same port (the check below is not atomic).
port="${LOYALTY_TEST_PG_PORT:-$((55433 + $$ % 2000))}"
data="$(mktemp -d /tmp/loyalty-pg.XXXXXX)"
run_as=()
if [ "$(id -u)" -eq 0 ]; then
  # postgres refuses to run as root: run the throwaway server as the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --home "$data" postgres
  chown postgres "$data"
  run_as=(runuser -u postgres --)
fi

stop_postgres() {
  # The silo first, while its database is still up: a graceful stop writes snapshots and leaves the cluster, and
  # without the database it would retry for minutes. Killed outright if it is not gone in 15 s.
  if [ -n "${silo_pid:-}" ] && kill "$silo_pid" 2>/dev/null; then
    for _ in $(seq 1 30); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$silo_pid" 2>/dev/null || true
  fi
  "${run_as[@]}" "$bin/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap stop_postgres EXIT

"${run_as[@]}" "$bin/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
# A port still held by a server from an earlier, killed run: take the next free one. The check is not atomic, so a
# start that fails (another process took the port meanwhile) says why and tries the next port, three times at most.
for attempt in 1 2 3; do
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  "${run_as[@]}" "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $data -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on -c max_wal_size=4GB" start >/dev/null \
    && break
  echo "PostgreSQL did not start on port $port (attempt $attempt of 3); its log:"
  tail -20 "$data/server.log" 2>/dev/null || true
  [ "$attempt" -lt 3 ] || exit 1
  port=$((port + 1))
done
for _ in $(seq 1 60); do
  "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q && break
  sleep 0.5
done
"$bin/pg_isready" -h 127.0.0.1 -p "$port" -q || { echo "PostgreSQL did not become ready"; cat "$data/server.log"; exit 1; }
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $data)"
export LOYALTY_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres;No Reset On Close=true;Maximum Pool Size=200"

# start_silo DATABASE GRPC_PORT: a PostgreSQL-mode silo (Release build) in the background; waits until it listens.
start_silo() {
  local database="$1" grpc_port="$2"
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE $database" >/dev/null
  LOYALTY_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=$database" LOYALTY_GRPC_PORT=$grpc_port \
    LOYALTY_METRICS_PORT=$((grpc_port + 1)) LOYALTY_SILO_PORT=$((grpc_port + 2)) LOYALTY_GATEWAY_PORT=$((grpc_port + 3)) \
    dotnet "$root/silo/bin/Release/net10.0/LoyaltyGrains.Silo.dll" > "$data/silo.log" 2>&1 &
  silo_pid=$!
  for _ in $(seq 1 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && return 0
    kill -0 "$silo_pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "the silo did not start; its log:"; tail -50 "$data/silo.log"; exit 1
}

#!/usr/bin/env bash
# A local Citus cluster for plinth's opt-in Citus tests and bench: a coordinator and two workers,
# three PostgreSQL instances on loopback, schema-based sharding on, registered with each other.
#
#   scripts/citus-cluster.sh up      start it (initialising it the first time); prints DATABASE_URL
#   scripts/citus-cluster.sh down    stop it and remove its data
#   scripts/citus-cluster.sh status  say whether it is up
#
# Settings (environment): CITUS_CLUSTER_DIR (default /tmp/plinth-citus), CITUS_PORT (the
# coordinator's, default 9700; the workers take the next two), PG_BIN (default: the newest
# /usr/lib/postgresql/*/bin). Citus must already be installed into that PostgreSQL (citus.so in
# its pkglibdir): this script finds it, it does not build it. docs/scale-out.md says where Citus
# comes from.
#
# Every database on the cluster that plinth uses needs the citus extension on every node and the
# workers registered in it; `up` does that for the database `plinth`, and plinth's test helper
# (src/testing/database.ts) does it for each test database.
set -euo pipefail

DIR=${CITUS_CLUSTER_DIR:-/tmp/plinth-citus}
PORT=${CITUS_PORT:-9700}
PORTS=("$PORT" "$((PORT + 1))" "$((PORT + 2))")
NAMES=(coordinator worker1 worker2)
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
DATABASE=plinth

die() { echo "citus-cluster: $*" >&2; exit 1; }

# PostgreSQL refuses to run as root: run its programs as postgres when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_on() {
  local port=$1 db=$2; shift 2
  PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"
}

require_citus() {
  [ -x "$PG_BIN/pg_ctl" ] || die "no PostgreSQL server binaries at $PG_BIN (set PG_BIN)"
  local libdir
  libdir=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo "$PG_BIN/../lib")
  [ -f "$libdir/citus.so" ] || die "Citus is not installed into the PostgreSQL at $PG_BIN ($libdir/citus.so is missing).
Install Citus 12 or later for this PostgreSQL (see docs/scale-out.md, 'A local cluster'), then run this again."
}

init_node() {
  local name=$1 port=$2 data="$DIR/$1"
  [ -f "$data/PG_VERSION" ] && return 0
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$DIR"
  as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$data/postgresql.conf" <<EOF
# plinth's local Citus cluster ($name)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
shared_preload_libraries = 'citus'
wal_level = logical
max_connections = 300
max_wal_senders = 20
max_replication_slots = 20
max_prepared_transactions = 200
citus.enable_schema_based_sharding = on
citus.max_client_connections = 250
# Tables of one tenant schema live together on one worker, so a trigger on them is as safe as on
# one PostgreSQL; Citus refuses triggers on distributed tables without this.
citus.enable_unsafe_triggers = on
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start_node() {
  local name=$1 port=$2 data="$DIR/$1"
  if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then return 0; fi
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/$name.log" -w -t 60 start >/dev/null
}

# The database `db` on every node, with the extension, and the workers registered on the coordinator.
prepare_database() {
  local db=$1
  for port in "${PORTS[@]}"; do
    if [ -z "$(psql_on "$port" postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_on "$port" postgres -c "CREATE DATABASE $db"
    fi
    psql_on "$port" "$db" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  psql_on "${PORTS[0]}" "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', ${PORTS[0]})" >/dev/null
  for port in "${PORTS[@]:1}"; do
    if [ -z "$(psql_on "${PORTS[0]}" "$db" -c "SELECT 1 FROM pg_dist_node WHERE nodeport = $port")" ]; then
      psql_on "${PORTS[0]}" "$db" -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
    fi
  done
}

case "${1:-}" in
  up)
    require_citus
    for i in 0 1 2; do init_node "${NAMES[$i]}" "${PORTS[$i]}"; done
    for i in 0 1 2; do start_node "${NAMES[$i]}" "${PORTS[$i]}"; done
    # The cluster's own admin database (the test helper creates its databases from here).
    prepare_database postgres
    prepare_database "$DATABASE"
    version=$(psql_on "${PORTS[0]}" "$DATABASE" -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'")
    echo "Citus $version: coordinator 127.0.0.1:${PORTS[0]}, workers 127.0.0.1:${PORTS[1]} and 127.0.0.1:${PORTS[2]} ($DIR)"
    echo "DATABASE_URL=postgres://postgres@127.0.0.1:${PORTS[0]}/$DATABASE"
    ;;
  down)
    for i in 2 1 0; do
      data="$DIR/${NAMES[$i]}"
      [ -f "$data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    done
    rm -rf "$DIR"
    echo "Citus cluster stopped and removed ($DIR)"
    ;;
  status)
    for i in 0 1 2; do
      if "$PG_BIN/pg_isready" -h 127.0.0.1 -p "${PORTS[$i]}" -q; then state=up; else state=down; fi
      echo "${NAMES[$i]} 127.0.0.1:${PORTS[$i]} $state"
    done
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac

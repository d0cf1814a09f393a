#!/bin/sh
# PostgreSQL for Berth's scaled deployment (docker-compose.yml beside this file), from Debian's
# package. On its first start it makes the cluster in the volume at $PGDATA (local connections
# by peer, TCP by password) with the role and database `registry` (registryd's defaults), the
# role's password from POSTGRES_PASSWORD; then, and on every start, it serves on
# 127.0.0.1:${PGPORT:-5433}.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PORT="${PGPORT:-5433}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "$BIN/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  "$BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/tmp" start >/dev/null
  # psql's variables quote the password; nothing is spliced into the SQL text.
  "$BIN/psql" -h /tmp -U postgres -v ON_ERROR_STOP=1 -q -v password="$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE registry LOGIN PASSWORD :'password';
CREATE DATABASE registry OWNER registry;
SQL
  "$BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
  echo "berth-postgres: made the cluster in $PGDATA"
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port="$PORT" \
  -c unix_socket_directories=/tmp

#!/usr/bin/env bash
# Start Debian's PostgreSQL on loopback with a throw-away role and database for the tests.
# Prints the SQLAlchemy URL. Idempotent.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$ver main$" || pg_createcluster "$ver" main >/dev/null
pg_ctlcluster "$ver" main start 2>/dev/null || true
for _ in $(seq 60); do su postgres -c "pg_isready -q -h 127.0.0.1" && break; sleep 1; done
psql_as_postgres() { su postgres -c "psql -qtAc \"$1\""; }
[ "$(psql_as_postgres "SELECT 1 FROM pg_roles WHERE rolname='civicfed'")" = 1 ] ||
  psql_as_postgres "CREATE ROLE civicfed LOGIN SUPERUSER PASSWORD 'civicfed'"
[ "$(psql_as_postgres "SELECT 1 FROM pg_database WHERE datname='civicfed_test'")" = 1 ] ||
  su postgres -c "createdb -O civicfed civicfed_test"
echo "postgresql+psycopg://civicfed:civicfed@127.0.0.1:5432/civicfed_test"

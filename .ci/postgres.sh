#!/usr/bin/env bash
# A PostgreSQL server for the tests (issue 17): installs Debian's `postgresql` if missing,
# starts a throwaway server as the unprivileged `postgres` user, data in a temp dir, on
# 127.0.0.1 and a free port, and prints `export LOOKOUT_TEST_POSTGRES_URL=...` for the caller
# to eval: `eval "$(.ci/postgres.sh)"`. Run as root (CI is; `su` to `postgres`). Stop it with
# `su postgres -c "pg_ctl -D $LOOKOUT_TEST_POSTGRES_DATA/db stop"`.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql) >/tmp/apt-postgres.log 2>&1 \
    || { tail -20 /tmp/apt-postgres.log >&2; exit 1; }
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
data=$(mktemp -d /tmp/lookout-pg.XXXXXX)
chown postgres:postgres "$data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
su postgres -s /bin/sh -c "$bin/initdb -D '$data/db' -U lookout --auth=trust -E UTF8 >'$data/initdb.log' 2>&1"
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$data/db' -l '$data/server.log' -w -o \"-c listen_addresses=127.0.0.1 -p $port -k '$data' -c fsync=off -c max_connections=300\" start >/dev/null"
echo "export LOOKOUT_TEST_POSTGRES_URL=postgres://lookout@127.0.0.1:$port/postgres"
echo "export LOOKOUT_TEST_POSTGRES_DATA=$data"

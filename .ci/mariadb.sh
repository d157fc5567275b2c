#!/usr/bin/env bash
# A MariaDB server for the tests of `sql:` steps (issue 19): installs Debian's `mariadb-server`
# if missing, starts a throwaway server as the unprivileged `mysql` user, data in a temp dir,
# on 127.0.0.1 and a free port, with a user `lookout` (password `lookout`) owning the database
# `lookout`, and prints `export LOOKOUT_TEST_MARIADB_URL=...` for the caller to eval:
# `eval "$(.ci/mariadb.sh)"`. Run as root (CI is). Stop it with
# `kill "$(cat "$LOOKOUT_TEST_MARIADB_DATA/mysqld.pid")"`.
set -euo pipefail
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server) >/tmp/apt-mariadb.log 2>&1 \
    || { tail -20 /tmp/apt-mariadb.log >&2; exit 1; }
fi
PATH=$PATH:/usr/sbin
data=$(mktemp -d /tmp/lookout-mariadb.XXXXXX)
chown mysql:mysql "$data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mariadb-install-db --no-defaults --user=mysql --datadir="$data/db" --auth-root-authentication-method=socket \
  --skip-test-db >"$data/install.log" 2>&1 || { tail -20 "$data/install.log" >&2; exit 1; }
setsid mariadbd --no-defaults --user=mysql --datadir="$data/db" --port="$port" --bind-address=127.0.0.1 \
  --socket="$data/mysqld.sock" --pid-file="$data/mysqld.pid" --log-error="$data/error.log" \
  --skip-log-bin --innodb-buffer-pool-size=32M --innodb-flush-log-at-trx-commit=0 --max-connections=200 \
  </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 100); do
  mariadb-admin --no-defaults --socket="$data/mysqld.sock" -u root ping >/dev/null 2>&1 && break
  sleep 0.2
done
mariadb --no-defaults --socket="$data/mysqld.sock" -u root <<'SQL' || { tail -20 "$data/error.log" >&2; exit 1; }
CREATE DATABASE lookout;
CREATE USER 'lookout'@'127.0.0.1' IDENTIFIED BY 'lookout';
GRANT ALL ON *.* TO 'lookout'@'127.0.0.1' WITH GRANT OPTION;
SQL
echo "export LOOKOUT_TEST_MARIADB_URL=mysql://lookout:lookout@127.0.0.1:$port/lookout"
echo "export LOOKOUT_TEST_MARIADB_DATA=$data"

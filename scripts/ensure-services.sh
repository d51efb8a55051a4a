#!/usr/bin/env bash
# Redis and PostgreSQL for the test suite: use the running ones, start them when they are down, and create the
# PostgreSQL role and database of MODWATCH_TEST_POSTGRES (default: role postgres, database test) when missing.
# Usage: scripts/ensure-services.sh [PYTHON] (the project's interpreter, used to read the URLs).
set -euo pipefail
python=${1:-python3}
redis_url=${MODWATCH_TEST_REDIS:-redis://127.0.0.1:6379}
postgres_url=${MODWATCH_TEST_POSTGRES:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
read -r redis_host redis_port < <("$python" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1])
print(p.hostname or "127.0.0.1", p.port or 6379)' "$redis_url")
read -r pg_user pg_host pg_port pg_db < <("$python" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1])
print(p.username or "postgres", p.hostname or "127.0.0.1", p.port or 5432, p.path.lstrip("/") or "test")' "$postgres_url")

if ! redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1; then
  echo "starting redis-server on $redis_host:$redis_port"
  mkdir -p /tmp/modwatch-redis
  redis-server --daemonize yes --bind "$redis_host" --port "$redis_port" --save "" --appendonly no \
    --dir /tmp/modwatch-redis --logfile "/tmp/modwatch-redis/redis-$redis_port.log"
  for _ in $(seq 50); do redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "redis $redis_host:$redis_port: $(redis-cli -h "$redis_host" -p "$redis_port" ping)"

if ! pg_isready -h "$pg_host" -p "$pg_port" -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 50); do pg_isready -h "$pg_host" -p "$pg_port" -q && break; sleep 0.2; done
  fi
fi
if ! pg_isready -h "$pg_host" -p "$pg_port" -q; then
  echo "PostgreSQL is not reachable on $pg_host:$pg_port: PostgreSQL tests will fail" >&2
  exit 0
fi
# The suite's role and database, made by the server's administrator (the postgres system user over the local
# socket) when the suite cannot log in yet.
admin_psql() {
  if [ "$(id -un)" != postgres ] && id postgres >/dev/null 2>&1 && command -v runuser >/dev/null; then
    runuser -u postgres -- psql -p "$pg_port" -v ON_ERROR_STOP=1 -qAt "$@"
  else
    psql -h "$pg_host" -p "$pg_port" -v ON_ERROR_STOP=1 -qAt "$@"
  fi
}
if ! psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" -qAtc 'select 1' >/dev/null 2>&1; then
  if [ "$(admin_psql -d postgres -c "select 1 from pg_roles where rolname = '$pg_user'")" != 1 ]; then
    echo "creating PostgreSQL role $pg_user"
    admin_psql -d postgres -c "create role \"$pg_user\" login createdb"
  fi
  if [ "$(admin_psql -d postgres -c "select 1 from pg_database where datname = '$pg_db'")" != 1 ]; then
    echo "creating PostgreSQL database $pg_db"
    admin_psql -d postgres -c "create database \"$pg_db\" owner \"$pg_user\""
  fi
fi
if psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "postgresql $pg_host:$pg_port database $pg_db as $pg_user: ok"
else
  echo "cannot log in to PostgreSQL database $pg_db as $pg_user on $pg_host:$pg_port (pg_hba.conf must let it in" \
       "without a password, or set MODWATCH_TEST_POSTGRES): PostgreSQL tests will fail" >&2
fi

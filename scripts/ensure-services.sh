#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start them if not. Fails loudly otherwise.
set -uo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || python3 -c "import socket;socket.create_connection(('127.0.0.1',5432),1)" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "PostgreSQL is not running; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "Redis is not running; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
pg_up || { echo "FATAL: PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
redis_up || { echo "FATAL: Redis is not reachable on 127.0.0.1:6379"; exit 1; }
# The database the Makefile names (pytest-django creates its own test_* databases from it).
if ! psql -h 127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'tollgate'" 2>/dev/null | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres tollgate 2>/dev/null || true
fi
echo "PostgreSQL and Redis are up"

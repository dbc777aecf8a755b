#!/usr/bin/env bash
# Make sure PostgreSQL and Redis are reachable for the scale-out tests. Uses the machine's
# servers on 127.0.0.1 when they answer; otherwise starts private ones under var/services.
# Prints `export` lines for TEST_DATABASE_URL and TEST_REDIS_URL (source its output).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/var/services"
mkdir -p "$dir"

pg_url="postgresql://postgres@127.0.0.1:5432/test"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  port=55432
  pg_url="postgresql://postgres@127.0.0.1:$port/test"
  if ! pg_isready -q -h 127.0.0.1 -p $port 2>/dev/null; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    if [ -n "$bindir" ]; then
      if [ ! -f "$dir/pg/PG_VERSION" ]; then
        mkdir -p "$dir/pg" && chown postgres "$dir/pg" 2>/dev/null || true
        su postgres -c "$bindir/initdb -D $dir/pg -A trust -U postgres" >/dev/null 2>&1 \
          || "$bindir/initdb" -D "$dir/pg" -A trust -U postgres >/dev/null
      fi
      su postgres -c "$bindir/pg_ctl -D $dir/pg -l $dir/pg.log -o '-p $port -c listen_addresses=127.0.0.1 -k /tmp' start" >/dev/null 2>&1 \
        || "$bindir/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null
      for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p $port && break; sleep 0.2; done
      psql -h 127.0.0.1 -p $port -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
        || psql -h 127.0.0.1 -p $port -U postgres -c "CREATE DATABASE test" >/dev/null
    else
      pg_url=""
    fi
  fi
fi

redis_url="redis://127.0.0.1:6379/0"
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  redis_url="redis://127.0.0.1:56379/0"
  if ! (exec 3<>/dev/tcp/127.0.0.1/56379) 2>/dev/null; then
    if command -v redis-server >/dev/null; then
      redis-server --port 56379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$dir" --logfile "$dir/redis.log" >/dev/null
      sleep 0.3
    else
      redis_url=""
    fi
  fi
fi
echo "export TEST_DATABASE_URL=$pg_url"
echo "export TEST_REDIS_URL=$redis_url"

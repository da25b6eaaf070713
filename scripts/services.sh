#!/usr/bin/env bash
# Make sure the local Redis and PostgreSQL the tests use are up; start them if not.
set -u
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  else
    echo "no Redis on 127.0.0.1:6379 and no redis-server to start (set TEST_REDIS_URL)" >&2
  fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
# libfaketime (Debian's `faketime`) runs one worker with a skewed clock in the
# fault tests (tests/chaos, make chaos); they fail and say so without it.
if [ -z "$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null)" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing faketime"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq faketime >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq faketime >/dev/null 2>&1; } \
      || echo "could not install faketime: the clock-skew tests will fail" >&2
  else
    echo "libfaketime not found (apt-get install faketime): the clock-skew tests will fail" >&2
  fi
fi
exit 0

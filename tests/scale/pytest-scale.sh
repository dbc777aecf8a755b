#!/usr/bin/env bash
# The integration tests again in scale-out mode: the pytest process, its qcluster and
# daphne subprocesses all on PostgreSQL + Redis. Runs every test marked `worker` (real
# qcluster processes) or `scale` in tests/scale, tests/runtime and tests/examples;
# test_live_stream.py is left out because it already runs in both modes by itself.
#
# Needs TEST_DATABASE_URL and TEST_REDIS_URL (`source <(tests/services.sh)`). Uses a
# database name, queue name and Redis key prefix of its own (pytest-django creates and
# drops test_<name>), so it can run beside other test runs on the same servers.
# Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${TEST_DATABASE_URL:?set it, e.g. source <(tests/services.sh)}"
: "${TEST_REDIS_URL:?set it, e.g. source <(tests/services.sh)}"
tag="scale_$$"
export DATABASE_URL="${TEST_DATABASE_URL%/*}/trellis_${tag}"
export REDIS_URL="$TEST_REDIS_URL"
export TRELLIS_QUEUE_NAME="trellis-${tag}"
export TRELLIS_CHANNELS_PREFIX="trellis-${tag}"
export TRELLIS_VAR_DIR="${TRELLIS_VAR_DIR:-$root/var}/${tag}"
mkdir -p "$TRELLIS_VAR_DIR"
cd "$root"
python=.venv/bin/python
cleanup() {
  "$python" - <<PY || true
import redis
client = redis.Redis.from_url("$REDIS_URL")
for pattern in ("django_q:$TRELLIS_QUEUE_NAME:*", "$TRELLIS_CHANNELS_PREFIX*"):
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)
PY
  rm -rf "$TRELLIS_VAR_DIR"
}
trap cleanup EXIT
"$python" -m pytest -m "worker or scale" tests/scale tests/runtime tests/examples \
  --ignore=tests/runtime/test_live_stream.py "$@"

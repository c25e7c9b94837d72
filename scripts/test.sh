#!/usr/bin/env bash
# `make test`: every test, against the real PostgreSQL and RabbitMQ of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/console.sh
# The console's browser tests drive Debian's Chromium; no browser is downloaded.
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "==> installing Chromium (Debian's package) for the browser tests" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
fi
export PATH="$HOME/.cargo/bin:$PATH"
# A linker that runs out of disk dies with a bus error that names no cause; say it first.
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((6 * 1024 * 1024)) ]; then
  echo "==> warning: $((free_kib / 1024)) MiB free here; the debug build and its test binaries take about 4.6 GiB" >&2
fi
# Databases left behind by interrupted runs.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
  "select 'DROP DATABASE IF EXISTS \"' || datname || '\" WITH (FORCE);' from pg_database where datname like 'octohooks_test_%'" \
  | psql -h 127.0.0.1 -U postgres -d postgres -q >/dev/null
# Queues left behind by interrupted runs: each quorum queue costs the broker memory and time,
# and hundreds of them slow every declaration down.
if command -v rabbitmqctl >/dev/null; then
  { rabbitmqctl -q list_queues name 2>/dev/null || true; } | { grep -E '^octohooks\.test\.' || true; } |
    while read -r queue; do rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true; done
fi
# The end-to-end tests start the real binaries as processes (to SIGKILL them).
cargo build --bins
# The deployment files: the checks (which install their Python packages), then their own tests.
python3 scripts/validate_deploy
python3 -m unittest discover -s scripts/validate_deploy
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

#!/usr/bin/env bash
# `make test`: every test, against the real PostgreSQL and RabbitMQ of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/node-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Databases left behind by interrupted runs.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
  "select 'DROP DATABASE IF EXISTS \"' || datname || '\" WITH (FORCE);' from pg_database where datname like 'octohooks_test_%'" \
  | psql -h 127.0.0.1 -U postgres -d postgres -q >/dev/null
# The end-to-end tests start the real binaries as processes (to SIGKILL them).
cargo build --bins
scripts/validate-deploy.sh
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

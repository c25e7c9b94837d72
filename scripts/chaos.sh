#!/usr/bin/env bash
# `make chaos`: fault tests against the machine's real RabbitMQ and PostgreSQL (stopped,
# restarted), SIGKILLed replicas, and a rolling upgrade from the previous version, under load.
# One at a time; each is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --bins
# The previous version's binaries, for the rolling-upgrade scenario.
OCTOHOOKS_PREVIOUS_BIN_DIR="$(scripts/previous.sh)"
export OCTOHOOKS_PREVIOUS_BIN_DIR
timeout 900 cargo test -p octohooks-tests --test chaos -- --ignored --test-threads=1 --nocapture
# Leave the services running for whatever comes next.
scripts/deps.sh

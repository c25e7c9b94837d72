#!/usr/bin/env bash
# `make chaos-cluster`: a three-node RabbitMQ cluster on loopback (scripts/rabbitmq-cluster.sh,
# beside the machine's own broker, which stays up), the services reaching it through a load
# balancer, and the node that leads the delivery queue killed during delivery (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --bins
trap 'scripts/rabbitmq-cluster.sh stop' EXIT
scripts/rabbitmq-cluster.sh start
timeout 600 cargo test -p octohooks-tests --test chaos_cluster -- --ignored --nocapture

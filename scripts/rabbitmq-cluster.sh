#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback, beside the machine's own broker, for
# `make chaos-cluster`: nodes octo1..octo3@localhost, AMQP on 127.0.0.1:5701..5703, Erlang
# distribution on 25701..25703, state under $OCTOHOOKS_CLUSTER_DIR (default
# /tmp/octohooks-rabbitmq-cluster). Uses Debian's rabbitmq-server package (scripts/deps.sh
# installs it).
#
#   scripts/rabbitmq-cluster.sh start        three fresh nodes, clustered, ready
#   scripts/rabbitmq-cluster.sh kill N       SIGKILL node N's Erlang VM (a crash, not a stop)
#   scripts/rabbitmq-cluster.sh start-node N start node N again (it rejoins with its state)
#   scripts/rabbitmq-cluster.sh stop         stop every node and remove the state
set -euo pipefail

base="${OCTOHOOKS_CLUSTER_DIR:-/tmp/octohooks-rabbitmq-cluster}"
bin=/usr/lib/rabbitmq/bin
# As the machine's broker is set up by Debian: epmd and the distribution on loopback only.
export ERL_EPMD_ADDRESS=127.0.0.1

node() { echo "octo$1@localhost"; }

ctl() {
    local n="$1"
    shift
    "$bin/rabbitmqctl" -q -n "$(node "$n")" "$@"
}

start_node() {
    local n="$1" dir="$base/node$1"
    mkdir -p "$dir"
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$((5700 + n))
EOF
    echo '[].' >"$dir/enabled_plugins"
    : >"$dir/rabbitmq-env.conf"
    env RABBITMQ_NODENAME="$(node "$n")" \
        RABBITMQ_DIST_PORT="$((25700 + n))" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_PID_FILE="$dir/pid" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        "$bin/rabbitmq-server" -detached
    timeout 120 "$bin/rabbitmqctl" -q -n "$(node "$n")" wait --timeout 110 "$dir/pid"
}

case "${1:-}" in
start)
    command -v "$bin/rabbitmq-server" >/dev/null || scripts/deps.sh
    "$0" stop
    for n in 1 2 3; do start_node "$n"; done
    for n in 2 3; do
        ctl "$n" stop_app
        ctl "$n" join_cluster "$(node 1)"
        ctl "$n" start_app
    done
    ctl 1 await_online_nodes 3 --timeout 60
    echo "rabbitmq cluster: $(node 1) $(node 2) $(node 3) on 127.0.0.1:5701-5703"
    ;;
kill)
    kill -9 "$(cat "$base/node$2/pid")"
    ;;
start-node)
    start_node "$2"
    ;;
stop)
    for n in 1 2 3; do
        if [ -f "$base/node$n/pid" ]; then
            ctl "$n" stop 2>/dev/null || kill -9 "$(cat "$base/node$n/pid")" 2>/dev/null || true
        fi
    done
    rm -rf "$base"
    ;;
*)
    echo "usage: $0 start | kill N | start-node N | stop" >&2
    exit 2
    ;;
esac

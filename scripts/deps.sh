#!/usr/bin/env bash
# Makes sure everything Octohooks needs to build and run is installed and started on a Debian
# machine: a C compiler, the Rust toolchain, PostgreSQL and RabbitMQ. Safe to run repeatedly.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
command -v cc >/dev/null || packages+=(build-essential)
command -v curl >/dev/null || packages+=(curl ca-certificates)
command -v psql >/dev/null || packages+=(postgresql-client)
command -v pg_ctlcluster >/dev/null || packages+=(postgresql)
command -v rabbitmq-server >/dev/null || packages+=(rabbitmq-server)
if [ ${#packages[@]} -gt 0 ]; then
  log "installing ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
fi

if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  log "installing the Rust toolchain (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
fi

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
# Development default: the postgres user connects over loopback without a password.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  log "allowing password-less loopback connections for the postgres user (development setup)"
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi

amqp_up() { timeout 1 bash -c '</dev/tcp/127.0.0.1/5672' 2>/dev/null; }
if ! amqp_up; then
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached || true
  for _ in $(seq 1 90); do amqp_up && break; sleep 1; done
  amqp_up || { echo "RabbitMQ did not start" >&2; exit 1; }
fi
log "PostgreSQL and RabbitMQ are up"

#!/usr/bin/env bash
# `make down`: stops the API and the dispatcher started by `make up` (SIGTERM: they drain).
set -euo pipefail
cd "$(dirname "$0")/.."
for name in api dispatcher; do
  pidfile=.run/$name.pid
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 1 60); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.5; done
    echo "stopped $name"
  fi
  rm -f "$pidfile"
done

#!/usr/bin/env bash
# Installs Node.js and npm when missing (Debian's packages), then the development dependencies
# of the TypeScript SDK and of the web console from their lock files, when they are missing or
# out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
# The SDK runs on Node.js 18, but building the console (Vite 7) and its browser test
# (playwright-core) need Node.js 20. Debian 13 packages Node.js 20; Debian 12 packages 18.
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old: building the console needs Node.js 20 or newer" >&2
  echo "(on Debian 12: install Node.js 20 from https://nodejs.org or NodeSource, then run again)" >&2
  exit 1
fi

for dir in clients/typescript console; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
    [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing the dependencies of $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

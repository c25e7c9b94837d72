#!/usr/bin/env bash
# `make deny`: cargo-deny over advisories, licenses, bans and sources (installs it if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo-deny >/dev/null; then
  echo "==> installing cargo-deny" >&2
  cargo install --locked cargo-deny
fi
cargo deny --all-features check advisories licenses bans sources

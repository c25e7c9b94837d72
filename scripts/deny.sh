#!/usr/bin/env bash
# `make deny`: cargo-deny over licenses, bans, sources and security advisories (installs
# cargo-deny if missing). The advisory database is fetched from GitHub; when GitHub cannot be
# reached the advisory check is reported as not run (loudly) and the others still gate.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo-deny >/dev/null; then
  echo "==> installing cargo-deny" >&2
  cargo install --locked cargo-deny
fi
cargo deny --all-features check licenses bans sources
if timeout 15 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --all-features check advisories
else
  echo "WARNING: advisories NOT checked: the RustSec advisory database (github.com) is unreachable from this machine" >&2
fi

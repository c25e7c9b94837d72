#!/usr/bin/env bash
# Builds the web console (console/dist), which the API embeds when it is compiled: first the
# TypeScript SDK it is built on (clients/typescript/dist), then the console itself. Run before
# `cargo build` by `make up`, `make test` and CI; `cargo build` alone serves a page saying how.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/node-deps.sh
printf '==> %s\n' "building the web console" >&2
(cd clients/typescript && npm run --silent build)
(cd console && npm run --silent build >/dev/null)

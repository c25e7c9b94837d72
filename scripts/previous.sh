#!/usr/bin/env bash
# Builds the API and dispatcher of the previous version, for the rolling-upgrade test of
# `make chaos`, and prints the directory of their binaries. The previous version is the parent
# of the latest commit that changed code or schema (crates/, migrations/), or
# OCTOHOOKS_PREVIOUS_REF when set. Built from `git archive` into target/previous/<commit>,
# kept there, so a second run builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ -n "${OCTOHOOKS_PREVIOUS_REF:-}" ]; then
  ref="$OCTOHOOKS_PREVIOUS_REF"
else
  ref="$(git rev-list -n 1 HEAD -- crates migrations)~1"
fi
commit="$(git rev-parse --verify "$ref^{commit}")"
dir="$PWD/target/previous/$commit"
if [ ! -x "$dir/target/debug/octohooks-dispatcher" ] || [ ! -x "$dir/target/debug/octohooks-api" ]; then
  echo "building the previous version, $(git log -1 --format='%h %s' "$commit" | cut -c1-72)" >&2
  rm -rf "$dir/src"
  mkdir -p "$dir/src"
  git archive "$commit" | tar -x -C "$dir/src"
  (cd "$dir/src" && CARGO_TARGET_DIR="$dir/target" cargo build --bin octohooks-api --bin octohooks-dispatcher >&2)
  rm -rf "$dir/src"
fi
echo "$dir/target/debug"

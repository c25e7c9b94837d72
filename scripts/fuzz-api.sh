#!/usr/bin/env bash
# `make fuzz`: schemathesis drives the API from proto-docs/openapi.json with generated input,
# bounded in time. Fails on any 5xx and on any response that does not match the document.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
command -v st >/dev/null || python3 -m pip install --quiet schemathesis
[ -x target/debug/octohooks-api ] || cargo build --bins

db=octohooks_fuzz
addr=127.0.0.1:18380
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
export OCTOHOOKS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db
export OCTOHOOKS_LISTEN_ADDR=$addr
export OCTOHOOKS_METRICS_LISTEN_ADDR=127.0.0.1:0
export OCTOHOOKS_ADMIN_TOKEN=fuzz-admin-token-0123456789abcdef
export OCTOHOOKS_SECRET_ENCRYPTION_KEY=ZnV6ei1lbmNyeXB0aW9uLWtleS0wMTIzNDU2Nzg5YWI=
export OCTOHOOKS_QUEUE_NAME=octohooks.fuzz
export OCTOHOOKS_RATE_LIMIT_PER_SECOND=0
export RUST_LOG=error
target/debug/octohooks-api serve >/tmp/octohooks-fuzz-api.log 2>&1 &
api=$!
trap 'kill $api 2>/dev/null; wait $api 2>/dev/null; psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://$addr/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
key=$(curl -fsS -X POST "http://$addr/api/v1/environments" -H "Authorization: Bearer $OCTOHOOKS_ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name":"fuzz"}' | sed -E 's/.*"apiKey":"([^"]+)".*/\1/')
curl -fsS -o /dev/null -X POST "http://$addr/api/v1/applications" -H "Authorization: Bearer $key" \
  -H 'content-type: application/json' -d '{"name":"fuzz","uid":"fuzz"}'

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# Tenant routes with an API key, then the admin routes with the admin token.
st run proto-docs/openapi.json --url "http://$addr" -H "Authorization: Bearer $key" \
  --exclude-path-regex '^/api/v1/environments' \
  --checks "$checks" --max-examples "${FUZZ_EXAMPLES:-25}" --request-timeout 10 --generation-deterministic
st run proto-docs/openapi.json --url "http://$addr" -H "Authorization: Bearer $OCTOHOOKS_ADMIN_TOKEN" \
  --include-path-regex '^/api/v1/environments' \
  --checks "$checks" --max-examples "${FUZZ_EXAMPLES:-25}" --request-timeout 10 --generation-deterministic

#!/usr/bin/env bash
# `make up`: installs and starts what is missing, builds, migrates, runs the API and the
# dispatcher in the background and prints a working API key with a curl example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

run=.run
mkdir -p "$run"
export OCTOHOOKS_LISTEN_ADDR=${OCTOHOOKS_LISTEN_ADDR:-127.0.0.1:8080}
export OCTOHOOKS_DISPATCHER_LISTEN_ADDR=${OCTOHOOKS_DISPATCHER_LISTEN_ADDR:-127.0.0.1:8081}
# Development: webhooks to localhost receivers are allowed.
export OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS=${OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS:-true}
# The admin token: 64 hex digits (the API refuses fewer than 32 characters).
{ [ -f "$run/admin-token" ] && [ "$(wc -c < "$run/admin-token")" -ge 32 ]; } \
  || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$run/admin-token"
export OCTOHOOKS_ADMIN_TOKEN=${OCTOHOOKS_ADMIN_TOKEN:-$(cat "$run/admin-token")}
# Endpoint signing secrets are encrypted at rest with this key; keep .run/encryption-key safe.
[ -s "$run/encryption-key" ] || head -c 32 /dev/urandom | base64 > "$run/encryption-key"
export OCTOHOOKS_SECRET_ENCRYPTION_KEY=${OCTOHOOKS_SECRET_ENCRYPTION_KEY:-$(cat "$run/encryption-key")}

scripts/console.sh
echo "==> building" >&2
cargo build --release --bins -q
scripts/down.sh >/dev/null 2>&1 || true
target/release/octohooks-api migrate
nohup target/release/octohooks-api serve >"$run/api.log" 2>&1 &
echo $! >"$run/api.pid"
nohup target/release/octohooks-dispatcher >"$run/dispatcher.log" 2>&1 &
echo $! >"$run/dispatcher.pid"

api="http://$OCTOHOOKS_LISTEN_ADDR"
for _ in $(seq 1 60); do
  curl -fsS "$api/health/ready" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "$api/health/ready" >/dev/null || { echo "the API did not become ready; see $run/api.log" >&2; exit 1; }

key=$(cat "$run/api-key" 2>/dev/null || true)
if [ -z "$key" ] || ! curl -fsS -o /dev/null -H "Authorization: Bearer $key" "$api/api/v1/applications"; then
  key=$(curl -fsS -X POST "$api/api/v1/environments" \
    -H "Authorization: Bearer $OCTOHOOKS_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"development"}' | sed -E 's/.*"apiKey":"([^"]+)".*/\1/')
  echo "$key" >"$run/api-key"
fi

cat <<MSG

Octohooks is running.
  dashboard   $api/dashboard/   (sign in with the API key below, or the admin token)
  API         $api        (log: $run/api.log)
  dispatcher  http://$OCTOHOOKS_DISPATCHER_LISTEN_ADDR/health/ready  (log: $run/dispatcher.log)
  admin token $run/admin-token
  API key     $key

Try it:
  export OCTOHOOKS_API_KEY=$key
  curl -s -X POST $api/api/v1/applications \\
    -H "Authorization: Bearer \$OCTOHOOKS_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"name":"My App","uid":"my-app"}'
  curl -s -X POST $api/api/v1/applications/my-app/messages \\
    -H "Authorization: Bearer \$OCTOHOOKS_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"eventType":"user.created","payload":{"email":"john@example.com"}}'

Stop everything with: make down
MSG

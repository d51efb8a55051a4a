#!/usr/bin/env bash
# Smoke test of an installed modwatch: `modwatch run` from an empty directory on free ports, with an embedded
# Redis, until its banner, then a signed webhook through it to its finished job (`modwatch send-webhook`). Usage: scripts/smoke-run.sh VENV. Exits non-zero, with the run's output, on failure.
set -euo pipefail
venv=$(cd "${1:?usage: smoke-run.sh VENV}" && pwd)
work=$(mktemp -d)
run=""
stop() { if [ -n "$run" ]; then kill -INT "$run" 2>/dev/null || true; wait "$run" || true; fi; rm -rf "$work"; }
trap stop EXIT
read -r api dashboard simulator worker scheduler stream closed < <("$venv/bin/python" -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
cd "$work"
# Nothing configured, like a new user; the probe points at a closed port so the embedded Redis starts.
env -u REDIS_URL -u WEBHOOK_SECRET -u API_KEY -u INSTANCE_BASE -u DATABASE_URL -u METRICS_PORT LOG_FORMAT=json \
  "$venv/bin/modwatch" run --port "$api" --dashboard-port "$dashboard" --simulator-port "$simulator" \
  --worker-metrics-port "$worker" --scheduler-metrics-port "$scheduler" --stream-metrics-port "$stream" \
  --redis-probe-url "redis://127.0.0.1:$closed/0" >run.log 2>&1 &
run=$!
for _ in $(seq 240); do
  grep -q '^  API key' run.log && break
  kill -0 "$run" 2>/dev/null || break
  sleep 0.5
done
if ! grep -q '^  API key' run.log; then
  echo "smoke: modwatch run did not reach its banner; its output:" >&2
  tail -n 40 run.log >&2
  exit 1
fi
sed -n '/modwatch is running/,/^  API key/p' run.log | grep -v '^  API key\|^  webhook secret'
"$venv/bin/modwatch" send-webhook --timeout 180 || { echo "smoke: the webhook failed; modwatch run said:" >&2
  tail -n 40 run.log >&2; exit 1; }
echo "smoke: $("$venv/bin/python" --version): modwatch run reached its banner and processed a signed webhook"

#!/usr/bin/env bash
# Runs the gate locally in the real runtime (wrangler dev / workerd) on 127.0.0.1:8787,
# after its own setup and a release build. Ctrl-C stops it.
# Cron never fires by itself under wrangler dev; this script fires one tick a minute.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .tools/env.sh
bash scripts/build.sh
PORT="${PORT:-8787}"
STATE="$(mktemp -d -t gate-demo-XXXXXX)"
GATE_SKIP_BUILD=1 wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE" \
  --test-scheduled --show-interactive-dev-session=false &
WRANGLER=$!
trap 'kill $WRANGLER 2>/dev/null; wait $WRANGLER 2>/dev/null' EXIT INT TERM
until curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
  kill -0 $WRANGLER 2>/dev/null || { echo "wrangler dev exited" >&2; exit 1; }
  sleep 1
done
echo "gate running at http://127.0.0.1:$PORT  (state in $STATE)"
while kill -0 $WRANGLER 2>/dev/null; do
  NOW_MS=$(( $(date +%s) * 1000 ))
  curl -fsS "http://127.0.0.1:$PORT/cdn-cgi/handler/scheduled?cron=*+*+*+*+*&time=$NOW_MS" >/dev/null || true
  curl -fsS "http://127.0.0.1:$PORT/healthz"; echo
  sleep 60
done

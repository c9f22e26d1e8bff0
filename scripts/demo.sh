#!/usr/bin/env bash
# The demo: sets up, builds the Worker, then runs the real gate (wrangler dev / workerd)
# against the sandbox: a healthy release promotes, a bad one rolls back, with a live
# progress view and a timeline picture (artifacts/demo-timeline.svg).
# Usage: bash scripts/demo.sh [--serve] [--delay SECONDS] [--port 8787]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .tools/env.sh
bash scripts/build.sh
exec python scripts/demo.py "$@"

#!/usr/bin/env bash
# Builds the Worker (wasm + JS shim into build/) with the local toolchain; wrangler's
# [build] command. Release by default; GATE_BUILD=dev for a faster unoptimised build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -f .tools/env.sh ] || bash scripts/setup.sh
# shellcheck source=/dev/null
source .tools/env.sh
# The test runner builds once, then starts several `wrangler dev`s that would each rebuild.
if [ "${GATE_SKIP_BUILD:-}" = "1" ] && [ -f build/index.js ]; then
  exit 0
fi
if [ "${GATE_BUILD:-release}" = "dev" ]; then
  exec worker-build --dev
fi
worker-build --release
# The name section (function names, for stack traces and twiggy) is a third of the wasm as
# built and ships no behaviour; GATE_WASM_NAMES=1 keeps it. docs/size.md says why dropping it
# is safe.
if [ "${GATE_WASM_NAMES:-}" != "1" ]; then
  python3 scripts/wasm-sections.py --drop name build/index_bg.wasm
fi

#!/usr/bin/env bash
# What one tick of the decision core costs (decode the stored state, plan, step, encode the
# state and events: a Durable Object's work each tick besides its I/O), natively and as
# WebAssembly under V8 (node's WASI; workerd embeds V8 too), both with the Worker's release
# profile and the wasm through the same `wasm-opt -Oz`. Prints `rollout-sim --tick-cost`
# tables (docs/benchmark.md, "Cost per tick").
# Usage: bash scripts/bench/tick-cost.sh [--runs N] [SCENARIO.json ...]
# Default: 50 runs of a quiet, a busy and a bursty service, 20 runs of two 90-minute holds
# at 1000 rps, and 3 runs of a 24-hour hold at 1000 rps (scenarios/hold/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
[ -f .tools/env.sh ] || bash scripts/setup.sh
# shellcheck source=/dev/null
source .tools/env.sh
runs=()
if [ $# -eq 0 ]; then
  runs+=("--runs 50 scenarios/aa-10rps.json scenarios/aa-1000rps.json
    scenarios/x5-1000rps-in-bake.json scenarios/persistent/aa-1000rps-shared-cv30-held10.json")
  runs+=("--runs 20 scenarios/hold/aa-1000rps-held-90.json
    scenarios/hold/aa-1000rps-overdispersed-held-90.json")
  runs+=("--runs 3 scenarios/hold/aa-1000rps-held-24h.json")
else
  runs+=("$*")
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || {
  echo "tick-cost: cannot add the wasm32-wasip1 target (rustup target add wasm32-wasip1)" >&2
  exit 1
}
echo "tick-cost: building rollout-sim natively and for wasm32-wasip1 (release profile)" >&2
cargo build --quiet --release --bin rollout-sim
cargo build --quiet --release --target wasm32-wasip1 --bin rollout-sim
WASM="$TARGET/wasm32-wasip1/release/rollout-sim.opt.wasm"
"$WASM_OPT_BIN" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  "$TARGET/wasm32-wasip1/release/rollout-sim.wasm" -o "$WASM"
echo "## native ($(uname -m))"
for args in "${runs[@]}"; do
  # shellcheck disable=SC2086 # each entry is a word list
  "$TARGET/release/rollout-sim" --tick-cost --quiet $args
done
echo "## wasm32 under V8 (node $(node --version) WASI)"
for args in "${runs[@]}"; do
  # shellcheck disable=SC2086
  node --no-warnings scripts/bench/wasi-run.mjs "$WASM" --tick-cost --quiet $args
done

#!/usr/bin/env bash
# Runs every check: formatting, clippy (host and wasm32, warnings denied), the native
# unit and scenario tests, the release wasm build (size reported), and the end-to-end
# tests against the real runtime (wrangler dev / workerd). Does its own setup first.
# Usage: bash scripts/test.sh        (fails loudly if any part cannot run)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$(date +%s)
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "setup"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .tools/env.sh
mkdir -p artifacts
LOG="artifacts/test-output.txt"
: > "$LOG"

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (host, all targets)"
cargo clippy --all-targets --quiet -- -D warnings

say "cargo clippy (wasm32 shell)"
cargo clippy --lib --target wasm32-unknown-unknown --quiet -- -D warnings

say "cargo clippy (the simulator on wasm32-wasip1, for scripts/bench/tick-cost.sh)"
cargo clippy --bin rollout-sim --target wasm32-wasip1 --quiet -- -D warnings

say "instrument/ (the target Workers' crate): clippy on wasm32"
CARGO_TARGET_DIR="$ROOT/target" cargo clippy --quiet --manifest-path instrument/Cargo.toml --target wasm32-unknown-unknown -- -D warnings

say "cargo test (native core)"
cargo test 2>&1 | tee -a "$LOG"

say "gate-sim: 300 seeds of the whole gate against a faulty world (release build)"
cargo run --release --quiet --bin gate-sim -- --seeds 300 2>&1 | tee artifacts/gate-sim.txt

say "release wasm build"
bash scripts/build.sh
WASM="build/index_bg.wasm"
[ -f "$WASM" ] || WASM="$(find build -name '*.wasm' | head -1)"
RAW=$(wc -c < "$WASM")
GZ=$(gzip -9 -c "$WASM" | wc -c)
printf 'wasm size: %s raw, %s gzip (%s); limit: 64 MiB uncompressed (platform reference; before 2026: 3 MB gzip free plan, 10 MB paid)\n' "$RAW" "$GZ" "$WASM" | tee artifacts/wasm-size.txt

say "python tests: the sandbox, then end-to-end on the real runtime (wrangler dev + sandbox)"
set +e
python -m pytest -q -p no:cacheprovider 2>&1 | tee -a "$LOG"
E2E=${PIPESTATUS[0]}
set -e

# One closing line over every runner: sum cargo's "N passed; M failed" and pytest's summary.
PASSED=$(grep -Eo '[0-9]+ passed' "$LOG" | awk '{s+=$1} END {print s+0}')
FAILED=$(grep -Eo '[0-9]+ failed' "$LOG" | awk '{s+=$1} END {print s+0}')
say "done in $(( $(date +%s) - START ))s"
echo "all: ${PASSED} passed, ${FAILED} failed"
exit "$E2E"

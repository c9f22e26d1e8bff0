#!/usr/bin/env bash
# Installs everything rollout-gate's build, demo and tests need, offline-safe and
# idempotent (a warm re-run takes seconds), then writes .tools/env.sh for the others.
# Reaches only crates.io, npm and PyPI. Usage: bash scripts/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
WORKER_BUILD_VERSION="0.8.7"
mkdir -p "$TOOLS"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
# Version printed by "<tool> --version": its last word ("wasm-bindgen 0.2.130", "0.8.7").
version_of() { "$1" --version 2>/dev/null | awk '{print $NF; exit}'; }
# Content hash, used as a stamp so an unchanged lock file skips reinstalling.
stamp_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

for tool in cargo rustup node npm python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed; this project needs Rust (rustup), Node 20+ and Python 3.11+"
done

# 1. The wasm targets: the Worker's, and WASI for the simulator's tick-cost benchmark
#    (scripts/bench/tick-cost.sh), which the tests check compiles.
for target in wasm32-unknown-unknown wasm32-wasip1; do
  if ! rustup target list --installed | grep -qx "$target"; then
    say "adding rust target $target"
    rustup target add "$target"
  fi
done

# 2. worker-build, pinned. It would download wasm-bindgen/wasm-opt/esbuild from GitHub at
#    build time, which fails offline; env.sh points it at local binaries instead.
if [ "$(version_of worker-build)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (several minutes on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION"
fi

# 3. wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock. The lock and the
#    Cargo.toml pin must agree, or a lockfile bump would silently break the build.
[ -f Cargo.lock ] || cargo generate-lockfile
LOCKED_WB="$(awk '$0=="name = \"wasm-bindgen\""{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
PINNED_WB="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)"
[ -n "$LOCKED_WB" ] || die "wasm-bindgen not found in Cargo.lock"
[ "$LOCKED_WB" = "$PINNED_WB" ] || die "Cargo.lock has wasm-bindgen $LOCKED_WB but Cargo.toml pins =$PINNED_WB; make them agree"
if [ "$(version_of wasm-bindgen)" != "$LOCKED_WB" ]; then
  say "installing wasm-bindgen-cli $LOCKED_WB (several minutes on 2 cores)"
  # No --locked: the crates.io mirror can lag behind a locked dependency.
  cargo install wasm-bindgen-cli --version "$LOCKED_WB" --force
fi

# 4. JS tooling: wrangler 4.86 (last line for Node 20), binaryen 132 (wasm-opt), esbuild.
NPM_STAMP="$(stamp_of package.json package-lock.json)"
if [ "$(cat node_modules/.gate-stamp 2>/dev/null)" != "$NPM_STAMP" ]; then
  say "installing npm packages (wrangler, binaryen)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$NPM_STAMP" > node_modules/.gate-stamp
fi

# 5. Python for the end-to-end tests (pytest) in a project-local venv.
PY_STAMP="$(stamp_of tests/e2e/requirements.txt)"
if [ "$(cat "$TOOLS/venv/.gate-stamp" 2>/dev/null)" != "$PY_STAMP" ]; then
  say "creating python venv for end-to-end tests"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  echo "$PY_STAMP" > "$TOOLS/venv/.gate-stamp"
fi

# 6. Chromium for the status page's browser test: Debian's package (a test tool's own
#    browser download cannot work offline).
if ! command -v chromium >/dev/null; then
  say "installing chromium (Debian package)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

# 7. The environment every other script sources.
ESBUILD="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
WASM_OPT="$ROOT/node_modules/binaryen/bin/wasm-opt"
[ -x "$ESBUILD" ] || die "esbuild binary missing at $ESBUILD"
[ -x "$WASM_OPT" ] || die "wasm-opt missing at $WASM_OPT"
cat > "$TOOLS/env.sh" <<ENV
# Written by scripts/setup.sh; source it, do not edit.
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export ESBUILD_BIN="$ESBUILD"
export WASM_OPT_BIN="$WASM_OPT"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export DO_NOT_TRACK=1
export PATH="$ROOT/node_modules/.bin:$TOOLS/venv/bin:\$PATH"
ENV
say "toolchain ready (.tools/env.sh)"

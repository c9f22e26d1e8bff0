"""The Worker's startup under workerd: seconds from starting `wrangler dev` (the end-to-end
tests' harness, tests/e2e/gate.py) to the first answered GET /healthz, which the Rust code
serves, so the wasm is compiled and instantiated by then. Polls every 50 ms.

Usage: python3 scripts/bench/startup.py [--runs N] [BUILD_DIR ...]
With no BUILD_DIR it times build/ as it is (build it first: bash scripts/build.sh). With
several, each round copies each one into build/ in turn (build/ is left holding the last)."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import gate  # noqa: E402


def seconds_to_ready() -> float:
    start = time.monotonic()
    with gate.Gate():  # returns once GET /healthz answers 200 or 503
        return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("builds", nargs="*", type=Path)
    args = parser.parse_args()
    if any(b.resolve() == (ROOT / "build").resolve() for b in args.builds):
        raise SystemExit("give copies of builds, not build/ itself (it is overwritten)")
    # The harness polls /healthz every 0.5 s; time here at a finer grain.
    sleep = time.sleep
    time.sleep = lambda s: sleep(min(s, 0.05))
    times: dict[str, list[float]] = {str(b): [] for b in args.builds or [Path("build")]}
    for _ in range(args.runs):
        for build in times:
            if args.builds:
                shutil.rmtree(ROOT / "build", ignore_errors=True)
                shutil.copytree(build, ROOT / "build")
            times[build].append(seconds_to_ready())
            print(f"{build}: {times[build][-1]:.2f} s", flush=True)
    for build, runs in times.items():
        print(f"{build}: median {statistics.median(runs):.2f} s over {len(runs)} runs "
              f"(min {min(runs):.2f}, max {max(runs):.2f})")


if __name__ == "__main__":
    main()

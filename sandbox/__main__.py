"""CLI: `python -m sandbox --port 0 --state-dir DIR` starts the sandbox, prints one JSON
line `{"port": N, "base": "http://127.0.0.1:N"}` on stdout once it accepts connections,
and runs until SIGTERM or SIGINT (then exits 0)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .answer_times import PROFILES, parse_answer_times
from .server import start


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port; 0 picks a free one")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="working directory for chdb data and sandbox.log (default: a temp dir)")
    p.add_argument("--clock-ms", type=int, default=None,
                   help="initial sandbox clock, epoch ms (default: now, floored to the minute)")
    p.add_argument("--seed", type=int, default=0, help="seed for ids and request routing")
    p.add_argument("--answer-times", choices=sorted(PROFILES), default="off",
                   help="answer like the real services (real: SQL ~300 ms, API ~150 ms, /healthz "
                        "~100 ms, uniform +-30%%; see sandbox/answer_times.py); default off")
    p.add_argument("--answer-times-seed", type=int, default=None,
                   help="seed of the answer-time draws (default: --seed)")
    return p.parse_args(argv)


# Seconds the chdb session may take to close after a signal before the sandbox exits anyway.
CLOSE_GRACE_S = 5.0


def main(argv: list[str] | None = None) -> int:
    """Runs the sandbox until a signal."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="sandbox-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(state_dir / "chdb", ignore_errors=True)
    logging.basicConfig(filename=state_dir / "sandbox.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    seed = args.seed if args.answer_times_seed is None else args.answer_times_seed
    times = parse_answer_times({"profile": args.answer_times}, seed)
    server, thread = start(state_dir, args.host, args.port, args.clock_ms, args.seed, times)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    port = server.server_address[1]
    print(json.dumps({"port": port, "base": f"http://{args.host}:{port}",
                      "state_dir": str(state_dir)}), flush=True)
    stop.wait()
    logging.info("signal: stopping")
    server.shutdown()
    server.server_close()
    # The chdb session is discarded at every start (its directory is removed above), so
    # nothing is lost if closing it does not finish: one CI run saw the sandbox still
    # alive 15 s after SIGTERM with its log ending at the last request. Close it on a
    # daemon thread, give it CLOSE_GRACE_S, and leave without waiting on it further.
    closer = threading.Thread(target=server.app.close, name="chdb-close", daemon=True)
    closer.start()
    closer.join(CLOSE_GRACE_S)
    logging.info("stopped%s", "" if not closer.is_alive() else " (chdb still closing)")
    logging.shutdown()
    sys.stdout.flush()
    if closer.is_alive():
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

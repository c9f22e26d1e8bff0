"""A measurement, not a test: `python -m sandbox.bench [--rps 100] [--minutes 40]`
starts an in-process sandbox, runs a canary 10% -> 50% -> 100% (a third of the time
each), and reports (1) one-shot generation of all minutes + the gate's HTTP query over
the whole window, (2) the per-tick cost when the clock advances one minute at a time
and the gate's query runs each tick, as under `wrangler dev`."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from .server import start

T0 = 1_795_773_600_000
ACCT, TOKEN = "bench", "bench-token"
OLD, NEW = "22222222-2222-4222-8222-222222222222", "11111111-1111-4111-8111-111111111111"


def call(base: str, method: str, path: str, body: object = None, raw: bytes | None = None) -> bytes:
    """One request; raises on non-2xx."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def http_query(start_s: int, end_s: int) -> str:
    """The gate's HTTP query shape."""
    return (
        "SELECT index1 AS version, intDiv(toUnixTimestamp(timestamp), 60) * 60 AS minute, "
        "SUM(_sample_interval) AS requests, SUM(if(double1 >= 500, _sample_interval, 0)) AS errors_5xx, "
        "SUM(if(double2 > 250, _sample_interval, 0)) AS slow, "
        "quantileExactWeighted(0.95)(double2, _sample_interval) AS p95_ms, count() AS stored_rows "
        f"FROM mauntic_logs WHERE timestamp >= toDateTime({start_s}) AND timestamp < toDateTime({end_s}) "
        f"AND blob1 = 'http' AND index1 IN ('{NEW}', '{OLD}') GROUP BY version, minute ORDER BY minute, version FORMAT JSON")


def setup(base: str, rps: float, minutes: int) -> None:
    """Account, script, scenario and the three steps' deployments."""
    call(base, "POST", "/_sandbox/reset", {"now_ms": T0})
    call(base, "POST", "/_sandbox/accounts", {"account_id": ACCT, "api_token": TOKEN})
    call(base, "POST", "/_sandbox/scripts", {
        "account_id": ACCT, "script": "gw", "versions": [{"id": OLD}, {"id": NEW}],
        "deployment": {"versions": [{"version_id": OLD, "percentage": 100}], "created_on_ms": T0},
        "scenario": {"rps": rps, "seed": 1}})


def deploy(base: str, pct: float) -> None:
    """The gate's step."""
    versions = [{"version_id": NEW, "percentage": pct}] + ([{"version_id": OLD, "percentage": 100 - pct}] if pct < 100 else [])
    call(base, "POST", f"/client/v4/accounts/{ACCT}/workers/scripts/gw/deployments",
         {"strategy": "percentage", "versions": versions})


def sql(base: str, text: str) -> dict:
    """Runs a query through the SQL endpoint."""
    return json.loads(call(base, "POST", f"/client/v4/accounts/{ACCT}/analytics_engine/sql", raw=text.encode()))


def main() -> None:
    """Runs both measurements and prints them."""
    p = argparse.ArgumentParser(prog="python -m sandbox.bench")
    p.add_argument("--rps", type=float, default=100)
    p.add_argument("--minutes", type=int, default=40)
    args = p.parse_args()
    srv, _ = start(Path(tempfile.mkdtemp(prefix="sandbox-bench-")), now_ms=T0)
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    steps = {0: 10, args.minutes // 3: 50, 2 * args.minutes // 3: 100}
    end_s = T0 // 1000 + args.minutes * 60

    setup(base, args.rps, args.minutes)
    for m in range(args.minutes):
        call(base, "POST", "/_sandbox/clock", {"now_ms": T0 + m * 60_000})
        if m in steps:
            deploy(base, steps[m])
    call(base, "POST", "/_sandbox/clock", {"now_ms": T0 + args.minutes * 60_000})
    gen = json.loads(call(base, "POST", "/_sandbox/analytics/generate"))
    t = time.perf_counter()
    out = sql(base, http_query(T0 // 1000, end_s))
    q = time.perf_counter() - t
    total = sum(int(r["requests"]) for r in out["data"])
    print(f"one shot: {gen['rows']} rows over {gen['minutes']} minutes generated+inserted in {gen['seconds']:.2f} s; "
          f"gate HTTP query over {args.minutes} min: {q * 1000:.0f} ms ({out['rows']} result rows, {total} requests)")

    setup(base, args.rps, args.minutes)
    ticks = []
    for m in range(1, args.minutes + 1):
        if m - 1 in steps:
            deploy(base, steps[m - 1])
        call(base, "POST", "/_sandbox/clock", {"now_ms": T0 + m * 60_000})
        t = time.perf_counter()
        sql(base, http_query(T0 // 1000 + max(0, m - 10) * 60, T0 // 1000 + m * 60))
        ticks.append(time.perf_counter() - t)
    ticks.sort()
    print(f"per tick (1 minute generated + 10-minute gate query): median {ticks[len(ticks) // 2] * 1000:.0f} ms, "
          f"max {ticks[-1] * 1000:.0f} ms, total {sum(ticks):.2f} s for {len(ticks)} ticks")
    srv.shutdown()
    srv.app.close()


if __name__ == "__main__":
    main()

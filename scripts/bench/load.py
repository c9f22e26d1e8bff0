"""The load run (issue 19): N rollouts at once in one gate under `wrangler dev`, against the
sandbox answering at the real services' speed (`--answer-times real`) and holding the
gate to the real API rate limit, for M simulated minutes; then K of them replayed ALONE
in a fresh gate, to see whether load changed what the gate decided.

    source .tools/env.sh && bash scripts/build.sh
    python scripts/bench/load.py --rollouts 10 50 --minutes 30 --alone 3 --seed 1

It reports, per N: the cron request's wall time (p50, max); each rollout's tick lag, from
the start of the cron handler to the end of its tick (p50, p99; scripts/bench/load_log.py
says how it is read and where it comes from); the most Cloudflare API requests the gate's
token sent in any 5 simulated minutes (the sandbox counts them, sandbox/ratelimit.py);
whether every active rollout ticked exactly once every minute; and whether the replayed
rollouts made the same phase changes and split writes at the same minutes. It prints a
line per simulated minute, a markdown table row per N at the end, and writes the whole
record (per minute, per rollout) as JSON (`--json`, default artifacts/load.json).

The world: each script has an old version live since 10 minutes before the start and a
new one uploaded; traffic is the sandbox's model at `--rps` (5xx 0.1% on both versions;
`--bad-share` of the scripts, at least one, get 2% on the new one and should roll back).
All deploy hooks are sent in the wall-clock minute before the start minute t0, at least
2 s into it (the gate dates a rollout's start, its baseline window and its first step's
dwell by the wall clock of the hook, so a replay must hook in the same minute and past
cron's 1 s offset; see HOOK_OFFSET_S); minute m moves the sandbox clock to t0 + m min and fires cron with
`time` = t0 + m min + 1 s, only after minute m - 1's cron request has returned. The
sandbox generates the ended minute's traffic before the cron request is sent, so its own
generation time is not in the figures (its SQL execution is, within the 300 ms answer).

A hook the gate answers 503 (its API budget is kept for the running rollouts,
`api_budget_in_use`) is sent again once its `Retry-After` has passed, as CI would. Until
every hook is in, the minutes keep to the wall clock (cron m fires at t0 + m min + 1 s by
the wall clock too), so a retried hook is dated within its minute like the first ones; a
rollout's replay alone is hooked after the same minute's cron.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (ROOT, ROOT / "tests" / "e2e", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from gate import Gate, stat_fields  # noqa: E402  (tests/e2e/gate.py)
from load_log import LogTail, gate_time_text, parse_cron  # noqa: E402
from sandbox.client import SandboxClient, SandboxProcess  # noqa: E402
from world import MINUTE, World, gate_vars  # noqa: E402  (tests/e2e/world.py)

HEALTHY = {"error_rate": 0.001}
BAD = {"error_rate": 0.02}  # twenty-fold 5xx on the new version
API_LIMIT = 1_200  # per token and 5 minutes (platform reference §9; sandbox/ratelimit.py)
HOOK_THREADS = 20  # deploy hooks sent at once: 200 of them must land within one wall minute
CRON_TIMEOUT_S = 1_800
LOG_WAIT_S = 2.0  # how long to wait for a cron run's log lines after its request returned
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Rollout:
    """One script of the scenario: its ids and whether its new version is bad."""

    script: str
    old: str
    new: str
    git_sha: str
    bad: bool


def scenario(n: int, seed: int, bad_share: float) -> list[Rollout]:
    """N scripts with ids drawn from `seed`; round(n × bad_share) of them, at least one, bad."""
    rng = random.Random(seed)
    bad = set(rng.sample(range(n), min(n, max(1, round(n * bad_share)))))
    out = []
    for i in range(n):
        old, new = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2))
        out.append(Rollout(f"load-{i:03d}", old, new, f"{rng.getrandbits(48):012x}", i in bad))
    return out


def sample(rollouts: list[Rollout], k: int, seed: int) -> list[Rollout]:
    """K rollouts to replay alone: a bad one first, then healthy ones, chosen by `seed`."""
    rng = random.Random(seed + 1)
    bad = [r for r in rollouts if r.bad]
    good = [r for r in rollouts if not r.bad]
    picked = rng.sample(bad, min(1, len(bad), k)) if k else []
    picked += rng.sample(good, min(k - len(picked), len(good)))
    return picked


@dataclass
class RunResult:
    """One run: a gate, its rollouts, M minutes."""

    label: str
    rollouts: int
    minutes: int
    t0: int
    hooks_s: float = 0.0
    hooks_within_minute: bool = True
    # script -> the minute after whose cron its hook was taken (0: before the first cron)
    hook_minutes: dict[str, int] = field(default_factory=dict)
    hooks_refused: int = 0  # 503 answers (the API budget kept for running rollouts)
    # Hooks the gate dated outside their minute's window (a burst of hooks that ran past the
    # minute's end): their replay would not be hooked in the same minute, so none is replayed.
    hooks_spilled: list[str] = field(default_factory=list)
    paced_minutes: int = 0  # minutes fired on the wall clock while hooks were still to send
    crons: list[dict[str, Any]] = field(default_factory=list)  # one per minute
    lags_ms: dict[str, list[float | None]] = field(default_factory=dict)  # script -> per minute
    lag_source: str = "unknown"  # "gate" (+N ms in the line), "arrival" (log arrival), mixed
    phases: dict[str, list[list[Any]]] = field(default_factory=dict)  # script -> [[phase, step]] per minute 0..M
    splits: dict[str, list[list[float]]] = field(default_factory=dict)  # script -> [[minute, new %]]
    api: dict[str, Any] = field(default_factory=dict)  # the sandbox's rate-limit report
    # Per route class, the sandbox's own time on calls and how many outran their answer time.
    sandbox_timing: dict[str, Any] = field(default_factory=dict)
    gate_log: str = ""

    def changes(self, script: str) -> list[list[Any]]:
        """[minute, phase, step] at minute 0 and each minute the phase or step changed."""
        out: list[list[Any]] = []
        for minute, (phase, step) in enumerate(self.phases.get(script, [])):
            if not out or out[-1][1:] != [phase, step]:
                out.append([minute, phase, step])
        return out

    def decisions(self, script: str) -> dict[str, Any]:
        """What the gate decided for one script: phase changes and split writes by minute."""
        trace = self.phases.get(script) or [[None, None]]
        return {"final": trace[-1][0], "changes": self.changes(script), "splits": self.splits.get(script, [])}


# ---- one run -------------------------------------------------------------------------


# Seconds into the wall minute before seeding and hooks may start. The gate counts the first
# step's dwell from the hook's wall-clock instant and cron fires 1 s into each minute, so a
# hook in a minute's first second moves that rollout's next step a minute earlier than a
# hook later in the minute (seen: a replay 1 minute early at every step). Every hook, loaded
# or alone, lands between this offset and the minute's end.
HOOK_OFFSET_S = 2.0


def start_minute(setup_s: float) -> int:
    """The next wall-clock minute t0, once the wall clock is at least HOOK_OFFSET_S into the
    minute before it and `setup_s` of seeding and hooks still fit in that minute (waits
    otherwise)."""
    into = time.time() % 60
    if 60 - into < setup_s:
        time.sleep(60 - into + HOOK_OFFSET_S)
    elif into < HOOK_OFFSET_S:
        time.sleep(HOOK_OFFSET_S - into)
    return int(math.ceil(time.time() / 60) * 60 * 1000)


def setup_estimate_s(n: int) -> float:
    """Seconds to seed n scripts and send their hooks (measured: ~25 ms a script; a hook
    ~1.9 s with answer times on, HOOK_THREADS at once), with a margin."""
    return 5 + n * (0.03 + 2.0 / HOOK_THREADS)


def seed(world: World, rollouts: list[Rollout], t0: int, rps: float) -> dict[str, Any]:
    """Seeds every script at sandbox time t0 (a fresh sandbox); their releases by script."""
    return {r.script: world.release(r.script, rps=rps, old=HEALTHY, new=BAD if r.bad else HEALTHY, t0=t0,
                                    reset=(i == 0), ids=(r.old, r.new, r.git_sha))
            for i, r in enumerate(rollouts)}


def send_hooks(world: World, rels: dict[str, Any], scripts: list[str]) -> dict[str, float | None]:
    """Sends these scripts' deploy hooks, HOOK_THREADS at once. Per script: None when the
    rollout started (201, or 200 for one already started), else the wall instant (seconds)
    its 503's Retry-After allows the next try; any other answer stops the run."""
    def one(script: str) -> tuple[str, int, dict[str, str], dict]:
        return (script, *world.hook_exchange(rels[script]))

    out: dict[str, float | None] = {}
    with ThreadPoolExecutor(HOOK_THREADS) as pool:
        for script, status, headers, body in pool.map(one, scripts):
            if status in (200, 201):
                out[script] = None
            elif status == 503 and (body.get("error") or {}).get("code") == "api_budget_in_use":
                out[script] = time.time() + float(headers.get("retry-after", "60"))
            else:
                raise RuntimeError(f"deploy hook of {script} refused: {status} {body}")
    return out


def hook_window(t0: int, minute: int) -> tuple[float, float]:
    """The wall instants (ms) a hook sent after minute `minute`'s cron must land between:
    from HOOK_OFFSET_S into that cron's wall minute t0 + minute min to its end (minute 0,
    before any cron: the minute before t0), so a replay's hook and its loaded twin are
    dated within the same minute, after cron's 1 s offset."""
    start = t0 + (minute - 1 if minute == 0 else minute) * MINUTE
    return start + HOOK_OFFSET_S * 1000, start + MINUTE


@dataclass(frozen=True)
class Seen:
    """One rollout as the list API shows it."""

    phase: str
    step: int | None
    active: bool  # the gate still ticks it: not finished, or finished with Slack still to send
    started_at: int | None = None  # ms: the gate's date for the start (the hook's wall clock)


def seen(r: dict[str, Any]) -> Seen:
    """A rollout's view (`RolloutView`) as the run keeps it. A finished rollout is ticked
    until its Slack outbox is empty or its webhook dead (`Controller::finish`)."""
    slack = r.get("slack") or {}
    active = not r["terminal"] or (slack.get("pending", 0) > 0 and not slack.get("dead_webhook"))
    return Seen(r["phase_name"], (r.get("step") or {}).get("number"), active, r.get("started_at"))


def list_phases(gate: Gate, scripts: list[str]) -> dict[str, Seen]:
    """Every load script's phase, step and whether it is still ticked, from `GET /v1/rollouts`
    (paged). The list keeps every active rollout but only the 50 latest finished ones
    (`registry::RECENT_CAP`), so a script it no longer lists is read on its own."""
    out: dict[str, Seen] = {}
    cursor = None
    while True:
        query = "script=load-&limit=200" + (f"&cursor={cursor}" if cursor else "")
        status, body = gate.api("GET", f"/v1/rollouts?{query}")
        if status != 200:
            raise RuntimeError(f"GET /v1/rollouts: {status} {body}")
        for r in body["rollouts"]:
            out[r["script"]] = seen(r)
        cursor = body.get("next_cursor")
        if not cursor:
            break
    for script in scripts:
        if script not in out:
            status, body = gate.api("GET", f"/v1/rollouts/{script}")
            if status == 404:  # its hook has not been taken yet
                out[script] = Seen("not_started", None, False)
                continue
            if status != 200:
                raise RuntimeError(f"GET /v1/rollouts/{script}: {status} {body}")
            out[script] = seen(body)
    return out


def split_writes(sb: SandboxClient, r: Rollout, t0: int) -> list[list[float]]:
    """[minute, new version's %] of every deployment made from t0 on."""
    out = []
    for d in sb.deployments(r.script):
        if d["created_on_ms"] >= t0:
            pct = next((v["percentage"] for v in d["versions"] if v["version_id"] == r.new), 0)
            out.append([(d["created_on_ms"] - t0) / MINUTE, pct])
    return out


def run_rollouts(sb: SandboxClient, base: str, rollouts: list[Rollout], minutes: int, rps: float,
                 label: str, out_dir: Path, progress: Progress,
                 hook_at: dict[str, int] | None = None, api_budget: int | None = None) -> RunResult:
    """One gate (its own --persist-to), these rollouts, `minutes` simulated minutes. With
    `hook_at` (a replay), each script's hook is sent after that minute's cron (0: before
    the first); without it every hook is sent before the first cron and retried on a 503.
    `api_budget` sets the gate's API_CALLS_PER_5_MIN (default: the gate's own, 1,000)."""
    state_dir = tempfile.mkdtemp(prefix=f"load-gate-{label}-")
    extra = {} if api_budget is None else {"API_CALLS_PER_5_MIN": str(api_budget)}
    with Gate(extra_vars=gate_vars(base, **extra), state_dir=state_dir) as gate:
        tail = LogTail(gate.log_path)
        try:
            return drive(World(sb, gate), tail, rollouts, minutes, rps, label, progress, hook_at)
        finally:
            tail.close()
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(gate.log_path, out_dir / f"wrangler-{label}.log")
            gate.stop()
            shutil.rmtree(state_dir, ignore_errors=True)


def drive(world: World, tail: LogTail, rollouts: list[Rollout], minutes: int, rps: float,
          label: str, progress: Progress, hook_at: dict[str, int] | None = None) -> RunResult:
    """Seeds, hooks, then minute by minute: clock, cron, its log lines, every phase; hooks
    still to send go after their minute's cron, with the minutes kept to the wall clock."""
    sb, gate = world.sb, world.gate
    retry = hook_at is None
    due: dict[str, float] = ({r.script: 0.0 for r in rollouts} if retry
                             else {s: float(m) for s, m in hook_at.items()})
    first = [s for s, m in due.items() if m == 0]
    t0 = start_minute(setup_estimate_s(len(first)))
    res = RunResult(label, len(rollouts), minutes, t0, gate_log=str(gate.log_path))
    rels = seed(world, rollouts, t0, rps)
    # Pending hooks: script -> (retry) the wall second its Retry-After allows, or (replay)
    # the minute after whose cron it goes.
    pending: dict[str, float] = {}

    def hooks_after(minute: int, scripts: list[str]) -> None:
        opens, closes = hook_window(t0, minute)
        time.sleep(max(0.0, opens / 1000 - time.time()))
        sent_ms = time.time() * 1000
        answers = send_hooks(world, rels, scripts)
        res.hooks_within_minute &= opens <= sent_ms and time.time() * 1000 < closes
        for script, retry_at in answers.items():
            pending.pop(script, None)
            if retry_at is None:
                res.hook_minutes[script] = minute
            else:
                res.hooks_refused += 1
                pending[script] = retry_at

    def check_dates(listing: dict[str, Seen]) -> None:
        for script, minute in res.hook_minutes.items():
            at = listing[script].started_at
            opens, closes = hook_window(t0, minute)
            if at is not None and not opens - HOOK_OFFSET_S * 1000 <= at < closes \
                    and script not in res.hooks_spilled:
                res.hooks_spilled.append(script)
                res.hooks_within_minute = False

    started = time.monotonic()
    hooks_after(0, first)
    res.hooks_s = time.monotonic() - started
    if not retry:
        pending.update({s: m for s, m in due.items() if m > 0})
    listing = list_phases(gate, [r.script for r in rollouts])
    check_dates(listing)
    res.phases = {r.script: [[listing[r.script].phase, listing[r.script].step]] for r in rollouts}
    res.lags_ms = {r.script: [] for r in rollouts}
    sources: set[str] = set()
    for minute in range(1, minutes + 1):
        active = {s for s, seen in listing.items() if seen.active}
        now = t0 + minute * MINUTE
        if pending:  # keep to the wall clock while hooks are still to be sent
            time.sleep(max(0.0, (now + 1_000) / 1000 - time.time()))
            res.paced_minutes += 1
        sb.clock(now)
        sb.generate()  # the sandbox's traffic for the minute that ended, made before the clock starts
        mark = tail.mark()
        workerd = gate.workerd_pids()
        cpu_before = cpu_ms(workerd)
        sent = time.monotonic()
        gate.fire_cron(now + 1_000, timeout=CRON_TIMEOUT_S)
        wall_ms = (time.monotonic() - sent) * 1000
        gate_cpu_ms = cpu_ms(workerd) - cpu_before
        now_text = gate_time_text(now + 1_000)
        lines = tail.wait_for(mark, lambda ls: logged_all(ls, now_text, sent, active), LOG_WAIT_S)
        log = parse_cron(lines, now_text, sent)
        cron = cron_record(minute, wall_ms, active, log)
        cron["workerd_cpu_ms"] = round(gate_cpu_ms, 1)
        res.crons.append(cron)
        by_script = {t.script: t for t in log.ticks if t.ok}
        for r in rollouts:
            t = by_script.get(r.script)
            lag = None if t is None else (t.gate_ms if t.gate_ms is not None else t.arrival_ms)
            if t is not None:
                sources.add("gate" if t.gate_ms is not None else "arrival")
            res.lags_ms[r.script].append(lag)
        ready = sorted(s for s, at in pending.items()
                       if (at <= minute if not retry else at <= time.time()))
        if ready and time.time() * 1000 < now + MINUTE - 3_000:
            hooks_after(minute, ready)
        listing = list_phases(gate, [r.script for r in rollouts])
        check_dates(listing)
        for r in rollouts:
            res.phases[r.script].append([listing[r.script].phase, listing[r.script].step])
        progress(minute_line(label, minute, minutes, cron, listing, sb.rate_limit())
                 + (f"; {len(pending)} hook(s) to retry" if pending else ""))
    if pending:
        raise RuntimeError(f"{len(pending)} hook(s) never taken in {minutes} minutes, e.g. {min(pending)}")
    res.lag_source = "+".join(sorted(sources)) or "unknown"
    res.api = sb.rate_limit()
    res.sandbox_timing = sb.call_timing()["routes"]
    res.splits = {r.script: split_writes(sb, r, t0) for r in rollouts}
    return res


def cpu_ms(pids: list[int]) -> float:
    """User + system CPU milliseconds the processes have used so far (/proc/PID/stat; a
    process gone counts 0). workerd runs the gate and every Durable Object of the load run:
    its CPU during a cron request, beside the request's wall time, says how much of the
    minute was the gate computing rather than waiting."""
    total = 0
    for pid in pids:
        if (fields := stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def logged_all(lines: list, now_text: str, sent: float, active: set[str]) -> bool:
    """True once the cron run's summary line and a tick line per active rollout are in."""
    log = parse_cron(lines, now_text, sent)
    return log.summary is not None and active <= {t.script for t in log.ticks}


def cron_record(minute: int, wall_ms: float, active: set[str], log: Any) -> dict[str, Any]:
    """One minute's cron run: its wall time and which rollouts ticked how often."""
    counts: dict[str, int] = {}
    for t in log.ticks:
        if t.ok:
            counts[t.script] = counts.get(t.script, 0) + 1
    return {
        "minute": minute, "wall_ms": round(wall_ms, 1), "active": len(active),
        "ticked": sum(1 for s in active if counts.get(s) == 1),
        "missing": sorted(s for s in active if s not in counts),
        "doubled": sorted(s for s, n in counts.items() if n > 1),
        "unexpected": sorted(s for s in counts if s not in active),
        "failed": sorted(t.script for t in log.ticks if not t.ok),
        "summary": log.summary, "gate_ms": log.gate_ms,
    }


def minute_line(label: str, minute: int, minutes: int, cron: dict[str, Any],
                listing: dict[str, Seen], api: dict[str, Any]) -> str:
    """The progress line of one simulated minute."""
    phases: dict[str, int] = {}
    for seen in listing.values():
        phases[seen.phase] = phases.get(seen.phase, 0) + 1
    shown = ", ".join(f"{p} {n}" for p, n in sorted(phases.items()))
    refused = sum(t["refused"] for t in api["tokens"])
    return (f"[{label}] minute {minute}/{minutes}: cron {cron['wall_ms'] / 1000:.1f} s "
            f"(workerd CPU {cron.get('workerd_cpu_ms', 0) / 1000:.1f} s), "
            f"{cron['ticked']}/{cron['active']} ticked; {shown}; API max/5 min "
            f"{api['max_sent_per_window']}" + (f", {refused} refused (429)" if refused else ""))


# ---- a measurement: the loaded run and its alone replays --------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def every_tick_once(run: RunResult) -> bool:
    """Every rollout active at a minute's start ticked exactly once in it, and no other did."""
    return all(not (c["missing"] or c["doubled"] or c["unexpected"] or c["failed"]) for c in run.crons)


def compare(loaded: RunResult, alone: RunResult, script: str) -> dict[str, Any]:
    """The two runs' decisions for one script, and whether they are the same."""
    a, b = loaded.decisions(script), alone.decisions(script)
    return {"identical": a == b, "loaded": a, "alone": b}


def summarize(loaded: RunResult, replays: dict[str, dict[str, Any]], rollouts: list[Rollout]) -> dict[str, Any]:
    """The figures of one N."""
    walls = [c["wall_ms"] for c in loaded.crons]
    lags = [lag for per in loaded.lags_ms.values() for lag in per if lag is not None]
    finals: dict[str, int] = {}
    for r in rollouts:
        final = loaded.decisions(r.script)["final"]
        finals[final] = finals.get(final, 0) + 1
    bad_finals = sorted({loaded.decisions(r.script)["final"] for r in rollouts if r.bad})
    return {
        "rollouts": loaded.rollouts, "minutes": loaded.minutes, "bad": sum(r.bad for r in rollouts),
        "cron_ms_p50": percentile(walls, 50), "cron_ms_max": max(walls, default=None),
        # workerd's CPU during the cron request over its wall time (1.0 = one core busy
        # throughout), and per rollout ticked.
        "workerd_cpu_share_p50": percentile(
            [c["workerd_cpu_ms"] / c["wall_ms"] for c in loaded.crons if c["wall_ms"]], 50),
        "workerd_cpu_ms_per_tick_p50": percentile(
            [c["workerd_cpu_ms"] / c["ticked"] for c in loaded.crons if c["ticked"]], 50),
        "lag_ms_p50": percentile(lags, 50), "lag_ms_p99": percentile(lags, 99),
        "lag_source": loaded.lag_source, "lags_known": len(lags),
        "lags_expected": sum(c["active"] for c in loaded.crons),
        "api_max_per_5_min": loaded.api.get("max_sent_per_window"),
        "api_refused": sum(t["refused"] for t in loaded.api.get("tokens", [])),
        "every_tick_once": every_tick_once(loaded),
        "hooks_s": round(loaded.hooks_s, 1), "hooks_within_minute": loaded.hooks_within_minute,
        "hooks_refused": loaded.hooks_refused, "paced_minutes": loaded.paced_minutes,
        "hooks_spilled": len(loaded.hooks_spilled),
        "started_by_minute": {m: sum(1 for v in loaded.hook_minutes.values() if v == m)
                              for m in sorted(set(loaded.hook_minutes.values()))},
        # Calls the sandbox itself served slower than their drawn answer time: where it, not
        # the answer-time profile, set the pace (0 = the figures are the profile's).
        "sandbox_late": sum(r["late"] for r in loaded.sandbox_timing.values()),
        "sql_served_ms_p99": loaded.sandbox_timing.get("analytics", {}).get("served_ms_p99"),
        "finals": finals, "bad_finals": bad_finals,
        "decisions_identical": all(c["identical"] for c in replays.values()) if replays else None,
        "replayed": sorted(replays),
    }


def measure(n: int, minutes: int, k: int, seed: int, rps: float, bad_share: float, answer_times: str,
            out_dir: Path, progress: Progress = print, api_budget: int | None = None,
            save: Callable[[dict[str, Any]], None] = lambda run: None) -> dict[str, Any]:
    """The loaded run of N rollouts, then K of them alone, each in a fresh gate, one sandbox.
    `save` gets the loaded run as soon as it ends (a long run killed during the replays
    keeps its figures)."""
    rollouts = scenario(n, seed, bad_share)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    args = ["--answer-times", answer_times, "--seed", str(seed)]
    with SandboxProcess(args=args) as sandbox:
        loaded = run_rollouts(sandbox.client, sandbox.base, rollouts, minutes, rps, f"n{n}", out_dir, progress,
                              api_budget=api_budget)
        save({"summary": summarize(loaded, {}, rollouts), "loaded": asdict(loaded), "replays": "not yet"})
        replays = {}
        for r in sample([r for r in rollouts if r.script not in loaded.hooks_spilled], k, seed):
            alone = run_rollouts(sandbox.client, sandbox.base, [r], minutes, rps, f"n{n}-alone-{r.script}",
                                 out_dir, progress, hook_at={r.script: loaded.hook_minutes[r.script]},
                                 api_budget=api_budget)
            replays[r.script] = compare(loaded, alone, r.script)
            progress(f"[n{n}] {r.script} ({'bad' if r.bad else 'healthy'}) alone: "
                     f"{'same decisions' if replays[r.script]['identical'] else 'DIFFERENT decisions'}")
    summary = summarize(loaded, replays, rollouts)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    # The machine's 1-minute load average before and after (2 cores here): other work on it
    # slows workerd and the sandbox, and so the figures.
    summary["loadavg"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return {"summary": summary, "scenario": {"seed": seed, "rps": rps, "bad_share": bad_share,
                                             "answer_times": answer_times,
                                             "bad_scripts": [r.script for r in rollouts if r.bad]},
            "loaded": asdict(loaded), "replays": replays}


TABLE_HEAD = ("| rollouts | cron run p50 / max | workerd CPU / cron run (p50) | tick lag p50 / p99 "
              "| API requests per 5 min (max) | every tick once | decisions identical alone |\n"
              "| --- | --- | --- | --- | --- | --- | --- |")


def table_row(s: dict[str, Any]) -> str:
    """The markdown row of one N."""
    def secs(ms: float | None) -> str:
        return "?" if ms is None else f"{ms / 1000:.1f} s"

    def ms(v: float | None) -> str:
        return "unknown" if v is None else f"{v:,.0f} ms"

    lag = f"{ms(s['lag_ms_p50'])} / {ms(s['lag_ms_p99'])}"
    if s["lag_source"] not in ("gate", "unknown"):
        lag += f" ({s['lag_source']})"
    api = f"{s['api_max_per_5_min']:,}" + (f" ({s['api_refused']:,} refused)" if s["api_refused"] else "")
    same = {True: "yes", False: "no", None: "not replayed"}[s["decisions_identical"]]
    if s["replayed"]:
        same += f" ({len(s['replayed'])})"
    share = s.get("workerd_cpu_share_p50")
    cpu = "?" if share is None else f"{share:.0%}"
    return (f"| {s['rollouts']} | {secs(s['cron_ms_p50'])} / {secs(s['cron_ms_max'])} | {cpu} | {lag} | {api} "
            f"| {'yes' if s['every_tick_once'] else 'no'} | {same} |")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rollouts", type=int, nargs="+", default=[200], help="N, one run per value (default 200)")
    p.add_argument("--minutes", type=int, default=30, help="simulated minutes M (default 30)")
    p.add_argument("--alone", type=int, default=3, help="K rollouts replayed alone, one bad (default 3)")
    p.add_argument("--seed", type=int, default=1, help="scenario, traffic and answer-time seed (default 1)")
    p.add_argument("--rps", type=float, default=20, help="requests per second per script (default 20)")
    p.add_argument("--bad-share", type=float, default=0.05, help="share of bad new versions (default 0.05)")
    p.add_argument("--answer-times", choices=["real", "off"], default="real",
                   help="the sandbox's answer times (default real)")
    p.add_argument("--api-budget", type=int, default=None,
                   help="the gate's API_CALLS_PER_5_MIN (default: the gate's default, 1000)")
    p.add_argument("--json", type=Path, default=ROOT / "artifacts" / "load.json", help="output file")
    args = p.parse_args(argv)
    out_dir = args.json.parent
    command = "python scripts/bench/load.py " + " ".join(sys.argv[1:] if argv is None else argv)
    runs: list[dict[str, Any]] = []
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(partial: dict[str, Any] | None = None) -> None:
        done = runs + ([partial] if partial else [])
        args.json.write_text(json.dumps({"command": command, "commit": git_commit(), "runs": done}, indent=1))

    for n in args.rollouts:
        runs.append(measure(n, args.minutes, args.alone, args.seed, args.rps, args.bad_share,
                            args.answer_times, out_dir, lambda line: print(line, flush=True),
                            api_budget=args.api_budget, save=write))
        write()
    print(f"\n{command}  (commit {git_commit()}; JSON: {args.json})\n")
    print(TABLE_HEAD)
    for run in runs:
        print(table_row(run["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The traffic model: scenarios (request rate, per-version error rate and latency,
sampling, queue behaviour) and the generator that turns one minute of a script's life
into Analytics Engine data points.

Pure and deterministic: a minute's points depend only on the scenario seed, the script
name, the minute, the scenario in force and the live split(s) during that minute, never
on when the minute is generated. No I/O here; `analytics.py` stores the rows.

Per minute and script:
  * HTTP requests arrive as a Poisson process at `rps`; with `sample_interval = k` one
    stored row stands for k requests (rows arrive at rps/k, each with
    `_sample_interval = k`), as Analytics Engine sampling does.
  * Each arrival goes to a version by the deployment live at that instant (percentages).
  * Status: 5xx with the version's `error_rate` (500/502/503), 404 with
    `client_error_rate`, else 200. Latency: lognormal from median and p95.
  * Queue (consumer scripts): `points_per_min` points with the queue depth and retries.
    Depth follows `profile` (step function over minutes since traffic start) or grows by
    `depth_per_min` plus each version's `queue_depth_per_min` times its share.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

MINUTE_MS = 60_000
Z95 = 1.6448536269514722  # standard normal 95th percentile
HEALTHZ_MODES = ("ok", "fail", "timeout")
ERROR_STATUSES = (500.0, 502.0, 503.0)
MAX_ROWS_PER_MINUTE = 200_000  # refuse scenarios that would swamp the sandbox

# One stored data point: dataset, timestamp (s), _sample_interval, index1, blob1, blob2,
# double1 (status), double2 (latency ms), double3 (queue depth), double4 (retries).
Row = tuple[str, int, int, str, str, str, float, float, float, float]


class ScenarioError(ValueError):
    """A scenario document that does not make sense."""


def _num(d: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    """A number field within [lo, hi], or the default when absent."""
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise ScenarioError(f"{key} must be a number in [{lo}, {hi}], got {v!r}")
    return float(v)


@dataclass(frozen=True)
class VersionProfile:
    """How one version behaves."""

    error_rate: float = 0.001
    client_error_rate: float = 0.0
    latency_median_ms: float = 40.0
    latency_p95_ms: float = 120.0
    healthz: str = "ok"
    queue_depth_per_min: float = 0.0
    queue_retries_per_min: float = 0.0

    @staticmethod
    def from_json(d: Any, where: str) -> "VersionProfile":
        """Validates a version profile document."""
        if not isinstance(d, dict):
            raise ScenarioError(f"{where} must be an object")
        unknown = set(d) - set(VersionProfile.__dataclass_fields__)
        if unknown:
            raise ScenarioError(f"{where}: unknown fields {sorted(unknown)}")
        median = _num(d, "latency_median_ms", 40.0, 0.001, 1e6)
        p = VersionProfile(
            error_rate=_num(d, "error_rate", 0.001, 0, 1),
            client_error_rate=_num(d, "client_error_rate", 0.0, 0, 1),
            latency_median_ms=median,
            latency_p95_ms=_num(d, "latency_p95_ms", 3 * median, 0.001, 1e6),
            healthz=d.get("healthz", "ok"),
            queue_depth_per_min=_num(d, "queue_depth_per_min", 0.0, -1e9, 1e9),
            queue_retries_per_min=_num(d, "queue_retries_per_min", 0.0, 0, 1e9),
        )
        if p.healthz not in HEALTHZ_MODES:
            raise ScenarioError(f"{where}.healthz must be one of {HEALTHZ_MODES}")
        if p.latency_p95_ms < p.latency_median_ms:
            raise ScenarioError(f"{where}: latency_p95_ms must be >= latency_median_ms")
        if p.error_rate + p.client_error_rate > 1:
            raise ScenarioError(f"{where}: error_rate + client_error_rate must be <= 1")
        return p

    @property
    def mu(self) -> float:
        """Lognormal location: ln(median)."""
        return math.log(self.latency_median_ms)

    @property
    def sigma(self) -> float:
        """Lognormal scale from p95: (ln p95 - ln median) / z95."""
        return (math.log(self.latency_p95_ms) - self.mu) / Z95


@dataclass(frozen=True)
class QueueProfile:
    """A queue a consumer script reports on."""

    name: str
    depth: float = 0.0
    depth_per_min: float = 0.0
    profile: tuple[tuple[int, float], ...] = ()
    retries_per_min: float = 0.0
    points_per_min: int = 2

    @staticmethod
    def from_json(d: Any) -> "QueueProfile":
        """Validates a queue document."""
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
            raise ScenarioError("queue must be an object with a non-empty name")
        unknown = set(d) - set(QueueProfile.__dataclass_fields__)
        if unknown:
            raise ScenarioError(f"queue: unknown fields {sorted(unknown)}")
        prof = d.get("profile", [])
        if not isinstance(prof, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) for x in p)
            for p in prof
        ):
            raise ScenarioError("queue.profile must be a list of [minute_offset, depth]")
        points = d.get("points_per_min", 2)
        if not isinstance(points, int) or not 1 <= points <= 60:
            raise ScenarioError("queue.points_per_min must be an integer in [1, 60]")
        return QueueProfile(
            name=d["name"],
            depth=_num(d, "depth", 0.0, 0, 1e12),
            depth_per_min=_num(d, "depth_per_min", 0.0, -1e12, 1e12),
            profile=tuple(sorted((int(m), float(v)) for m, v in prof)),
            retries_per_min=_num(d, "retries_per_min", 0.0, 0, 1e9),
            points_per_min=points,
        )


SCENARIO_FIELDS = {"rps", "versions", "default_version", "sample_interval", "seed", "epoch_ms",
                   "dataset", "queue", "healthz_timeout_s"}


@dataclass(frozen=True)
class Scenario:
    """A script's traffic scenario. `doc` is the validated JSON it came from."""

    rps: float = 10.0
    versions: dict[str, VersionProfile] = field(default_factory=dict)
    default_version: VersionProfile = VersionProfile()
    sample_interval: int = 1
    seed: int = 0
    epoch_ms: int = 0
    dataset: str = "mauntic_logs"
    queue: QueueProfile | None = None
    healthz_timeout_s: float = 30.0
    doc: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_json(d: Any) -> "Scenario":
        """Validates a scenario document (see README for the fields)."""
        if not isinstance(d, dict):
            raise ScenarioError("scenario must be a JSON object")
        unknown = set(d) - SCENARIO_FIELDS
        if unknown:
            raise ScenarioError(f"unknown scenario fields {sorted(unknown)}")
        versions = d.get("versions", {})
        if not isinstance(versions, dict):
            raise ScenarioError("versions must be an object keyed by version id")
        si = d.get("sample_interval", 1)
        if isinstance(si, bool) or not isinstance(si, int) or not 1 <= si <= 1_000_000:
            raise ScenarioError("sample_interval must be an integer >= 1")
        seed = d.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ScenarioError("seed must be an integer")
        epoch_ms = d.get("epoch_ms", 0)
        if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int):
            raise ScenarioError("epoch_ms must be an integer (ms)")
        dataset = d.get("dataset", "mauntic_logs")
        if not isinstance(dataset, str) or not dataset.replace("_", "a").isalnum():
            raise ScenarioError("dataset must match [A-Za-z0-9_]+")
        s = Scenario(
            rps=_num(d, "rps", 10.0, 0, 100_000),
            versions={v: VersionProfile.from_json(p, f"versions[{v}]") for v, p in versions.items()},
            default_version=VersionProfile.from_json(d.get("default_version", {}), "default_version"),
            sample_interval=si,
            seed=seed,
            epoch_ms=epoch_ms,
            dataset=dataset,
            queue=QueueProfile.from_json(d["queue"]) if d.get("queue") is not None else None,
            healthz_timeout_s=_num(d, "healthz_timeout_s", 30.0, 0, 3600),
            doc=d,
        )
        if s.rps * 60 / s.sample_interval > MAX_ROWS_PER_MINUTE:
            raise ScenarioError(f"rps / sample_interval too high: over {MAX_ROWS_PER_MINUTE} rows per minute")
        return s

    def profile(self, version_id: str) -> VersionProfile:
        """The behaviour of `version_id` (the default profile when not listed)."""
        return self.versions.get(version_id, self.default_version)


def merge_docs(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merges `patch` into a copy of `base` (objects merge, other values replace;
    `null` removes a key)."""
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_docs(out[k], v)
        else:
            out[k] = v
    return out


@dataclass(frozen=True)
class Split:
    """A deployment's split as it applies to traffic from `at_ms` on."""

    at_ms: int
    versions: tuple[tuple[str, float], ...]

    @cached_property
    def table(self) -> tuple[tuple[float, str], ...]:
        """Cumulative thresholds in [0, 1] per version, for `pick`."""
        acc, out = 0.0, []
        for vid, pct in self.versions:
            acc += pct / 100.0
            out.append((acc, vid))
        return tuple(out)

    def pick(self, u: float) -> str:
        """The version a uniform draw `u` in [0, 1) lands on, by percentage."""
        for threshold, vid in self.table:
            if u < threshold:
                return vid
        return self.versions[-1][0]

    def share(self, version_id: str) -> float:
        """The fraction of traffic `version_id` gets."""
        return sum(p for v, p in self.versions if v == version_id) / 100.0


def split_at(splits: list[Split], ms: float) -> Split | None:
    """The split live at `ms` (the newest with `at_ms <= ms`), None before the first."""
    live = None
    for s in splits:
        if s.at_ms <= ms:
            live = s
        else:
            break
    return live


def minute_rng(seed: int, script: str, minute_ms: int) -> random.Random:
    """The RNG of one minute of one script: independent of generation order."""
    return random.Random(f"{seed}|{script}|{minute_ms}")


def poisson(r: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(r.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def http_rows(script: str, minute_ms: int, sc: Scenario, splits: list[Split]) -> list[Row]:
    """One minute of sampled HTTP data points for `script`."""
    r = minute_rng(sc.seed, script, minute_ms - sc.epoch_ms)
    rate = sc.rps / sc.sample_interval  # stored rows per second
    if rate <= 0:
        return []
    k, dataset = sc.sample_interval, sc.dataset
    rows: list[Row] = []
    gauss, rand, log, exp = r.gauss, r.random, math.log, math.exp
    live = split_at(splits, minute_ms)
    entries = version_entries(sc, live)
    changes = [s for s in splits if minute_ms < s.at_ms < minute_ms + MINUTE_MS]
    t = -log(1.0 - rand()) / rate  # exponential gaps: a Poisson process
    while t < 60.0:
        at = minute_ms + t * 1000.0
        if changes and changes[0].at_ms <= at:
            while changes and changes[0].at_ms <= at:
                live = changes.pop(0)
            entries = version_entries(sc, live)
        if entries:
            u = rand()
            for e in entries:  # e = (threshold, version, error_rate, error+client rate, mu, sigma)
                if u < e[0]:
                    break
            u = rand()
            status = ERROR_STATUSES[int(rand() * 3)] if u < e[2] else (404.0 if u < e[3] else 200.0)
            rows.append((dataset, int(at // 1000), k, e[1], "http", "", status,
                         round(exp(e[4] + e[5] * gauss()), 3), 0.0, 0.0))
        t -= log(1.0 - rand()) / rate
    return rows


def version_entries(sc: Scenario, live: Split | None) -> list[tuple[float, str, float, float, float, float]]:
    """Per version of the split: cumulative share threshold and its behaviour, for `http_rows`."""
    if live is None:
        return []
    out = []
    for threshold, vid in live.table:
        p = sc.profile(vid)
        out.append((threshold, vid, p.error_rate, p.error_rate + p.client_error_rate, p.mu, p.sigma))
    return out


def queue_depth_after(sc: Scenario, minute_ms: int, traffic_start_ms: int, prev: float | None,
                      live: Split | None) -> float:
    """The queue depth at the end of the minute starting `minute_ms`."""
    q = sc.queue
    assert q is not None
    if q.profile:
        offset = (minute_ms - traffic_start_ms) // MINUTE_MS
        depth = q.profile[0][1]
        for m, v in q.profile:
            if m <= offset:
                depth = v
        return depth
    start = q.depth if prev is None else prev
    growth = q.depth_per_min
    if live is not None:
        growth += sum(sc.profile(v).queue_depth_per_min * p / 100.0 for v, p in live.versions)
    return max(0.0, start + growth)


def queue_rows(script: str, minute_ms: int, sc: Scenario, splits: list[Split],
               traffic_start_ms: int, prev_depth: float | None) -> tuple[list[Row], float | None]:
    """One minute of queue metric points and the depth at its end."""
    q = sc.queue
    if q is None:
        return [], prev_depth
    r = random.Random(f"{sc.seed}|{script}|{minute_ms}|queue")
    live = split_at(splits, minute_ms)
    end_depth = queue_depth_after(sc, minute_ms, traffic_start_ms, prev_depth, live)
    begin = end_depth if prev_depth is None or q.profile else prev_depth
    rows: list[Row] = []
    for j in range(q.points_per_min):
        frac = (j + 1) / q.points_per_min
        at = minute_ms + int(frac * 60_000) - 1
        split = split_at(splits, at)
        if split is None:
            continue
        vid = split.pick(r.random())
        retries_rate = q.retries_per_min + sum(
            sc.profile(v).queue_retries_per_min * p / 100.0 for v, p in split.versions)
        depth = float(round(begin + (end_depth - begin) * frac))
        retries = float(poisson(r, retries_rate / q.points_per_min))
        rows.append((sc.dataset, at // 1000, 1, vid, "queue.metric", q.name, 0.0, 0.0, depth, retries))
    return rows, end_depth


def minute_rows(script: str, minute_ms: int, sc: Scenario, splits: list[Split],
                traffic_start_ms: int, prev_depth: float | None) -> tuple[list[Row], float | None]:
    """All data points of one minute of one script, and the queue depth carried on."""
    rows = http_rows(script, minute_ms, sc, splits)
    qrows, depth = queue_rows(script, minute_ms, sc, splits, traffic_start_ms, prev_depth)
    return rows + qrows, depth


def expected_requests(sc: Scenario, seconds: float) -> float:
    """The mean request count (sum of `_sample_interval`) over `seconds` at `sc.rps`."""
    return sc.rps * seconds

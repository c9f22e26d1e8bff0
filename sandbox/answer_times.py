"""Answer times: an opt-in, seeded latency profile, so the sandbox answers as slowly as the
real services do (Analytics Engine SQL ~300 ms, the Cloudflare API ~150 ms, a target's
`/healthz` ~100 ms, Slack and the asset host a few tens of ms). Off by default, so tests
that do not ask for it keep their speed.

Each answer takes `median_ms × U(1 − jitter, 1 + jitter)` of WALL time (uniform, default
jitter ±30%, so the mean is the named figure and no answer is slower than 1.3×). The draw
is a hash of (seed, route class, method, path, query, body, sandbox clock): the same
request at the same sandbox minute waits the same time on every run, whichever thread
serves it first. The wait is measured from the moment the request was read: the server
(`server.py`) serves it, then sleeps what is left, OUTSIDE every lock, so answers overlap
as they do on the real services. The sandbox's own work (chdb, a `slow` fault) counts
toward the figure; only when it takes longer than the draw does an answer take longer.

These figures are the sandbox's estimates, not measurements of Cloudflare: the real times
vary with region, load and query size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# Median answer time in ms per route class (a dotted prefix matches, `cf` = every
# Cloudflare API class but the SQL API, which is `analytics`).
PROFILES: dict[str, dict[str, float]] = {
    "off": {},
    "real": {
        "analytics": 300.0,  # Analytics Engine SQL: a ClickHouse query over the network
        "cf": 150.0,  # versions, deployments, secrets, and the routes only wrangler calls
        "targets.healthz": 100.0,  # a target Worker's /healthz through Cloudflare's edge
        "slack": 50.0,  # an incoming webhook post
        "assets": 30.0,  # a CSS file from the asset host's cache
    },
}
DEFAULT_JITTER = 0.30


class AnswerTimesError(ValueError):
    """An answer-times document that does not make sense."""


@dataclass(frozen=True)
class AnswerTimes:
    """One latency profile: median ms per route class, the jitter, the seed."""

    profile: str = "off"
    medians_ms: dict[str, float] = field(default_factory=dict)
    jitter: float = DEFAULT_JITTER
    seed: int = 0

    def median_ms(self, route: str) -> float | None:
        """The median for `route` (its longest matching dotted prefix), or None."""
        best: tuple[int, float] | None = None
        for prefix, ms in self.medians_ms.items():
            if route == prefix or route.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), ms)
        return None if best is None else best[1]

    def delay_s(self, route: str, method: str, path: str, query: str, body: bytes, clock_ms: int) -> float:
        """Seconds this answer should take in all (0 when the profile has no figure)."""
        median = self.median_ms(route)
        if not median:
            return 0.0
        key = f"{self.seed}|{route}|{method}|{path}|{query}|{clock_ms}|".encode() + body
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        return median * (1 - self.jitter + 2 * self.jitter * u) / 1000

    def to_json(self) -> dict[str, Any]:
        """As the control API shows it."""
        return {"profile": self.profile, "medians_ms": dict(self.medians_ms), "jitter": self.jitter,
                "seed": self.seed, "distribution": "uniform"}


def parse_answer_times(doc: Any, seed: int = 0) -> AnswerTimes:
    """`{"profile": "off"|"real", "medians_ms"?: {route: ms}, "jitter"?: 0..1, "seed"?}`:
    a named profile, with `medians_ms` overriding (or adding) route classes."""
    if not isinstance(doc, dict):
        raise AnswerTimesError("answer times must be a JSON object")
    unknown = set(doc) - {"profile", "medians_ms", "jitter", "seed"}
    if unknown:
        raise AnswerTimesError(f"unknown answer-times fields {sorted(unknown)}")
    profile = doc.get("profile", "real")
    if profile not in PROFILES:
        raise AnswerTimesError(f"profile must be one of {sorted(PROFILES)}")
    medians = dict(PROFILES[profile])
    extra = doc.get("medians_ms", {})
    if not isinstance(extra, dict):
        raise AnswerTimesError("medians_ms must be an object of route class -> ms")
    for route, ms in extra.items():
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not 0 <= ms <= 60_000:
            raise AnswerTimesError(f"medians_ms[{route!r}] must be a number of ms in [0, 60000]")
        medians[str(route)] = float(ms)
    jitter = doc.get("jitter", DEFAULT_JITTER)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
        raise AnswerTimesError("jitter must be a number in [0, 1]")
    seed_doc = doc.get("seed", seed)
    if isinstance(seed_doc, bool) or not isinstance(seed_doc, int):
        raise AnswerTimesError("seed must be an integer")
    return AnswerTimes(profile, medians, float(jitter), seed_doc)

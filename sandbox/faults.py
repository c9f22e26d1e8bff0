"""Switchable faults: a registry of rules, each matching a route class (and optionally
one script), active for the next `count` calls, inside a sandbox-clock window, or
until cleared.

Route classes (a rule's `route` matches a class or a dotted prefix of one: `cf`
matches every Cloudflare API class):
  cf.versions, cf.deployments.read, cf.deployments.write, analytics, slack,
  targets.healthz, assets
Kinds:
  status     answer with `status` (429 carries `retry-after: retry_after`) and a body
             the route makes plausible (or `body`)
  slow       sleep `seconds` before answering normally
  hang       sleep `seconds` (default 30), then drop the connection without an answer
  late_data  (analytics) the newest `minutes` minutes of points are not yet visible
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .httpio import Response

ROUTES = ("cf.versions", "cf.deployments.read", "cf.deployments.write", "analytics", "slack",
          "targets.healthz", "assets")
KINDS = ("status", "slow", "hang", "late_data")


class FaultError(ValueError):
    """A fault document that does not make sense."""


@dataclass
class Fault:
    """One fault rule."""

    id: int
    route: str
    kind: str
    status: int | None = None
    retry_after: int | None = None
    seconds: float | None = None
    minutes: int | None = None
    body: str | None = None
    count: int | None = None  # remaining hits; None = until cleared
    from_ms: int | None = None  # sandbox-clock window, inclusive
    until_ms: int | None = None  # exclusive
    script: str | None = None
    hits: int = 0

    def matches(self, route: str, kind: str, now_ms: int, script: str | None) -> bool:
        """True when this rule applies to a call of `route` at `now_ms`."""
        if self.kind != kind or not (route == self.route or route.startswith(self.route + ".")):
            return False
        if self.script is not None and self.script != script:
            return False
        if self.from_ms is not None and now_ms < self.from_ms:
            return False
        if self.until_ms is not None and now_ms >= self.until_ms:
            return False
        return self.count is None or self.count > 0

    def to_json(self) -> dict[str, Any]:
        """The rule as the control API shows it."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def _opt_int(d: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    """An optional integer field within [lo, hi]."""
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise FaultError(f"{key} must be an integer in [{lo}, {hi}]")
    return v


def parse_fault(d: Any, fault_id: int) -> Fault:
    """Validates a fault document from the control API."""
    if not isinstance(d, dict):
        raise FaultError("fault must be a JSON object")
    unknown = set(d) - {"route", "kind", "status", "retry_after", "seconds", "minutes", "body",
                        "count", "from_ms", "until_ms", "script"}
    if unknown:
        raise FaultError(f"unknown fault fields {sorted(unknown)}")
    route, kind = d.get("route"), d.get("kind", "status")
    if not isinstance(route, str) or not any(r == route or r.startswith(route + ".") for r in ROUTES):
        raise FaultError(f"route must be one of {ROUTES} or a dotted prefix (e.g. 'cf')")
    if kind not in KINDS:
        raise FaultError(f"kind must be one of {KINDS}")
    seconds = d.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not 0 <= seconds <= 3600):
        raise FaultError("seconds must be a number in [0, 3600]")
    body = d.get("body")
    if body is not None and not isinstance(body, str):
        raise FaultError("body must be a string")
    script = d.get("script")
    if script is not None and not isinstance(script, str):
        raise FaultError("script must be a string")
    f = Fault(
        id=fault_id, route=route, kind=kind,
        status=_opt_int(d, "status", 100, 599),
        retry_after=_opt_int(d, "retry_after", 0, 86400),
        seconds=float(seconds) if seconds is not None else None,
        minutes=_opt_int(d, "minutes", 0, 100_000),
        body=body,
        count=_opt_int(d, "count", 1, 1_000_000),
        from_ms=_opt_int(d, "from_ms", 0, 2**62),
        until_ms=_opt_int(d, "until_ms", 0, 2**62),
        script=script,
    )
    if kind == "status" and f.status is None:
        raise FaultError("a status fault needs `status` (e.g. 429, 500, 503)")
    if kind == "slow" and f.seconds is None:
        raise FaultError("a slow fault needs `seconds`")
    if kind == "late_data" and f.minutes is None:
        raise FaultError("a late_data fault needs `minutes`")
    if kind == "hang" and f.seconds is None:
        f.seconds = 30.0
    if f.status == 429 and f.retry_after is None:
        f.retry_after = 1
    return f


class Faults:
    """The registry; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._next_id = 1

    def add(self, doc: Any) -> Fault:
        """Adds a rule from its control-API document."""
        with self._lock:
            f = parse_fault(doc, self._next_id)
            self._next_id += 1
            self._rules.append(f)
            return f

    def take(self, route: str, kind: str, now_ms: int, script: str | None = None) -> Fault | None:
        """The first rule of `kind` matching this call, with one hit consumed."""
        with self._lock:
            for f in self._rules:
                if f.matches(route, kind, now_ms, script):
                    f.hits += 1
                    if f.count is not None:
                        f.count -= 1
                    return f
            return None

    def clear(self, fault_id: int | None = None) -> int:
        """Removes one rule (or all); returns how many went."""
        with self._lock:
            before = len(self._rules)
            self._rules = [] if fault_id is None else [f for f in self._rules if f.id != fault_id]
            return before - len(self._rules)

    def list(self) -> list[dict[str, Any]]:
        """All rules, exhausted ones included (count 0), as JSON."""
        with self._lock:
            return [f.to_json() for f in self._rules]


def inject(faults: Faults, route: str, now_ms: int, script: str | None,
           answer: Callable[[Fault], Response]) -> Response | None:
    """Applies this call's faults in order: `slow` (sleep, then go on), `hang` (sleep, then
    drop the connection), `status` (answer built by `answer`). None = serve normally."""
    slow = faults.take(route, "slow", now_ms, script)
    if slow is not None:
        time.sleep(slow.seconds or 0)
    hang = faults.take(route, "hang", now_ms, script)
    if hang is not None:
        time.sleep(hang.seconds or 0)
        return Response(0, route=route, drop=True, note=f"fault {hang.id}: hang")
    f = faults.take(route, "status", now_ms, script)
    if f is None:
        return None
    resp = answer(f)
    resp.route, resp.note = route, f"fault {f.id}: {f.status}"
    return resp

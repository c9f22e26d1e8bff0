"""Switchable faults: a registry of rules, each matching a route class (and optionally
one script), active for the next `count` calls, inside a sandbox-clock window, or
until cleared.

Route classes (a rule's `route` matches a class or a dotted prefix of one: `cf`
matches every Cloudflare API class):
  cf.versions, cf.deployments.read, cf.deployments.write, cf.secrets, analytics, slack,
  targets.healthz, assets
Kinds:
  status     answer with `status` (429 carries `retry-after: retry_after`) and a body
             the route makes plausible (or `body`)
  slow       sleep `seconds` before answering normally
  hang       sleep `seconds` (default 30), then drop the connection without an answer
  late_data  (analytics) the newest `minutes` minutes of points are not yet visible
  hold       block one matching request (`count`, default 1) at `stage` "before" (not yet
             applied) or "after" (applied, answer not yet sent), optionally only for one
             `method` or a request body that `contains` a string, until the harness releases it or `seconds` (default 120) pass;
             then `then`: "answer" (go on normally) or "drop" (close the connection
             without an answer; before = never applied, after = applied, answer lost).
             The rule's `held` counts requests blocked right now: a crash test polls it,
             kills the caller, then releases. Served by the HTTP server (`server.py`),
             which knows both sides of the apply.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .httpio import Response

ROUTES = ("cf.versions", "cf.deployments.read", "cf.deployments.write", "cf.secrets", "analytics",
          "slack", "targets.healthz", "assets", "access")
KINDS = ("status", "slow", "hang", "late_data", "hold")
HOLD_STAGES = ("before", "after")
HOLD_THEN = ("answer", "drop")
HOLD_DEFAULT_SECONDS = 120.0
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


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
    stage: str | None = None  # hold: "before" | "after"
    method: str | None = None  # hold: only this HTTP method
    then: str | None = None  # hold: "answer" | "drop"
    contains: str | None = None  # hold: only requests whose body contains this
    hits: int = 0
    held: int | None = None  # hold: requests blocked right now
    released: bool | None = None  # hold: released by the harness (matches nothing more)

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
                        "count", "from_ms", "until_ms", "script", "stage", "method", "then", "contains"}
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
    hold_fields = [k for k in ("stage", "method", "then", "contains") if d.get(k) is not None]
    if kind != "hold" and hold_fields:
        raise FaultError(f"{hold_fields} only apply to a hold fault")
    if kind == "hold":
        parse_hold(d, f)
    if f.status == 429 and f.retry_after is None:
        f.retry_after = 1
    return f


def parse_hold(d: dict[str, Any], f: Fault) -> None:
    """The hold-only fields: `stage` (required), `method`, `contains`, `then` (default "answer");
    `count` defaults to 1 and `seconds` (the longest wait) to 120."""
    stage, method, then = d.get("stage"), d.get("method"), d.get("then", "answer")
    if stage not in HOLD_STAGES:
        raise FaultError(f"a hold fault needs `stage`, one of {HOLD_STAGES}")
    if method is not None and (not isinstance(method, str) or method.upper() not in METHODS):
        raise FaultError(f"method must be one of {METHODS}")
    if then not in HOLD_THEN:
        raise FaultError(f"then must be one of {HOLD_THEN}")
    contains = d.get("contains")
    if contains is not None and (not isinstance(contains, str) or not contains):
        raise FaultError("contains must be a non-empty string")
    f.contains = contains
    if f.status is not None or f.retry_after is not None or f.body is not None or f.minutes is not None:
        raise FaultError("a hold fault takes no status, retry_after, body or minutes")
    f.stage, f.method, f.then = stage, method.upper() if method else None, then
    f.count = 1 if d.get("count") is None else f.count
    f.seconds = HOLD_DEFAULT_SECONDS if f.seconds is None else f.seconds
    f.held, f.released = 0, False


class Faults:
    """The registry; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._next_id = 1
        self._gates: dict[int, threading.Event] = {}  # hold rule id -> set when released

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
        """Removes one rule (or all); returns how many went. A removed hold lets the
        requests it blocks go on (as its `then` says)."""
        with self._lock:
            before = len(self._rules)
            gone = [f for f in self._rules if fault_id is None or f.id == fault_id]
            self._rules = [f for f in self._rules if f not in gone]
            for f in gone:
                gate = self._gates.pop(f.id, None)
                if gate is not None:
                    gate.set()
            return before - len(self._rules)

    def hold(self, route: str, stage: str, method: str, now_ms: int,
             script: str | None = None, body: bytes = b"") -> Fault | None:
        """Blocks this call while a matching hold rule is unreleased (at most its
        `seconds`); returns the rule (the caller applies its `then`), or None."""
        with self._lock:
            rule = next((f for f in self._rules
                         if f.stage == stage and not f.released
                         and (f.method is None or f.method == method)
                         and (f.contains is None or f.contains.encode() in body)
                         and f.matches(route, "hold", now_ms, script)), None)
            if rule is None:
                return None
            rule.hits += 1
            if rule.count is not None:
                rule.count -= 1
            rule.held = (rule.held or 0) + 1
            gate = self._gates.setdefault(rule.id, threading.Event())
        try:
            gate.wait(rule.seconds)
        finally:
            with self._lock:
                rule.held = (rule.held or 1) - 1
        return rule

    def release(self, fault_id: int) -> Fault | None:
        """Lets the requests a hold rule blocks go on; the rule matches nothing more.
        None when there is no such hold rule."""
        with self._lock:
            rule = next((f for f in self._rules if f.id == fault_id and f.kind == "hold"), None)
            if rule is None:
                return None
            rule.released = True
            self._gates.setdefault(rule.id, threading.Event()).set()
            return rule

    def get(self, fault_id: int) -> dict[str, Any] | None:
        """One rule as JSON, or None."""
        with self._lock:
            return next((f.to_json() for f in self._rules if f.id == fault_id), None)

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

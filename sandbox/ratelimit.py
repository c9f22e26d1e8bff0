"""The Cloudflare API's global rate limit, as the platform states it (platform reference
§9; developers.cloudflare.com/fundamentals/api/reference/limits/): 1,200 requests per
5 minutes per token, across the whole v4 API (the Analytics Engine SQL endpoint and the
routes only wrangler calls count too). Over the limit the API answers HTTP 429, code 971
with `retry-after`, and blocks EVERY call for the next 5 minutes.

Counted on the SANDBOX clock, not the wall clock: the gate's "now" is the cron event's
scheduled time, and tests move the sandbox clock (and that time) much faster than wall
time, so a test's "5 minutes" are 5 sandbox minutes. Every request within one cron run
carries the same clock, as the gate's own budget sees them.

The sandbox's reading, where the source says nothing:
- The window slides: a request at clock `t` is refused when `limit` requests were served
  in `(t - window, t]`. A block lasts `window` from the refused request; a request the
  limit refused does not count toward the next window (it was never served).
- Only a known token is counted (an unknown one is refused 401 before any count). Each
  token has its own limit; the gate uses one token for the API and the SQL endpoint.
- The 200 requests/s per IP limit is not modelled (the sandbox clock stands still
  within a cron run, so a per-second rate has no meaning on it).
- No `Ratelimit`/`Ratelimit-Policy` headers on ordinary answers (no source shows when the
  v4 API sends them); `retry-after` on the 429 only.

It also counts requests per token and sandbox minute, so a load run can report the most
requests any 5 sandbox minutes saw (`GET /_sandbox/ratelimit`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

LIMIT = 1_200
WINDOW_MS = 5 * 60_000
MINUTE_MS = 60_000


class RateLimitError(ValueError):
    """A rate-limit settings document that does not make sense."""


@dataclass
class TokenUse:
    """What one token sent: served requests by clock (for the window), sent and refused
    by sandbox minute (for the report), and the block, if any."""

    label: str
    served_at: dict[int, int] = field(default_factory=dict)  # clock ms -> requests served
    sent_per_minute: dict[int, int] = field(default_factory=dict)
    refused_per_minute: dict[int, int] = field(default_factory=dict)
    blocked_until_ms: int | None = None
    blocks: int = 0

    def served_in_window(self, now_ms: int, window_ms: int) -> int:
        """Requests served in `(now - window, now]`; forgets older ones."""
        for at in [t for t in self.served_at if t <= now_ms - window_ms]:
            del self.served_at[at]
        return sum(n for t, n in self.served_at.items() if t <= now_ms)

    def report(self, window_ms: int) -> dict[str, Any]:
        """Totals, per-minute counts and the most sent in any `window_ms` of whole minutes."""
        minutes = max(1, window_ms // MINUTE_MS)
        starts = sorted(self.sent_per_minute)
        best, best_at = 0, None
        for start in starts:
            n = sum(self.sent_per_minute.get(start + i * MINUTE_MS, 0) for i in range(minutes))
            if n > best:
                best, best_at = n, start
        return {
            "label": self.label,
            "sent": sum(self.sent_per_minute.values()),
            "refused": sum(self.refused_per_minute.values()),
            "max_sent_per_window": best, "max_window_start_ms": best_at,
            "blocked_until_ms": self.blocked_until_ms, "blocks": self.blocks,
            "per_minute": [{"minute_ms": m, "sent": self.sent_per_minute[m],
                            "refused": self.refused_per_minute.get(m, 0)} for m in starts],
        }


class RateLimit:
    """The limiter and its counts; thread-safe. Settings survive a sandbox reset, counts
    do not."""

    def __init__(self, limit: int = LIMIT, window_ms: int = WINDOW_MS, enabled: bool = True):
        self._lock = threading.Lock()
        self.limit, self.window_ms, self.enabled = limit, window_ms, enabled
        self._tokens: dict[str, TokenUse] = {}

    def admit(self, token: str, label: str, now_ms: int) -> int | None:
        """Counts one request of `token` at sandbox time `now_ms`. None = serve it; else the
        `retry-after` seconds of the 429 it gets."""
        with self._lock:
            use = self._tokens.setdefault(token, TokenUse(label))
            minute = now_ms - now_ms % MINUTE_MS
            use.sent_per_minute[minute] = use.sent_per_minute.get(minute, 0) + 1
            if not self.enabled:
                return None
            if use.blocked_until_ms is not None and now_ms < use.blocked_until_ms:
                return self._refuse(use, minute, use.blocked_until_ms - now_ms)
            if use.served_in_window(now_ms, self.window_ms) >= self.limit:
                use.blocked_until_ms = now_ms + self.window_ms
                use.blocks += 1
                return self._refuse(use, minute, self.window_ms)
            use.served_at[now_ms] = use.served_at.get(now_ms, 0) + 1
            return None

    @staticmethod
    def _refuse(use: TokenUse, minute: int, wait_ms: int) -> int:
        use.refused_per_minute[minute] = use.refused_per_minute.get(minute, 0) + 1
        return max(1, math.ceil(wait_ms / 1000))

    def configure(self, doc: Any) -> None:
        """`{"enabled"?: bool, "limit"?: int, "window_ms"?: int}` (control API)."""
        if not isinstance(doc, dict):
            raise RateLimitError("rate-limit settings must be a JSON object")
        unknown = set(doc) - {"enabled", "limit", "window_ms"}
        if unknown:
            raise RateLimitError(f"unknown rate-limit fields {sorted(unknown)}")
        enabled, limit, window = doc.get("enabled", self.enabled), doc.get("limit", self.limit), \
            doc.get("window_ms", self.window_ms)
        if not isinstance(enabled, bool):
            raise RateLimitError("enabled must be a boolean")
        for name, v in (("limit", limit), ("window_ms", window)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise RateLimitError(f"{name} must be a positive integer")
        if window % MINUTE_MS:
            raise RateLimitError("window_ms must be whole minutes (the report counts by minute)")
        with self._lock:
            self.enabled, self.limit, self.window_ms = enabled, limit, window

    def clear(self) -> None:
        """Forgets every count and block (with the sandbox's reset)."""
        with self._lock:
            self._tokens.clear()

    def report(self) -> dict[str, Any]:
        """Settings and per-token counts; `max_sent_per_window` is the most requests one
        token sent in any `window_ms` of whole sandbox minutes."""
        with self._lock:
            tokens = [use.report(self.window_ms) for use in self._tokens.values()]
            return {"enabled": self.enabled, "limit": self.limit, "window_ms": self.window_ms,
                    "clock": "sandbox", "tokens": tokens,
                    "max_sent_per_window": max((t["max_sent_per_window"] for t in tokens), default=0)}

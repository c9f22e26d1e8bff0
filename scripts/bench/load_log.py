"""The gate's log lines a load run reads, and a tail of wrangler's log that stamps each line
with the wall time it appeared. The lines come from `fan_out` in src/runtime/entry.rs:

    tick 2026-11-27T10:01:01Z: Fresh { minute: .. }, 20 active rollout(s)          one per cron run
    tick 2026-11-27T10:01:01Z load-007: phase Ramping { step: 0 }, 6 subrequest(s)   one per rollout tick
    tick 2026-11-27T10:01:01Z load-007: HTTP 500 ...                                  a tick that failed

A rollout's tick lag is the `+N ms` its line carries (milliseconds from the start of the
cron handler to the end of that tick, as the gate measures it), matched by ELAPSED_RE
anywhere after the script's name. A line without it (today's gate) gives the lag as the
line's arrival in wrangler's log minus the moment the harness sent the cron request
("arrival": it adds wrangler's proxying and the log pipe, a few ms). A missing line leaves
the lag unknown. To follow a new format, change the three patterns below; nothing else
reads the text.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

NOW = r"(?P<now>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
# One rollout's tick: `tick <now> <script>: <rest>`; `rest` starting "phase" = ticked.
TICK_RE = re.compile(rf"tick {NOW} (?P<script>[A-Za-z0-9_-]+): (?P<rest>.*?)\s*$")
# The cron run's line: `tick <now>: <rest>`.
CRON_RE = re.compile(rf"tick {NOW}: (?P<rest>.*?)\s*$")
# The gate's own elapsed time in a line, e.g. `done +840 ms`.
ELAPSED_RE = re.compile(r"\+(?P<ms>\d+(?:\.\d+)?) ?ms\b")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Line:
    """One line of wrangler's log and the monotonic time the tail read it."""

    at: float
    text: str


@dataclass(frozen=True)
class Tick:
    """One rollout tick as the log tells it."""

    script: str
    ok: bool  # False: the gate logged a failure for this tick
    rest: str
    gate_ms: float | None  # the `+N ms` the line carries, if any
    arrival_ms: float  # the line's arrival after the cron request was sent


@dataclass(frozen=True)
class CronLog:
    """What the log says about one cron run."""

    summary: str | None  # the rest of the `tick <now>: ...` line, if it came
    gate_ms: float | None  # its `+N ms`, if any
    ticks: list[Tick]


def parse_cron(lines: list[Line], now_text: str, sent_at: float) -> CronLog:
    """The cron run scheduled at `now_text` (the gate's spelling, `2026-11-27T10:01:01Z`)
    among `lines`, with arrival times measured from `sent_at`."""
    summary, summary_ms, ticks = None, None, []
    for line in lines:
        text = ANSI_RE.sub("", line.text)
        m = TICK_RE.search(text)
        if m is not None and m["now"] == now_text:
            rest = m["rest"]
            ticks.append(Tick(m["script"], rest.startswith("phase"), rest, elapsed_ms(rest),
                              (line.at - sent_at) * 1000))
            continue
        m = CRON_RE.search(text)
        if m is not None and m["now"] == now_text:
            summary, summary_ms = m["rest"], elapsed_ms(m["rest"])
    return CronLog(summary, summary_ms, ticks)


def elapsed_ms(rest: str) -> float | None:
    """The `+N ms` in a line's text, if any."""
    m = ELAPSED_RE.search(rest)
    return float(m["ms"]) if m else None


def gate_time_text(ms: int) -> str:
    """A scheduled time as the gate logs it (`Timestamp`'s Display: RFC 3339, seconds, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


class LogTail:
    """Follows a growing log file on a thread, stamping each complete line when read."""

    def __init__(self, path: Path, poll_s: float = 0.005):
        self.path, self.poll_s = Path(path), poll_s
        self.lines: list[Line] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-tail", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        offset, partial = 0, b""
        while not self._stop.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                chunk = b""
            if chunk:
                offset += len(chunk)
                now = time.monotonic()
                parts = (partial + chunk).split(b"\n")
                partial = parts.pop()
                with self._lock:
                    self.lines += [Line(now, p.decode("utf-8", "replace")) for p in parts]
            else:
                time.sleep(self.poll_s)

    def mark(self) -> int:
        """How many lines have been read so far (a starting point for `since`)."""
        with self._lock:
            return len(self.lines)

    def since(self, index: int) -> list[Line]:
        with self._lock:
            return self.lines[index:]

    def wait_for(self, index: int, done, timeout_s: float) -> list[Line]:
        """The lines after `index` once `done(lines)` holds or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.since(index)
            if done(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(self.poll_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

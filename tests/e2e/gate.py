"""Runs the real Worker under `wrangler dev` (workerd) for end-to-end tests: free loopback
ports, a private --persist-to directory, readiness wait, and a stop that always happens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HOOK_TOKEN = "test-hook-token"
API_TOKEN = "test-api-token"

# Secrets arrive as plain vars under `wrangler dev` (a Worker secret is a string binding).
DEFAULT_SECRETS = {
    "HOOK_TOKEN": HOOK_TOKEN,
    "CLOUDFLARE_API_TOKEN": API_TOKEN,
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack/unused",
}


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after its `(comm)` (which may itself hold spaces or
    parentheses): state first, so field N of proc(5) is at index N - 3. None once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, grandchildren, ...), from /proc."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) is not None:
            parent[int(entry)] = int(fields[1])
    out, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, ppid in parent.items() if ppid == current]
        out += children
        frontier += children
    return out


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, killed but not yet reaped, counts as gone)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


class PortTaken(RuntimeError):
    """wrangler dev exited because a port it was given was taken in the meantime."""


class Gate:
    """One `wrangler dev` process serving the gate on 127.0.0.1:<port>."""

    def __init__(self, extra_vars: dict[str, str] | None = None, ready_timeout_s: float = 120,
                 port: int | None = None, state_dir: str | None = None):
        self.fixed_port = port is not None
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # The --persist-to directory (Durable Object state) and wrangler.log; fresh by default.
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="gate-state-")
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(self.state_dir) / "wrangler.log"
        self.extra_vars = {**DEFAULT_SECRETS, **(extra_vars or {})}
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def __enter__(self) -> "Gate":
        # free_port() only finds a port that was free a moment ago; another process on the
        # machine can take it before wrangler binds it. That is a race in the harness, not a
        # gate failure: start again on fresh ports (a port the caller fixed is kept).
        for attempt in range(3):
            try:
                return self._start()
            except PortTaken:
                if self.fixed_port or attempt == 2:
                    raise
                self.port = free_port()
                self.base = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start(self) -> "Gate":
        cmd = [
            str(ROOT / "node_modules/.bin/wrangler"), "dev",
            "--ip", "127.0.0.1", "--port", str(self.port),
            "--inspector-port", str(free_port()),
            "--persist-to", self.state_dir,
            "--test-scheduled", "--show-interactive-dev-session=false",
        ]
        for key, value in self.extra_vars.items():
            cmd += ["--var", f"{key}:{value}"]
        env = dict(os.environ, WRANGLER_SEND_METRICS="false", CLOUDFLARE_CF_FETCH_ENABLED="false",
                   DO_NOT_TRACK="1", GATE_SKIP_BUILD="1", CI="true")
        log = open(self.log_path, "w")
        # Own process group, so stop() also ends workerd and esbuild children.
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                tail = self.log_tail()
                kind = PortTaken if "Address already in use" in tail else RuntimeError
                raise kind(f"wrangler dev exited early ({self.proc.returncode}):\n{tail}")
            try:
                status, _ = self.get("/healthz", timeout=2)
                if status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"wrangler dev not ready after {self.ready_timeout_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    # ---- crash and restart (tests/e2e/test_crash.py) ---------------------------------

    def workerd_pids(self) -> list[int]:
        """The workerd processes under this `wrangler dev` (the runtime that runs the gate;
        wrangler's Node process only supervises it)."""
        if self.proc is None:
            return []
        return [pid for pid in descendants(self.proc.pid) if process_name(pid) == "workerd"]

    def crash(self) -> list[int]:
        """SIGKILLs workerd mid-request (no shutdown, no flush), then wrangler and the rest
        of its process group, and waits until they are gone. Returns the workerd pids."""
        assert self.proc is not None and self.proc.poll() is None, "wrangler dev is not running"
        victims = self.workerd_pids()
        if not victims:
            raise AssertionError(f"no workerd process under wrangler {self.proc.pid}")
        group = descendants(self.proc.pid)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in group) and time.monotonic() < deadline:
            time.sleep(0.05)
        still = [pid for pid in group if alive(pid)]
        if still:
            raise AssertionError(f"processes {still} outlived SIGKILL")
        return victims

    def restart(self) -> float:
        """Starts `wrangler dev` again on the same --persist-to directory (the Durable
        Objects' stored state), same vars and, when it is free, the same port. Returns the
        seconds until it answered /healthz."""
        assert self.proc is None or self.proc.poll() is not None, "stop or crash it first"
        started = time.monotonic()
        self.restarts += 1
        if self.log_path.exists():  # keep each run's log: wrangler.log.1, .2, ...
            self.log_path.rename(self.log_path.with_name(f"wrangler.log.{self.restarts}"))
        self.fixed_port = False
        self.__enter__()
        return time.monotonic() - started

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes]:
        status, _, raw = self.exchange(method, path, body, headers, timeout)
        return status, raw

    def exchange(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None,
                 timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """One request; its status, headers (names lower-cased) and body."""
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        return self.request("GET", path, timeout=timeout)

    def api(self, method: str, path: str, body: dict | None = None,
            token: str | None = HOOK_TOKEN) -> tuple[int, dict]:
        """Calls a /v1 route with the bearer token and a JSON body; returns (status, json)."""
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self.request(method, path, body=data, headers=headers)
        return status, (json.loads(raw) if raw else {})

    def get_json(self, path: str) -> tuple[int, dict]:
        status, body = self.get(path)
        return status, json.loads(body)

    def fire_cron(self, time_ms: int, cron: str = "* * * * *", timeout: float = 30) -> None:
        """Runs the scheduled handler with `time_ms` as the event's scheduled time."""
        query = urllib.parse.urlencode({"cron": cron, "time": str(time_ms)})
        status, body = self.get(f"/cdn-cgi/handler/scheduled?{query}", timeout=timeout)
        if status != 200:
            raise AssertionError(f"scheduled handler failed: {status} {body[:300]!r}\n{self.log_tail()}")

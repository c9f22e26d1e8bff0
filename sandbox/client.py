"""A harness-side helper: `SandboxProcess` starts `python -m sandbox` as a child process
and stops it (SIGTERM, then kill) however the test ends; `SandboxClient` wraps the
control API in small methods. Stdlib only, so tests/e2e can import it directly.

    with SandboxProcess() as sb:
        c = sb.client
        c.reset(now_ms=T0); c.account("acct", "token")
        c.script("acct", "mauntic-gateway", versions=[{"id": OLD}, {"id": NEW}],
                 deployment={"created_on_ms": T0 - 3_600_000}, scenario={"rps": 20})
        c.clock(T0 + 60_000); ... c.splits("mauntic-gateway")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PACKAGE_PARENT = Path(__file__).resolve().parents[1]


class SandboxError(RuntimeError):
    """A control call failed."""


class SandboxClient:
    """The control API as methods; each returns the JSON answer."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}/_sandbox{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise SandboxError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from None

    # setup
    def reset(self, now_ms: int | None = None) -> Any:
        return self._call("POST", "/reset", {} if now_ms is None else {"now_ms": now_ms})

    def account(self, account_id: str, api_token: str, analytics_token: str | None = None,
                author_email: str = "rollout-gate@example.com", api_token_analytics: bool = True) -> Any:
        return self._call("POST", "/accounts", {"account_id": account_id, "api_token": api_token,
                                                "analytics_token": analytics_token, "author_email": author_email,
                                                "api_token_analytics": api_token_analytics})

    def script(self, account_id: str, script: str, versions: list[dict[str, Any]] | None = None,
               deployment: dict[str, Any] | None = None, scenario: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"account_id": account_id, "script": script, "versions": versions or [{}]}
        if deployment is not None:
            body["deployment"] = deployment
        if scenario is not None:
            body["scenario"] = scenario
        return self._call("POST", "/scripts", body)

    def upload_version(self, script: str, **spec: Any) -> Any:
        return self._call("POST", f"/scripts/{script}/versions", spec)

    def scenario(self, script: str, doc: dict[str, Any], from_ms: int | None = None, patch: bool = False) -> Any:
        body = dict(doc, **({"from_ms": from_ms} if from_ms is not None else {}))
        return self._call("PATCH" if patch else "PUT", f"/scripts/{script}/scenario", body)

    # time
    def clock(self, now_ms: int) -> Any:
        return self._call("POST", "/clock", {"now_ms": now_ms})

    def advance(self, ms: int) -> Any:
        return self._call("POST", "/clock", {"advance_ms": ms})

    # faults and the outside world changing
    def fault(self, route: str, kind: str = "status", **fields: Any) -> Any:
        return self._call("POST", "/faults", dict(fields, route=route, kind=kind))

    def clear_faults(self) -> Any:
        return self._call("DELETE", "/faults")

    def hold(self, route: str, stage: str, then: str = "answer", **fields: Any) -> Any:
        """A hold fault: blocks the next matching request before or after it is applied."""
        return self.fault(route, kind="hold", stage=stage, then=then, **fields)

    def get_fault(self, fault_id: int) -> Any:
        return self._call("GET", f"/faults/{fault_id}")

    def release(self, fault_id: int) -> Any:
        return self._call("POST", f"/faults/{fault_id}/release")

    def wait_held(self, fault_id: int, timeout_s: float = 60, poll_s: float = 0.05) -> Any:
        """Polls until the hold blocks a request; returns the rule. TimeoutError if none
        arrives in `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            rule = self.get_fault(fault_id)
            if rule.get("held", 0) > 0:
                return rule
            if time.monotonic() > deadline:
                raise TimeoutError(f"hold {fault_id} caught no request in {timeout_s}s: {rule}")
            time.sleep(poll_s)

    def change_secret(self, script: str, name: str, value: str | None, deploy: bool = False) -> Any:
        """Sets (`value` None: deletes) a secret: a new version; `deploy` puts it live at 100%
        (`wrangler secret put`), else it is only uploaded (`wrangler versions secret put`)."""
        return self._call("POST", f"/scripts/{script}/secrets",
                          {"name": name, "value": value, "deploy": deploy})

    def manual_deploy(self, script: str, **doc: Any) -> Any:
        return self._call("POST", f"/scripts/{script}/deploy", doc)

    def publish_asset(self, env: str, sha: str) -> Any:
        return self._call("POST", "/assets", {"env": env, "sha": sha})

    # what the stand-ins saw
    def splits(self, script: str) -> list[list[list[Any]]]:
        return self._call("GET", f"/scripts/{script}/deployments")["splits"]

    def deployments(self, script: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/scripts/{script}/deployments")["deployments"]

    def calls(self, route: str | None = None, method: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        q = f"?since={since}" + (f"&route={route}" if route else "") + (f"&method={method}" if method else "")
        return self._call("GET", "/calls" + q)["calls"]

    def call_timing(self) -> Any:
        """Per route class: the sandbox's own time on calls, and how many outran their answer time."""
        return self._call("GET", "/calls/timing")

    def access_certs(self, jwks: dict[str, Any]) -> Any:
        """Serves `jwks` at /access/cdn-cgi/access/certs (a rotation is another call)."""
        return self._call("PUT", "/access/certs", jwks)

    def access_fetches(self) -> int:
        """How many times the Access certs were fetched since the last reset."""
        return self._call("GET", "/access/certs")["fetches"]

    def slack_messages(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/slack/messages?since={since}")["messages"]

    def slack_app(self, request_url: str, signing_secret: str) -> Any:
        """The Slack app's Interactivity settings: where clicks go, what signs them."""
        return self._call("PUT", "/slack/app", {"request_url": request_url, "signing_secret": signing_secret})

    def slack_click(self, **doc: Any) -> dict[str, Any]:
        """Clicks a button: message_seq, action_id, user_id (shift_s, bad_signature), or resend=<click_id>."""
        return self._call("POST", "/slack/click", doc)

    def slack_responses(self) -> list[dict[str, Any]]:
        return self._call("GET", "/slack/responses")["responses"]

    def generate(self) -> Any:
        return self._call("POST", "/analytics/generate")

    # the rate limit and the answer times
    def rate_limit(self) -> Any:
        """Settings and per-token counts (`max_sent_per_window`: the most requests one token
        sent in any 5 sandbox minutes)."""
        return self._call("GET", "/ratelimit")

    def set_rate_limit(self, **settings: Any) -> Any:
        return self._call("POST", "/ratelimit", settings)

    def answer_times(self, profile: str = "real", **fields: Any) -> Any:
        """Switches the answer-time profile (`off` or `real`)."""
        return self._call("POST", "/answer_times", dict(fields, profile=profile))


class SandboxProcess:
    """`python -m sandbox` as a child: ready when it prints its port; stopped on exit."""

    def __init__(self, state_dir: str | None = None, python: str = sys.executable, ready_timeout_s: float = 60,
                 args: list[str] | None = None):
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="sandbox-")
        self.args = list(args or [])  # more CLI options, e.g. ["--answer-times", "real"]
        self.python = python
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""
        self.port = 0

    def __enter__(self) -> "SandboxProcess":
        cmd = [self.python, "-m", "sandbox", "--port", "0", "--state-dir", self.state_dir, *self.args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")])))
        err = open(Path(self.state_dir) / "stderr.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                     text=True, env=env, start_new_session=True)
        err.close()
        try:
            line = self._ready_line()
            ready = json.loads(line)
        except BaseException:
            self.stop()
            raise
        self.port, self.base = ready["port"], ready["base"]
        return self

    def _ready_line(self) -> str:
        import selectors

        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(self.ready_timeout_s):
            raise TimeoutError(f"sandbox not ready in {self.ready_timeout_s}s (see {self.state_dir})")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sandbox exited early (see {self.state_dir}/stderr.log)")
        return line

    @property
    def client(self) -> SandboxClient:
        return SandboxClient(self.base)

    def stop(self, timeout_s: float = 15) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()

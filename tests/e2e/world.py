"""The whole product on one machine for end-to-end tests: the sandbox (stand-in Cloudflare,
Analytics Engine on chdb, Slack, target Workers) and the real gate under `wrangler dev`
pointed at it, with simulated time: each tick moves the sandbox clock and fires cron with
the same `time`."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from gate import API_TOKEN, HOOK_TOKEN, Gate

ACCOUNT = "acct-e2e"
MINUTE = 60_000
TERMINAL = {"completed", "rolled_back", "aborted", "superseded", "failed"}


def new_version() -> str:
    return str(uuid.uuid4())


def start_of_next_minute() -> int:
    now = int(time.time() * 1000)
    return (now // MINUTE + 1) * MINUTE


def gate_vars(base: str, **extra: str) -> dict[str, str]:
    """The gate's configuration for a sandbox at `base`."""
    return {
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_BASE_URL": f"{base}/client/v4",
        "CLOUDFLARE_API_TOKEN": API_TOKEN,
        "TARGET_BASE_URL": f"{base}/targets/{{script}}",
        "ASSET_BASE_URL": f"{base}/assets/dev",
        "SLACK_WEBHOOK_URL": f"{base}/slack/hook",
        "STATUS_PAGE_URL": "http://127.0.0.1:8787",
        **extra,
    }


@dataclass
class Release:
    """One script with a stable version live and a new version uploaded."""

    script: str
    old: str
    new: str
    git_sha: str
    t0: int
    minute: int = 0
    statuses: list[dict[str, Any]] = field(default_factory=list)

    def at(self, minute: int) -> int:
        return self.t0 + minute * MINUTE


class World:
    """A sandbox client and a running gate."""

    def __init__(self, sandbox, gate: Gate):
        self.sb = sandbox
        self.gate = gate

    def release(self, script: str, rps: float = 50, old: dict | None = None, new: dict | None = None,
                bindings: list | None = None, publish_asset: bool = True,
                queue: dict | None = None, t0: int | None = None, reset: bool = True,
                ids: tuple[str, str, str] | None = None) -> Release:
        """Seeds a script whose old version has served for 10 minutes, uploads a new one.
        `t0` (default: the next wall-clock minute) must be later than any minute this gate
        has already ticked: the gate's cron ledger handles each minute once. With
        `reset=False` the script joins the sandbox as it is (same account and clock).
        `ids` (old version, new version, git sha) replays a release exactly (default: new ones)."""
        t0 = t0 or start_of_next_minute()
        old_id, new_id, sha = ids or (new_version(), new_version(), uuid.uuid4().hex[:12])
        rel = Release(script=script, old=old_id, new=new_id, git_sha=sha, t0=t0)
        if reset:  # a fresh sandbox; without it, another script joins the running world
            self.sb.reset(now_ms=t0)
            self.sb.account(ACCOUNT, API_TOKEN)
        ae = [{"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}]
        versions = [{"id": rel.old, "bindings": ae, "created_on_ms": t0 - 20 * MINUTE},
                    {"id": rel.new, "bindings": ae if bindings is None else bindings,
                     "created_on_ms": t0 - MINUTE}]
        # Traffic keyed to the release's start, not the wall clock: every run of a test sees
        # the same requests, so a healthy release's outcome does not depend on the minute
        # the suite happens to run (the gate's false-rollback chance is per rollout, ~1%).
        scenario: dict[str, Any] = {
            "rps": rps, "seed": 7, "epoch_ms": t0,
            "versions": {rel.old: {"error_rate": 0.001, "latency_median_ms": 40, "latency_p95_ms": 120, **(old or {})},
                         rel.new: {"error_rate": 0.001, "latency_median_ms": 40, "latency_p95_ms": 120, **(new or {})}},
        }
        if queue:
            scenario["queue"] = queue
        self.sb.script(ACCOUNT, script, versions=versions,
                       deployment={"versions": [{"version_id": rel.old, "percentage": 100}],
                                   "created_on_ms": t0 - 10 * MINUTE},
                       scenario=scenario)
        if publish_asset:
            self.sb.publish_asset("dev", rel.git_sha)
        return rel

    def hook(self, rel: Release, **extra: Any) -> tuple[int, dict]:
        """The deploy hook as CI calls it: sent once more when workerd answers that the
        Worker restarted mid-request (workerd retries only GET and HEAD itself; the hook is
        idempotent per version, docs/runbook.md, so CI may resend it)."""
        status, _, body = self.hook_exchange(rel, **extra)
        return status, body

    def hook_exchange(self, rel: Release, **extra: Any) -> tuple[int, dict[str, str], dict]:
        """`hook`, with the answer's headers (e.g. a 503's `retry-after`)."""
        body = {"script": rel.script, "version_id": rel.new, "git_sha": rel.git_sha, **extra}
        data = json.dumps(body).encode()
        headers = {"content-type": "application/json", "authorization": f"Bearer {HOOK_TOKEN}"}
        for _ in range(2):
            status, answer_headers, raw = self.gate.exchange("POST", "/v1/rollouts", body=data,
                                                             headers=headers)
            if not raw.startswith(b"Your worker restarted mid-request"):
                break
        return status, answer_headers, (json.loads(raw) if raw else {})

    def status(self, rel: Release) -> dict:
        status, body = self.gate.api("GET", f"/v1/rollouts/{rel.script}")
        assert status == 200, body
        return body

    def tick(self, rel: Release) -> dict:
        """One simulated minute: the sandbox clock and the cron event move together."""
        rel.minute += 1
        now = rel.at(rel.minute)
        self.sb.clock(now)
        self.gate.fire_cron(now + 1_000)
        status = self.status(rel)
        rel.statuses.append(status)
        return status

    def run(self, rel: Release, minutes: int, until=lambda s: s["terminal"]) -> dict:
        """Ticks until `until(status)` or `minutes` pass; returns the last status."""
        status = self.status(rel)
        for _ in range(minutes):
            if until(status):
                break
            status = self.tick(rel)
        return status

    # ---- crashes (tests/e2e/test_crash.py) ------------------------------------------

    def tick_until_held(self, rel: Release, fault_id: int, minutes: int) -> "InFlight":
        """Ticks as `tick` does until hold fault `fault_id` catches a request of the gate;
        returns that tick's cron request, still in flight (the gate waits for the held
        answer). AssertionError if `minutes` pass or the rollout ends first."""
        for _ in range(minutes):
            rel.minute += 1
            now = rel.at(rel.minute)
            self.sb.clock(now)
            cron = InFlight(lambda: self.gate.fire_cron(now + 1_000))
            while not cron.done(timeout_s=0.05):
                if self.sb.get_fault(fault_id).get("held", 0) > 0:
                    return cron
            cron.result()
            status = self.status(rel)
            rel.statuses.append(status)
            if status["terminal"]:
                raise AssertionError(f"ended {status['phase_name']} before hold {fault_id} caught a request")
        raise AssertionError(f"hold {fault_id} caught nothing in {minutes} minutes")

    def crash_on_hold(self, rel: Release, fault_id: int, minutes: int) -> dict[str, Any]:
        """One crash: tick until the hold catches a request, SIGKILL workerd while it waits,
        release the hold (its `then` decides whether the request is applied), restart
        `wrangler dev` on the same persisted state. Returns what happened, with timings."""
        cron = self.tick_until_held(rel, fault_id, minutes)
        killed = self.gate.crash()
        held = self.sb.release(fault_id)
        assert cron.done(timeout_s=30), "the cron request outlived workerd"
        assert cron.error is not None, "the killed tick cannot have answered"
        restart_s = self.gate.restart()
        return {"minute": rel.minute, "workerd": killed, "hold": held, "restart_s": restart_s}

    def events(self, rel: Release) -> list[dict[str, Any]]:
        """The whole audit log of the script's rollout object, `{seq, event}` rows."""
        rows: list[dict[str, Any]] = []
        after = 0
        while True:
            status, body = self.gate.api("GET", f"/v1/rollouts/{rel.script}/events?after={after}&limit=500")
            assert status == 200, body
            rows += body["events"]
            if not body["events"] or body.get("next_after") is None:
                return rows
            after = body["next_after"]

    def splits(self, rel: Release) -> list[float]:
        """The new version's share in every deployment since the seed (first = seed)."""
        out = []
        for split in self.sb.splits(rel.script)[1:]:
            out.append(next((pct for vid, pct in split if vid == rel.new), 0.0))
        return out

    def slack(self) -> list[str]:
        """Texts (fallback lines) of the Slack messages the sandbox accepted."""
        return [m["payload"].get("text", "") for m in self.sb.slack_messages() if m.get("accepted")]

    def slack_payloads(self) -> list[str]:
        import json
        return [json.dumps(m["payload"]) for m in self.sb.slack_messages() if m.get("accepted")]


class InFlight:
    """A call running on its own thread (a cron request the test will kill the gate under)."""

    def __init__(self, fn: Callable[[], Any]):
        self.value: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as e:  # noqa: BLE001 (kept for the caller)
            self.error = e

    def done(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

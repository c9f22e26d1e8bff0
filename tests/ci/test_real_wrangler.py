"""The CI path of docs/ci.md, end to end, with the real wrangler (the pinned 4.86 in
node_modules) against the sandbox's Cloudflare API and the real gate under `wrangler dev`
(tests/e2e/gate.py), exactly as the docs write the steps: `wrangler versions upload
--env production` into a fresh WRANGLER_OUTPUT_FILE_DIRECTORY, `start-rollout.sh
<worker-name> <dir>`, `wait-for-rollout.sh`. Then what an operator does by hand mid-rollout:
`wrangler secret put` (refused mid-split) and `wrangler versions secret put` (copies the
candidate), `wrangler versions deploy` (the gate must see
drift), `wrangler deployments list/status` and `wrangler rollback` (then abort closes the
drifted rollout).

wrangler reaches the sandbox through CLOUDFLARE_API_BASE_URL, CLOUDFLARE_ACCOUNT_ID and
CLOUDFLARE_API_TOKEN; the endpoints it needs beyond the gate's own are in
sandbox/wrangler_api.py. Needs the gate's build (scripts/build.sh), like tests/e2e.
Run: python -m pytest tests/ci/test_real_wrangler.py -q"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the sandbox package
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # the gate harness

from gate import API_TOKEN, HOOK_TOKEN, Gate  # noqa: E402
from sandbox.client import SandboxProcess  # noqa: E402
from world import ACCOUNT, MINUTE, gate_vars, start_of_next_minute  # noqa: E402

WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
START = ROOT / "scripts" / "ci" / "start-rollout.sh"
WAIT = ROOT / "scripts" / "ci" / "wait-for-rollout.sh"
NAME = "mauntic-gateway"
WORKER = "mauntic-gateway-production"  # what `--env production` uploads to
SHORT = {"steps": [{"percent": 10, "dwell_minutes": 3}, {"percent": 100, "dwell_minutes": 3}]}

# The target Worker's repository, as a new user has it: a top-level name and an
# environment that does not set its own name.
TARGET_CONFIG = f"""name = "{NAME}"
main = "src/index.js"
compatibility_date = "2026-04-01"

[env.production]
analytics_engine_datasets = [{{ binding = "AE", dataset = "mauntic_logs" }}]
"""
TARGET_SOURCE = 'export default { async fetch() { return new Response("candidate build 42"); } };\n'


@pytest.fixture(scope="module")
def sandbox():
    with SandboxProcess() as process:
        yield process


@pytest.fixture
def gate(sandbox):
    with Gate(extra_vars=gate_vars(sandbox.base)) as running:
        yield running


@pytest.fixture
def target(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "wrangler.toml").write_text(TARGET_CONFIG)
    (tmp_path / "src" / "index.js").write_text(TARGET_SOURCE)
    return tmp_path


class Release:
    """One target Worker in the sandbox with its stable version live for 10 minutes,
    moved minute by minute: the sandbox clock and the gate's cron together."""

    def __init__(self, sandbox, gate: Gate, target: Path):
        self.sb, self.gate, self.target = sandbox.client, gate, target
        self.base = sandbox.base
        self.t0 = start_of_next_minute()
        self.minute = 0
        self.ended_minute: int | None = None
        self.git_sha = uuid.uuid4().hex[:12]
        self.stable = str(uuid.uuid4())
        self.sb.reset(now_ms=self.t0)
        self.sb.account(ACCOUNT, API_TOKEN)
        ae = [{"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}]
        healthy = {"error_rate": 0.001, "latency_median_ms": 40, "latency_p95_ms": 120}
        self.sb.script(ACCOUNT, WORKER,
                       versions=[{"id": self.stable, "bindings": ae, "created_on_ms": self.t0 - 20 * MINUTE}],
                       deployment={"versions": [{"version_id": self.stable, "percentage": 100}],
                                   "created_on_ms": self.t0 - 10 * MINUTE},
                       # The version wrangler uploads gets the default profile.
                       scenario={"rps": 50, "seed": 7, "epoch_ms": self.t0,
                                 "versions": {self.stable: healthy}, "default_version": healthy})
        self.sb.publish_asset("dev", self.git_sha)  # step 2 of docs/ci.md

    def wrangler(self, *args: str, env: dict[str, str] | None = None,
                 account_id: bool = True) -> subprocess.CompletedProcess:
        """The real wrangler in the target's repository, pointed at the sandbox. Without
        `account_id`, wrangler finds the account through /memberships."""
        full = {k: v for k, v in os.environ.items()
                if not k.startswith("WRANGLER_OUTPUT_FILE") and k != "CLOUDFLARE_ACCOUNT_ID"}
        full.update(CLOUDFLARE_API_BASE_URL=f"{self.base}/client/v4",
                    CLOUDFLARE_API_TOKEN=API_TOKEN, WRANGLER_SEND_METRICS="false", NO_COLOR="1",
                    CI="true", **(env or {}))
        if account_id:
            full["CLOUDFLARE_ACCOUNT_ID"] = ACCOUNT
        result = subprocess.run([str(WRANGLER), *args], cwd=self.target, env=full, capture_output=True,
                                text=True, timeout=180, stdin=subprocess.DEVNULL)
        return result

    def ci_env(self, **extra: str) -> dict[str, str]:
        """The environment docs/ci.md gives the two CI scripts."""
        return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
                "GATE_URL": self.gate.base, "HOOK_TOKEN": HOOK_TOKEN, "GIT_SHA": self.git_sha, **extra}

    def upload(self) -> Path:
        """`wrangler versions upload --env production` into a fresh output directory."""
        out = Path(tempfile.mkdtemp(prefix="wrangler-output-"))
        run = self.wrangler("versions", "upload", "--env", "production", "--tag", self.git_sha,
                            "--message", "release 42", env={"WRANGLER_OUTPUT_FILE_DIRECTORY": str(out)})
        assert run.returncode == 0, run.stdout + run.stderr
        return out

    def tick(self) -> None:
        self.minute += 1
        now = self.t0 + self.minute * MINUTE
        self.sb.clock(now)
        self.gate.fire_cron(now + 1_000)

    def status(self) -> dict:
        status, body = self.gate.api("GET", f"/v1/rollouts/{WORKER}")
        assert status == 200, body
        return body

    def live(self) -> list[list]:
        return self.sb.splits(WORKER)[-1]


def uploads_in(out: Path) -> list[dict]:
    entries = [json.loads(line) for f in sorted(out.glob("*.json")) for line in f.read_text().splitlines() if line]
    return [e for e in entries if e["type"] == "version-upload"]


def wait_for(proc: subprocess.Popen, release: Release, minutes: int) -> subprocess.CompletedProcess:
    """Ticks the world while wait-for-rollout.sh polls, until the script exits. Notes the
    minute whose tick ended the rollout (`release.ended_minute`): on a loaded machine the
    script may take more than one minute's pause to notice."""
    for _ in range(minutes):
        if proc.poll() is not None:
            break
        release.tick()
        if release.ended_minute is None and release.status()["terminal"]:
            release.ended_minute = release.minute
        time.sleep(0.3)  # let the script poll between minutes
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_ci_path_of_the_docs_runs_end_to_end_with_the_real_wrangler(sandbox, gate, target):
    release = Release(sandbox, gate, target)
    out = release.upload()

    [entry] = uploads_in(out)
    assert entry["worker_name"] == WORKER and entry["wrangler_environment"] == "production"
    versions = sandbox.client._call("GET", f"/scripts/{WORKER}")["versions"]
    uploaded = versions[-1]
    assert entry["version_id"] == uploaded["id"]
    assert uploaded["annotations"]["workers/tag"] == release.git_sha
    assert uploaded["annotations"]["workers/message"] == "release 42"
    assert release.live() == [[release.stable, 100]], "an upload serves nobody"

    # The name a new user would give (the top-level name) is refused before the hook.
    wrong = subprocess.run(["bash", str(START), NAME, str(out)], env=release.ci_env(),
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 4, wrong.stderr
    assert f"pass '{WORKER}'" in wrong.stderr
    assert gate.api("GET", f"/v1/rollouts/{WORKER}")[0] == 404

    started = subprocess.run(["bash", str(START), WORKER, str(out)],
                             env=release.ci_env(SCHEDULE_JSON=json.dumps(SHORT)),
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == entry["version_id"]

    waiting = subprocess.Popen(["bash", str(WAIT), WORKER, started.stdout.strip()],
                               env=release.ci_env(POLL_SECONDS="0.2", WAIT_TIMEOUT_SECONDS="600"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = wait_for(waiting, release, minutes=30)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "completed" in done.stdout
    assert release.live() == [[entry["version_id"], 100]]
    # docs/ci.md's Workers Builds budget: a short schedule ends within its dwell minutes
    # plus pre-flight and minute boundaries (measured: 3 + 3 dwell -> 8 minutes), counted
    # from the first tick after the hook. The hook is dated by the wall clock, which the
    # upload on a loaded machine can carry past t0, and the ticks are simulated minutes.
    dwell = sum(step["dwell_minutes"] for step in SHORT["steps"])
    first_tick = math.ceil((release.status()["started_at"] - release.t0) / MINUTE)
    took = release.ended_minute - first_tick
    assert took <= dwell + 3, f"completed {took} minutes after the hook (tick {release.ended_minute})"

    # Every Slack message prints the tail command that opens this Worker.
    texts = json.dumps([m["payload"] for m in sandbox.client.slack_messages() if m.get("accepted")])
    assert f"wrangler tail {WORKER}`" in texts and "--env" not in texts

    # What an operator reads with wrangler afterwards (here without CLOUDFLARE_ACCOUNT_ID:
    # wrangler looks the account up through /memberships, unless it cached it before).
    shutil.rmtree(target / ".wrangler" / "cache", ignore_errors=True)
    listed = release.wrangler("deployments", "list", "--env", "production", account_id=False)
    assert listed.returncode == 0, listed.stderr
    assert entry["version_id"] in listed.stdout and release.stable in listed.stdout
    assert any(c["path"] == "/client/v4/memberships" for c in sandbox.client.calls(route="cf.wrangler"))


def test_a_manual_deploy_mid_rollout_is_drift_and_a_wrangler_rollback_ends_it(sandbox, gate, target):
    release = Release(sandbox, gate, target)
    out = release.upload()
    [entry] = uploads_in(out)
    new = entry["version_id"]
    started = subprocess.run(["bash", str(START), WORKER, str(out)], env=release.ci_env(),
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    for _ in range(6):
        release.tick()
        if release.status()["phase"]["phase"] == "ramping" and len(release.live()) == 2:
            break
    assert sorted(release.live(), key=lambda vp: vp[1]) == [[new, 10], [release.stable, 90]]

    status = release.wrangler("deployments", "status", "--env", "production")
    assert status.returncode == 0, status.stderr
    assert f"(10%) {new}" in status.stdout and f"(90%) {release.stable}" in status.stdout

    # docs/runbook.md: `wrangler secret put` mid-split is refused (10215) and changes nothing.
    secret = subprocess.run([str(WRANGLER), "secret", "put", "API_KEY", "--env", "production"],
                            cwd=target, input="rotated-value\n", capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CLOUDFLARE_API_BASE_URL": f"{release.base}/client/v4",
                                 "CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": API_TOKEN,
                                 "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "true"})
    assert secret.returncode != 0
    assert "the latest version of your Worker isn't currently deployed" in secret.stdout + secret.stderr
    assert sorted(release.live(), key=lambda vp: vp[1]) == [[new, 10], [release.stable, 90]]

    # What works instead: `wrangler versions secret put` copies the latest version, which
    # mid-split is the candidate, into a new version that serves nobody; the split and the
    # rollout go on untouched.
    copied = subprocess.run([str(WRANGLER), "versions", "secret", "put", "API_KEY", "--env", "production"],
                            cwd=target, input="rotated-value", capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CLOUDFLARE_API_BASE_URL": f"{release.base}/client/v4",
                                 "CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": API_TOKEN,
                                 "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "true"})
    assert copied.returncode == 0, copied.stdout + copied.stderr
    latest = sandbox.client._call("GET", f"/scripts/{WORKER}")["versions"][-1]
    assert latest["id"] not in (new, release.stable)
    assert {"name": "API_KEY", "type": "secret_text"} in latest["resources"]["bindings"]
    content = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {API_TOKEN}",
                              f"{release.base}/client/v4/accounts/{ACCOUNT}/workers/scripts/{WORKER}"
                              f"/content/v2?version={latest['id']}"], capture_output=True, text=True, timeout=30)
    assert "candidate build 42" in content.stdout, "the copy is the candidate's code"
    assert sorted(release.live(), key=lambda vp: vp[1]) == [[new, 10], [release.stable, 90]]
    release.tick()
    assert release.status()["phase"]["phase"] == "ramping", "a version upload is not drift"

    # Someone moves the split by hand, as the runbook's wrangler line would.
    manual = release.wrangler("versions", "deploy", f"{new}@50", f"{release.stable}@50", "--env", "production",
                              "-y", "--message", "hotfix by hand")
    assert manual.returncode == 0, manual.stdout + manual.stderr
    # A quiet rollout reads its deployment once every 5 minutes (docs/scale.md): the drift
    # shows within five ticks.
    for _ in range(5):
        release.tick()
        view = release.status()
        if view["phase"]["phase"] == "drifted":
            break
    assert view["phase"]["phase"] == "drifted", view["phase"]
    paused = subprocess.run(["bash", str(WAIT), WORKER, new],
                            env=release.ci_env(POLL_SECONDS="0.2", FAIL_ON_PAUSE="1"),
                            capture_output=True, text=True, timeout=60)
    assert paused.returncode == 3, paused.stdout + paused.stderr
    assert "someone else deployed" in paused.stdout and f"{new} 50%" in paused.stdout

    # wrangler rollback puts the stable version back at 100%. A drifted rollout stays
    # drifted (the gate reads but never writes while drifted: src/rollout/tick.rs), so the
    # operator closes it with abort, as the runbook's drift section says.
    rollback = release.wrangler("rollback", release.stable, "--env", "production", "-y", "--message", "back out")
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert release.live() == [[release.stable, 100]]
    writes = len(sandbox.client.splits(WORKER))
    release.tick()
    assert release.status()["phase"]["phase"] == "drifted"
    assert len(sandbox.client.splits(WORKER)) == writes, "the gate wrote while drifted"
    status, body = gate.api("POST", f"/v1/rollouts/{WORKER}/abort", {"by": "alice", "reason": "backed out"})
    assert status == 200, body
    for _ in range(3):
        release.tick()
        if release.status()["terminal"]:
            break
    assert release.status()["phase"]["phase"] == "aborted"
    assert release.live() == [[release.stable, 100]]
    over = subprocess.run(["bash", str(WAIT), WORKER, new], env=release.ci_env(POLL_SECONDS="0.2"),
                          capture_output=True, text=True, timeout=60)
    assert over.returncode == 1, over.stdout + over.stderr
    # Who acted is the credential (HOOK_TOKEN is `token:hook`); the typed `by` is a note.
    assert "by token:hook: backed out (note: by alice, unverified)" in over.stdout

"""Tests of the CI scripts (scripts/ci/start-rollout.sh, wait-for-rollout.sh) against a
tiny fake gate on loopback: no network, no wrangler. The fake answers with bodies shaped
like the real API (RolloutView as serialized by src/status.rs, errors as src/http_error.rs).
The output entries are shaped as wrangler writes them (cloudflare/workers-sdk
packages/wrangler/src/output.ts, OutputEntryVersionUpload); tests/ci/test_real_wrangler.py
runs the same scripts on the output of the real wrangler.
Run: python -m pytest tests/ci -q"""

import json
import os
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "scripts" / "ci" / "start-rollout.sh"
WAIT = ROOT / "scripts" / "ci" / "wait-for-rollout.sh"
NEW = "4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f"
OLD = "0a1b2c3d-4e5f-4a5b-8c9d-0e1f2a3b4c5d"
TOKEN = "s3cret-hook-token"


class FakeGate:
    """Answers each path from a script of (status, body) pairs; the last one repeats.
    Records every request with its headers and body."""

    def __init__(self):
        self.answers = {}
        self.requests = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                gate.requests.append(
                    {"method": self.command, "path": self.path,
                     "headers": dict(self.headers), "body": body})
                script = gate.answers.get((self.command, self.path)) or [(404, error("not_found", "no route"))]
                status, payload, *headers = script.pop(0) if len(script) > 1 else script[0]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers[0] if headers else {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, method, path, *answers):
        self.answers[(method, path)] = list(answers)


@pytest.fixture
def gate():
    g = FakeGate()
    yield g
    g.server.shutdown()


def error(code, message):
    return {"error": {"code": code, "message": message}}


def view(phase, terminal=False, version=NEW, **extra):
    """A RolloutView as GET /v1/rollouts/{script} serializes it."""
    tag = phase["phase"]
    names = {"preflight": "in pre-flight", "rolling_back": "rolling back", "rolled_back": "rolled back"}
    body = {
        "script": "mauntic-gateway", "version_id": version, "baseline_version_id": OLD,
        "git_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "dry_run": False, "message": None,
        "phase_name": names.get(tag, tag), "phase": phase, "terminal": terminal, "step": None,
        "live_split": [{"version_id": OLD, "percent": 100.0}], "intended_split": [],
        "write_pending": False, "started_at": 1795773600000, "minutes_on_step": 3,
        "last_assessment": None, "last_decision": None,
        "slack": {"pending": 0, "delivered": 1, "dropped": 0, "dead_webhook": None},
    }
    body.update(extra)
    return body


RAMPING = view({"phase": "ramping", "step": 0},
               step={"number": 1, "of": 3, "percent": 10.0, "dwell_minutes": 10},
               live_split=[{"version_id": NEW, "percent": 10.0}, {"version_id": OLD, "percent": 90.0}])
COMPLETED = view({"phase": "completed"}, terminal=True,
                 live_split=[{"version_id": NEW, "percent": 100.0}])
ROLLED_BACK = view({"phase": "rolled_back", "cause": {"cause": "unhealthy", "reasons": [
    {"signal": "errors", "detail": "5xx rate 7.11% over the last 5 min is above the 2.00% ceiling",
     "observed": 0.0711, "limit": 0.02}]}}, terminal=True)
ABORTED = view({"phase": "aborted", "by": "alice", "why": "bad migration"}, terminal=True)
FAILED = view({"phase": "failed", "reasons": ["asset: styles/9fceb02.css answered 404"]}, terminal=True)
PAUSED = view({"phase": "paused", "at": {"stage": "ramping", "step": 0},
               "reason": {"pause": "operator", "by": "bob", "why": None}, "resumable": True})


def run(script, *args, gate_url, env=None, timeout=30):
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
            "GATE_URL": gate_url, "HOOK_TOKEN": TOKEN, "POLL_SECONDS": "0.05",
            "WAIT_TIMEOUT_SECONDS": "20", "RETRY_SECONDS": "0.05"}
    full.update(env or {})
    return subprocess.run(["bash", str(script), *args], env=full, capture_output=True,
                          text=True, timeout=timeout)


STATUS = "/v1/rollouts/mauntic-gateway"


def test_completed_rollout_passes_the_job_and_sends_the_token(gate):
    gate.on("GET", STATUS, (200, RAMPING), (200, RAMPING), (200, COMPLETED))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 0, result.stderr
    assert "mauntic-gateway ramping step 1/3 (10%) · live new 10% / stable 90%" in result.stdout
    assert "completed" in result.stdout
    assert len(gate.requests) == 3
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in gate.requests)
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("answer, words", [
    (ROLLED_BACK, "5xx rate 7.11% over the last 5 min is above the 2.00% ceiling"),
    (ABORTED, "by alice: bad migration"),
    (FAILED, "asset: styles/9fceb02.css answered 404"),
])
def test_rollout_that_does_not_complete_fails_the_job_with_the_reason(gate, answer, words):
    gate.on("GET", STATUS, (200, RAMPING), (200, answer))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 1
    assert words in result.stdout
    assert f"{STATUS}/events" in result.stderr


def test_another_version_taking_over_fails_the_job(gate):
    gate.on("GET", STATUS, (200, view({"phase": "ramping", "step": 0}, version=OLD)))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 1
    assert "another version took over" in result.stderr


def test_transient_gate_errors_are_retried(gate):
    gate.on("GET", STATUS, (503, error("internal", "internal error")), (502, b"bad gateway"),
            (200, COMPLETED))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HTTP 503" in result.stdout and "HTTP 502" in result.stdout


def test_a_refused_token_stops_at_once(gate):
    gate.on("GET", STATUS, (401, error("unauthorized", "missing or invalid bearer token")))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 4
    assert len(gate.requests) == 1


def test_an_unknown_script_gives_up_after_three_404s(gate):
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 4
    assert len(gate.requests) == 3


def test_pause_waits_for_a_human_unless_told_to_fail(gate):
    gate.on("GET", STATUS, (200, PAUSED), (200, PAUSED), (200, COMPLETED))
    waited = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert waited.returncode == 0
    assert "paused · live stable 100% · operator, by bob" in waited.stdout
    gate.on("GET", STATUS, (200, PAUSED))
    failed = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url, env={"FAIL_ON_PAUSE": "1"})
    assert failed.returncode == 3


def test_waiting_forever_times_out(gate):
    gate.on("GET", STATUS, (200, RAMPING))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url,
                 env={"WAIT_TIMEOUT_SECONDS": "1", "POLL_SECONDS": "0.2"})
    assert result.returncode == 2
    assert "still not finished" in result.stderr


def wrangler_output(tmp_path, *entries, name="wrangler-output.json"):
    """The ND-JSON file wrangler appends to when WRANGLER_OUTPUT_FILE_PATH is set (or
    writes, one per run, into WRANGLER_OUTPUT_FILE_DIRECTORY)."""
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def upload(worker="mauntic-gateway", version=NEW, env=None):
    """A version-upload entry as wrangler 4.86 writes it."""
    return {"version": 1, "type": "version-upload", "worker_name": worker, "worker_tag": "5f0e",
            "version_id": version, "preview_url": None, "wrangler_environment": env,
            "worker_name_overridden": False, "timestamp": "2026-12-07T01:00:00.000Z"}


def closed_port_url():
    """A loopback URL nothing listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_start_reads_the_version_id_from_wrangler_output_and_calls_the_hook(gate, tmp_path):
    output = wrangler_output(
        tmp_path,
        {"type": "wrangler-session", "version": 1, "wrangler_version": "4.86.0"},
        {"type": "version-upload", "version": 1, "worker_name": "mauntic-gateway",
         "worker_tag": "t", "version_id": NEW, "preview_url": None})
    gate.on("POST", "/v1/rollouts", (201, {"created": True, "rollout": RAMPING}))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url,
                 env={"GIT_SHA": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                      "ROLLOUT_MESSAGE": 'release "42" <b>'})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == NEW
    [req] = gate.requests
    assert req["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert req["headers"]["Content-Type"] == "application/json"
    assert json.loads(req["body"]) == {
        "script": "mauntic-gateway", "version_id": NEW,
        "git_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "message": 'release "42" <b>'}


def test_start_passes_dry_run_and_schedule(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (200, {"created": False, "rollout": RAMPING}))
    schedule = {"steps": [{"percent": 25, "dwell_minutes": 5}, {"percent": 100, "dwell_minutes": 5}]}
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url,
                 env={"DRY_RUN": "1", "SCHEDULE_JSON": json.dumps(schedule), "GIT_SHA": "abcdef1"})
    assert result.returncode == 0, result.stderr
    assert "already started" in result.stderr
    body = json.loads(gate.requests[0]["body"])
    assert body["dry_run"] is True and body["schedule"] == schedule


def test_start_reports_the_gates_refusal(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (409, error(
        "rollout_active", f"mauntic-gateway is rolling out version {OLD} (ramping); pause or abort it first")))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 1
    assert "HTTP 409" in result.stderr and "rollout_active" in result.stderr
    assert result.stdout == ""


def test_start_without_a_version_upload_entry_is_a_setup_error(gate, tmp_path):
    output = wrangler_output(tmp_path, {"type": "wrangler-session", "version": 1})
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url)
    assert result.returncode == 4
    assert "version-upload" in result.stderr
    assert gate.requests == []


def test_start_refuses_when_wrangler_uploaded_to_another_worker_than_named(gate, tmp_path):
    # `wrangler versions upload --env production` uploads to `<name>-production`.
    output = wrangler_output(tmp_path, upload(worker="mauntic-gateway-production", env="production"))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 4
    assert "'mauntic-gateway-production' (--env production), not 'mauntic-gateway'" in result.stderr
    assert gate.requests == []


def test_start_sends_the_worker_name_wrangler_used(gate, tmp_path):
    output = wrangler_output(tmp_path, upload(worker="mauntic-gateway-production", env="production"))
    gate.on("POST", "/v1/rollouts", (201, {"created": True, "rollout": RAMPING}))
    result = run(START, "mauntic-gateway-production", str(output), gate_url=gate.url,
                 env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 0, result.stderr
    assert json.loads(gate.requests[0]["body"])["script"] == "mauntic-gateway-production"


def test_start_reads_a_fresh_output_directory(gate, tmp_path):
    directory = tmp_path / "out"
    directory.mkdir()
    wrangler_output(directory, {"type": "wrangler-session", "version": 1},
                    name="wrangler-output-2026-12-07_01-00-00_000-a1b2c3.json")
    wrangler_output(directory, upload(), name="wrangler-output-2026-12-07_01-00-05_000-d4e5f6.json")
    gate.on("POST", "/v1/rollouts", (201, {"created": True, "rollout": RAMPING}))
    result = run(START, "mauntic-gateway", str(directory), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == NEW


@pytest.mark.parametrize("layout", ["one appended file", "two files in a directory"])
def test_start_never_takes_an_older_upload(gate, tmp_path, layout):
    if layout == "one appended file":
        output = wrangler_output(tmp_path, upload(version=OLD), upload())
    else:
        output = tmp_path / "out"
        output.mkdir()
        wrangler_output(output, upload(version=OLD), name="wrangler-output-1.json")
        wrangler_output(output, upload(), name="wrangler-output-2.json")
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 4
    assert "2 version-upload entries" in result.stderr and "fresh WRANGLER_OUTPUT_FILE_DIRECTORY" in result.stderr
    assert gate.requests == []


def test_start_retries_5xx_and_429_with_the_same_body(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (503, error("internal", "internal error")),
            (429, error("rate_limited", "slow down"), {"Retry-After": "0"}),
            (502, b"<html>bad gateway</html>"),
            (201, {"created": True, "rollout": RAMPING}))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == NEW
    assert len(gate.requests) == 4
    assert len({r["body"] for r in gate.requests}) == 1, "every try sends the same hook body"
    for status in ("HTTP 503", "HTTP 429", "HTTP 502"):
        assert status in result.stderr


def test_start_waits_out_the_gates_api_budget_without_spending_its_tries(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    busy = (503, error("api_budget_in_use", "the gate's share of Cloudflare's API rate limit is in use: "
                       "990 of 1000 calls in the last 5 minutes, and 400 kept for the ticks of the rollouts "
                       "already running; retry after 1 s"), {"Retry-After": "1"})
    gate.on("POST", "/v1/rollouts", busy, busy, busy, (201, {"created": True, "rollout": RAMPING}))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url,
                 env={"GIT_SHA": "abcdef1", "START_ATTEMPTS": "1"})
    assert result.returncode == 0, result.stderr
    assert len(gate.requests) == 4
    assert result.stderr.count("waiting 1s: the gate's share of Cloudflare's API rate limit is in use") == 3


def test_start_gives_up_when_the_api_budget_stays_in_use_past_its_wait(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (503, error("api_budget_in_use", "in use; retry after 2 s"),
                                     {"Retry-After": "2"}))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url,
                 env={"GIT_SHA": "abcdef1", "BUDGET_WAIT_SECONDS": "3"})
    assert result.returncode == 2
    assert len(gate.requests) == 2
    assert "API budget stayed in use for 2s (BUDGET_WAIT_SECONDS=3); gave up" in result.stderr


def test_start_gives_up_on_a_gate_that_keeps_failing_with_exit_2(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (503, error("internal", "internal error")))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url,
                 env={"GIT_SHA": "abcdef1", "START_ATTEMPTS": "3"})
    assert result.returncode == 2
    assert len(gate.requests) == 3
    assert "gave up after 3 tries" in result.stderr


def test_start_retries_a_refused_connection_and_shows_curls_error(tmp_path):
    output = wrangler_output(tmp_path, upload())
    result = run(START, "mauntic-gateway", str(output), gate_url=closed_port_url(),
                 env={"GIT_SHA": "abcdef1", "START_ATTEMPTS": "2"})
    assert result.returncode == 2
    assert result.stderr.count("could not reach") == 2
    assert "curl: (7)" in result.stderr, result.stderr


def test_start_does_not_retry_a_request_error(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (400, error("bad_request", "git_sha: not hex")))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 1
    assert len(gate.requests) == 1


ACCESS = {"CF_ACCESS_CLIENT_ID": "abc.access", "CF_ACCESS_CLIENT_SECRET": "access-secret-value"}


def test_both_scripts_send_the_access_service_token_when_configured(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (201, {"created": True, "rollout": RAMPING}))
    gate.on("GET", STATUS, (200, COMPLETED))
    started = run(START, "mauntic-gateway", str(output), gate_url=gate.url,
                  env={"GIT_SHA": "abcdef1", **ACCESS})
    waited = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url, env=ACCESS)
    assert started.returncode == 0 and waited.returncode == 0, started.stderr + waited.stderr
    assert len(gate.requests) == 2
    for req in gate.requests:
        assert req["headers"]["CF-Access-Client-Id"] == "abc.access"
        assert req["headers"]["CF-Access-Client-Secret"] == "access-secret-value"
        assert req["headers"]["Authorization"] == f"Bearer {TOKEN}"
    everything = started.stdout + started.stderr + waited.stdout + waited.stderr
    assert "access-secret-value" not in everything and TOKEN not in everything


def test_without_access_configured_no_access_headers_are_sent(gate, tmp_path):
    gate.on("GET", STATUS, (200, COMPLETED))
    assert run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url).returncode == 0
    assert not any(h.lower().startswith("cf-access") for h in gate.requests[0]["headers"])


@pytest.mark.parametrize("script", [START, WAIT])
def test_half_an_access_service_token_is_a_setup_error(gate, tmp_path, script):
    output = wrangler_output(tmp_path, upload())
    arg = str(output) if script == START else NEW
    result = run(script, "mauntic-gateway", arg, gate_url=gate.url,
                 env={"CF_ACCESS_CLIENT_ID": "abc.access"})
    assert result.returncode == 4
    assert "CF_ACCESS_CLIENT_SECRET" in result.stderr
    assert gate.requests == []


def test_start_hints_at_access_when_a_login_redirect_answers(gate, tmp_path):
    output = wrangler_output(tmp_path, upload())
    gate.on("POST", "/v1/rollouts", (302, b"", {"Location": "https://zeluto.cloudflareaccess.com/cdn-cgi/access/login"}))
    result = run(START, "mauntic-gateway", str(output), gate_url=gate.url, env={"GIT_SHA": "abcdef1"})
    assert result.returncode == 1
    assert "HTTP 302" in result.stderr and "CF_ACCESS_CLIENT_ID" in result.stderr


def test_an_unreachable_gate_fails_the_wait_promptly_with_curls_error():
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=closed_port_url(),
                 env={"WAIT_TIMEOUT_SECONDS": "7200", "POLL_SECONDS": "0.05"}, timeout=20)
    assert result.returncode == 5
    assert "unreachable" in result.stderr
    assert "curl: (7)" in result.stdout + result.stderr
    assert result.stdout.count("no answer from the gate") == 3


def test_a_gate_that_answers_html_fails_the_wait_as_unreachable(gate):
    gate.on("GET", STATUS, (200, b"<!doctype html><title>Sign in</title>"))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 5
    assert len(gate.requests) == 3
    assert "not JSON: <!doctype html><title>Sign in</title>" in result.stderr


def test_one_lost_poll_among_good_ones_is_not_unreachable(gate):
    gate.on("GET", STATUS, (200, RAMPING), (502, b"bad gateway"), (200, RAMPING),
            (502, b"bad gateway"), (200, RAMPING), (502, b"bad gateway"), (200, COMPLETED))
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name, value", [
    ("WAIT_TIMEOUT_SECONDS", "2h"), ("WAIT_TIMEOUT_SECONDS", "0"), ("WAIT_TIMEOUT_SECONDS", "-5"),
    ("POLL_SECONDS", "abc"), ("POLL_SECONDS", "0"), ("FAIL_ON_PAUSE", "yes"),
])
def test_a_malformed_setting_is_refused_before_any_poll(gate, name, value):
    result = run(WAIT, "mauntic-gateway", NEW, gate_url=gate.url, env={name: value})
    assert result.returncode == 4
    assert name in result.stderr
    assert gate.requests == []

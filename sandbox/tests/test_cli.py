"""`python -m sandbox`: prints one JSON line once ready, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_prints_its_port_serves_and_stops_on_sigterm(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", "0", "--state-dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["base"] == f"http://127.0.0.1:{ready['port']}"
        with urllib.request.urlopen(ready["base"] + "/_sandbox/health", timeout=10) as r:
            assert json.load(r)["ok"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert (tmp_path / "sandbox.log").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_client_helpers_drive_a_child_sandbox(tmp_path: Path):
    from sandbox.client import SandboxProcess

    with SandboxProcess(state_dir=str(tmp_path)) as sb:
        c = sb.client
        c.reset(now_ms=1_795_773_600_000)
        c.account("acct", "tok")
        seeded = c.script("acct", "gw", versions=[{}, {}], scenario={"rps": 1})
        c.advance(60_000)
        c.fault("slack", status=410)
        assert c.splits("gw") == [[[seeded["versions"][1]["id"], 100]]]
        assert c.generate()["minutes"] == 1
    assert sb.proc is not None and sb.proc.returncode == 0


def test_cli_answer_times_flag_switches_the_real_profile_on(tmp_path: Path):
    from sandbox.client import SandboxProcess

    with SandboxProcess(state_dir=str(tmp_path), args=["--answer-times", "real", "--seed", "5"]) as sb:
        shown = sb.client._call("GET", "/answer_times")
        assert shown["profile"] == "real" and shown["seed"] == 5
        assert shown["medians_ms"]["analytics"] == 300 and shown["jitter"] == 0.3

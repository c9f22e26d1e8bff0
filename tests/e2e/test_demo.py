"""The README's first command stays true: the demo runs to the end, the healthy release
completes, the bad one rolls back, and the timeline picture is written."""

import subprocess
import sys
from pathlib import Path

from gate import ROOT, free_port


def test_the_demo_promotes_one_release_rolls_back_the_other_and_draws_the_timeline():
    picture = ROOT / "artifacts" / "demo-timeline.svg"
    picture.unlink(missing_ok=True)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--delay", "0",
                          "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "mauntic-gateway: splits written [0.0, 10.0, 50.0, 100.0]" in run.stdout
    # The bad release is caught during the 10% or the 50% step and sent back to stable.
    line = next(l for l in run.stdout.splitlines() if l.startswith("tenant-cache: splits written"))
    splits = [float(x) for x in line.split("[", 1)[1].split("]", 1)[0].split(",")]
    assert splits[-1] == 0.0 and 100.0 not in splits, line
    svg = picture.read_text()
    assert svg.count("<polyline") >= 4 and "rolled back" in svg and "completed" in svg

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
    assert "splits written [0.0, 10.0, 50.0, 100.0]" in run.stdout
    assert "tenant-cache: splits written [0.0, 10.0, 0.0]" in run.stdout
    svg = picture.read_text()
    assert svg.count("<polyline") >= 4 and "rolled back" in svg and "completed" in svg

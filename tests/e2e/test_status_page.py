"""The status page in a real browser: headless Chromium (Debian's package) loads it from
`wrangler dev` against the sandbox, under the page's strict Content-Security-Policy, during
a rollout and after a rollback. The screenshot of the rolled-back release goes to
artifacts/status-page-rolled-back.png, so the test command leaves the tree clean; the
picture in docs/ changes only through `bash scripts/update-screenshot.sh`, which runs this
test with UPDATE_DOCS_SCREENSHOT=1."""

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from gate import HOOK_TOKEN, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (bash scripts/setup.sh installs Debian's package)")
    profile = tempfile.mkdtemp(prefix="chromium-")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120)


def with_token(url: str) -> str:
    # Basic auth with the hook token as the password: what a person's browser sends.
    return url.replace("http://", f"http://ops:{HOOK_TOKEN}@", 1)


def png_colours(path: Path) -> int:
    """Distinct byte values in the decompressed image data: 1–2 means a blank picture."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def test_the_page_shows_a_live_rollout_and_a_rollback_in_a_real_browser(world):
    good = world.release("mauntic-gateway", rps=50)
    bad = world.release("tenant-cache", rps=50, new={"error_rate": 0.02}, t0=good.t0, reset=False)
    assert world.hook(good)[0] == 201 and world.hook(bad)[0] == 201
    for _ in range(12):
        world.tick(good)
        bad.minute = good.minute
    assert world.status(bad)["phase_name"] == "rolled back"

    dom = chromium(with_token(f"{world.gate.base}/"), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for words in ("mauntic-gateway", "tenant-cache", "ramping", "rolled back", "<svg"):
        assert words in html, f"{words!r} not on the index page"

    status, _ = world.gate.get("/")
    assert status == 401, "the page needs the token"

    shot = Path(tempfile.mkdtemp()) / "rolled-back.png"
    run = chromium(with_token(f"{world.gate.base}/rollouts/tenant-cache"),
                   f"--screenshot={shot}", "--window-size=1100,2600")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert shot.stat().st_size > 20_000 and png_colours(shot) > 50, "the screenshot is not blank"
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copyfile(shot, artifacts / "status-page-rolled-back.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "status-page-rolled-back.png")


@pytest.mark.gate_vars(STATUS_PAGE_AUTH="access", ACCESS_TEAM_DOMAIN="e2e-team", ACCESS_AUD="aud",
                       ACCESS_CERTS_URL="{sandbox}/access/cdn-cgi/access/certs")
def test_behind_cloudflare_access_a_header_that_is_not_a_verified_jwt_lets_nobody_in(world):
    # The header alone used to open the pages; now its JWT must verify (tests/e2e/test_access.py
    # has the whole table, with real keys).
    world.release("mauntic-gateway")
    assert world.gate.request("GET", "/")[0] == 401
    for path in ("/", "/v1/rollouts"):
        status, body = world.gate.request("GET", path, headers={"cf-access-jwt-assertion": "eyJhbGciOi.x.y"})
        assert status == 401 and b"access_invalid" in body, (path, body)
    assert world.gate.request("GET", "/", headers={"authorization": f"Bearer {HOOK_TOKEN}"})[0] == 200

"""The stand-in target Workers (version-override selection, failing and hanging
versions) and the asset host."""

from __future__ import annotations

import http.client
import time
import urllib.error

import pytest

from sandbox.targets import SfError, parse_sf_dictionary

from .conftest import V_NEW, V_OLD, Client, seed_gateway

HZ = "/targets/mauntic-gateway/healthz"
OVR = "Cloudflare-Workers-Version-Overrides"


def pinned(version: str, script: str = "mauntic-gateway") -> dict[str, str]:
    return {OVR: f'{script}="{version}"'}


def canary(sb: Client, scenario: dict | None = None, pct: float = 10) -> None:
    seed_gateway(sb, scenario)
    sb.cf("POST", "/mauntic-gateway/deployments", {"strategy": "percentage", "versions": [
        {"version_id": V_NEW, "percentage": pct}, {"version_id": V_OLD, "percentage": 100 - pct}]})


def test_sf_dictionary_parsing():
    assert parse_sf_dictionary('a="x", b-c="y\\"z";p=1, d, e=tok') == {
        "a": "x", "b-c": 'y"z', "d": True, "e": ("opaque", "tok")}
    for bad in ('A="x"', 'a="x",', 'a="x" b="y"', 'a="unterminated', '1a="x"'):
        with pytest.raises(SfError):
            parse_sf_dictionary(bad)


def test_override_pins_a_version_in_the_deployment(sb: Client):
    canary(sb)
    for vid in (V_NEW, V_OLD):
        for _ in range(5):
            a = sb.call("GET", HZ, headers=pinned(vid))
            assert a.status == 200 and a.json() == {"ok": True, "status": "ok", "version_id": vid}
    several = {OVR: f'other-worker="{V_OLD}", mauntic-gateway="{V_NEW}"'}
    assert sb.call("GET", HZ, headers=several).json()["version_id"] == V_NEW


def test_override_outside_the_deployment_falls_back_to_the_split(sb: Client):
    seed_gateway(sb)  # V_NEW uploaded, not deployed: V_OLD at 100%
    for headers in (pinned(V_NEW), {OVR: f'mauntic-gateway={V_NEW}'}, {OVR: "garbage=="}):
        assert sb.call("GET", HZ, headers=headers).json()["version_id"] == V_OLD
    note = sb.ctl("GET", "/calls?route=targets.healthz")["calls"][0]["note"]
    assert "override=ignored" in note


def test_zero_percent_entry_can_be_pinned(sb: Client):
    canary(sb, pct=0)
    assert sb.call("GET", HZ, headers=pinned(V_NEW)).json()["version_id"] == V_NEW
    assert {sb.call("GET", HZ).json()["version_id"] for _ in range(20)} == {V_OLD}


def test_without_override_the_split_decides(sb: Client):
    canary(sb, pct=50)
    seen = [sb.call("GET", HZ).json()["version_id"] for _ in range(60)]
    assert 10 < seen.count(V_NEW) < 50


def test_failing_version_answers_500_and_the_other_stays_ok(sb: Client):
    canary(sb, {"versions": {V_NEW: {"healthz": "fail"}}})
    a = sb.call("GET", HZ, headers=pinned(V_NEW))
    assert a.status == 500 and a.json()["version_id"] == V_NEW and a.json()["ok"] is False
    assert sb.call("GET", HZ, headers=pinned(V_OLD)).status == 200
    sb.ctl("PATCH", "/scripts/mauntic-gateway/scenario", {"versions": {V_NEW: {"healthz": "ok"}}})
    assert sb.call("GET", HZ, headers=pinned(V_NEW)).status == 200


def test_timeout_version_hangs_then_drops(sb: Client):
    canary(sb, {"healthz_timeout_s": 0.5, "versions": {V_NEW: {"healthz": "timeout"}}})
    t = time.monotonic()
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)):
        sb.call("GET", HZ, headers=pinned(V_NEW), timeout=5)
    assert time.monotonic() - t >= 0.5


def test_healthz_faults_and_unknown_script(sb: Client):
    canary(sb)
    sb.ctl("POST", "/faults", {"route": "targets.healthz", "status": 503, "count": 1, "script": "mauntic-gateway"})
    assert sb.call("GET", HZ, headers=pinned(V_NEW)).status == 503
    assert sb.call("GET", HZ, headers=pinned(V_NEW)).status == 200
    assert sb.call("GET", "/targets/nope/healthz").status == 404


def test_asset_host_serves_published_shas_only(sb: Client):
    path = "/assets/production/styles/fda42e04.css"
    assert sb.call("GET", path).status == 404
    sb.ctl("POST", "/assets", {"env": "production", "sha": "fda42e04"})
    a = sb.call("GET", path)
    assert a.status == 200 and a.headers["content-type"].startswith("text/css")
    assert sb.call("HEAD", path).status == 200
    assert sb.call("GET", "/assets/preview/styles/fda42e04.css").status == 404
    sb.call("DELETE", "/_sandbox/assets/production/fda42e04")
    assert sb.call("GET", path).status == 404

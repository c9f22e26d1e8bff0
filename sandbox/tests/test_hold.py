"""The `hold` fault: a request blocked before or after it is applied until the harness
releases it, then answered or dropped; what the crash tests kill the gate against."""

from __future__ import annotations

import threading
import time
import urllib.error
from typing import Any

import pytest

from .conftest import V_NEW, V_OLD, Client, seed_gateway

SPLIT = {"strategy": "percentage", "versions": [{"version_id": V_NEW, "percentage": 10},
                                                {"version_id": V_OLD, "percentage": 90}]}
HOOK = "/slack/services/T000/B000/XXXX"


def in_background(fn) -> tuple[threading.Thread, dict[str, Any]]:
    """Runs `fn` on a thread; its result or exception lands in the returned dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["answer"] = fn()
        except Exception as e:  # noqa: BLE001 (a dropped connection is the point)
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def wait_held(sb: Client, fault_id: int, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rule = sb.ctl("GET", f"/faults/{fault_id}")
        if rule["held"] > 0:
            return rule
        time.sleep(0.02)
    raise AssertionError(f"fault {fault_id} held nothing")


def live_split(sb: Client) -> list[list[Any]]:
    return sb.ctl("GET", "/scripts/mauntic-gateway/deployments")["splits"][-1]


def test_a_hold_before_apply_blocks_the_write_until_released_and_drop_never_applies_it(sb: Client):
    seed_gateway(sb)
    rule = sb.ctl("POST", "/faults", {"route": "cf.deployments.write", "kind": "hold", "stage": "before",
                                      "then": "drop"})
    assert (rule["held"], rule["count"], rule["seconds"], rule["released"]) == (0, 1, 120.0, False)
    t, out = in_background(lambda: sb.cf("POST", "/mauntic-gateway/deployments", SPLIT))
    assert wait_held(sb, rule["id"])["hits"] == 1
    assert live_split(sb) == [[V_OLD, 100]], "not applied while held"
    assert sb.cf("GET", "/mauntic-gateway/deployments").status == 200, "other routes still answer"
    released = sb.ctl("POST", f"/faults/{rule['id']}/release")
    assert released["released"] is True
    t.join(5)
    assert isinstance(out.get("error"), (urllib.error.URLError, ConnectionError, OSError)), out
    assert live_split(sb) == [[V_OLD, 100]], "a request dropped before apply is never applied"
    call = sb.ctl("GET", "/calls?route=cf.deployments.write")["calls"][-1]
    assert call["status"] is None and "never applied" in call["note"]
    assert sb.ctl("GET", f"/faults/{rule['id']}")["held"] == 0


def test_a_hold_after_apply_keeps_the_write_and_drop_loses_only_the_answer(sb: Client):
    seed_gateway(sb)
    rule = sb.ctl("POST", "/faults", {"route": "cf.deployments.write", "kind": "hold", "stage": "after",
                                      "then": "drop", "method": "post"})
    t, out = in_background(lambda: sb.cf("POST", "/mauntic-gateway/deployments", SPLIT))
    wait_held(sb, rule["id"])
    assert live_split(sb) == [[V_NEW, 10], [V_OLD, 90]], "applied before the hold"
    sb.ctl("POST", f"/faults/{rule['id']}/release")
    t.join(5)
    assert "error" in out, "the answer is lost"
    call = sb.ctl("GET", "/calls?route=cf.deployments.write")["calls"][-1]
    assert call["status"] is None and "applied, answer lost" in call["note"]


def test_a_released_hold_that_answers_serves_normally_and_holds_nothing_more(sb: Client):
    seed_gateway(sb)
    rule = sb.ctl("POST", "/faults", {"route": "slack", "kind": "hold", "stage": "after", "count": 5})
    t, out = in_background(lambda: sb.call("POST", HOOK, {"text": "one"}))
    wait_held(sb, rule["id"])
    assert [m["payload"]["text"] for m in sb.ctl("GET", "/slack/messages")["messages"]] == ["one"]
    sb.ctl("POST", f"/faults/{rule['id']}/release")
    t.join(5)
    assert out["answer"].status == 200 and out["answer"].text == "ok"
    started = time.monotonic()
    assert sb.call("POST", HOOK, {"text": "two"}).status == 200
    assert time.monotonic() - started < 2, "a released hold blocks nothing"
    assert sb.ctl("GET", f"/faults/{rule['id']}")["hits"] == 1


def test_a_hold_matches_only_its_method_and_script(sb: Client):
    seed_gateway(sb)
    rule = sb.ctl("POST", "/faults", {"route": "cf", "kind": "hold", "stage": "before", "method": "POST",
                                      "script": "other-script", "seconds": 5})
    started = time.monotonic()
    assert sb.cf("GET", "/mauntic-gateway/deployments").status == 200
    assert sb.cf("POST", "/mauntic-gateway/deployments", SPLIT).status == 200
    assert time.monotonic() - started < 2
    assert sb.ctl("GET", f"/faults/{rule['id']}")["hits"] == 0


def test_an_unreleased_hold_gives_up_after_its_seconds_and_clearing_releases_it(sb: Client):
    seed_gateway(sb)
    rule = sb.ctl("POST", "/faults", {"route": "cf.deployments.write", "kind": "hold", "stage": "before",
                                      "seconds": 0.3})
    assert sb.cf("POST", "/mauntic-gateway/deployments", SPLIT).status == 200, "served after the wait"
    assert sb.ctl("GET", f"/faults/{rule['id']}")["held"] == 0
    rule = sb.ctl("POST", "/faults", {"route": "slack", "kind": "hold", "stage": "before", "seconds": 60})
    t, out = in_background(lambda: sb.call("POST", HOOK, {"text": "x"}))
    wait_held(sb, rule["id"])
    sb.ctl("DELETE", "/faults")
    t.join(5)
    assert out["answer"].status == 200


@pytest.mark.parametrize("doc,message", [
    ({"route": "slack", "kind": "hold"}, "stage"),
    ({"route": "slack", "kind": "hold", "stage": "during"}, "stage"),
    ({"route": "slack", "kind": "hold", "stage": "before", "then": "explode"}, "then"),
    ({"route": "slack", "kind": "hold", "stage": "before", "method": "FETCH"}, "method"),
    ({"route": "slack", "kind": "hold", "stage": "before", "status": 500}, "no status"),
    ({"route": "slack", "kind": "status", "status": 500, "stage": "before"}, "only apply to a hold"),
])
def test_a_malformed_hold_is_refused(sb: Client, doc: dict[str, Any], message: str):
    a = sb.call("POST", "/_sandbox/faults", doc)
    assert a.status == 400 and message in a.json()["error"]["message"], a.text


def test_releasing_an_unknown_or_non_hold_fault_is_404(sb: Client):
    rule = sb.ctl("POST", "/faults", {"route": "slack", "kind": "status", "status": 500})
    assert sb.call("POST", f"/_sandbox/faults/{rule['id']}/release").status == 404
    assert sb.call("POST", "/_sandbox/faults/999/release").status == 404
    assert sb.call("GET", "/_sandbox/faults/999").status == 404


def test_a_hold_with_contains_lets_other_bodies_through(sb: Client):
    rule = sb.ctl("POST", "/faults", {"route": "slack", "kind": "hold", "stage": "before",
                                      "contains": "Rolling back", "then": "drop"})
    assert sb.call("POST", HOOK, {"text": "moving to 50%"}).status == 200
    t, out = in_background(lambda: sb.call("POST", HOOK, {"text": "Rolling back v2"}))
    wait_held(sb, rule["id"])
    sb.ctl("POST", f"/faults/{rule['id']}/release")
    t.join(5)
    assert "error" in out
    texts = [m["payload"]["text"] for m in sb.ctl("GET", "/slack/messages")["messages"]]
    assert texts == ["moving to 50%"], "a Slack message dropped before apply is never recorded"

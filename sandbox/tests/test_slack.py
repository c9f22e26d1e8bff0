"""The stand-in Slack webhook: records messages, answers `ok`, enforces Block Kit
limits with Slack's codes, and the switchable failure modes."""

from __future__ import annotations

import pytest

from .conftest import Client

HOOK = "/slack/services/T000/B000/XXXX"


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_records_and_answers_ok(sb: Client):
    payload = {"text": "rollout advanced", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "mauntic-gateway: 10% -> 50%"}},
        section("*5xx* new 0.1% vs old 0.2%"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"f{i}"} for i in range(10)]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "`wrangler tail mauntic-gateway`"}]},
        {"type": "divider"}]}
    a = sb.call("POST", HOOK, payload)
    assert (a.status, a.text) == (200, "ok")
    msgs = sb.ctl("GET", "/slack/messages")["messages"]
    assert len(msgs) == 1 and msgs[0]["payload"] == payload and msgs[0]["accepted"] is True
    assert msgs[0]["path"] == HOOK and msgs[0]["clock_ms"] and msgs[0]["wall_ms"]
    assert sb.ctl("GET", f"/slack/messages?since={msgs[0]['seq']}")["messages"] == []


@pytest.mark.parametrize("payload,code", [
    ({}, "missing_text_or_fallback_or_attachments"),
    ({"text": ""}, "missing_text_or_fallback_or_attachments"),
    ({"text": 5}, "invalid_payload"),
    ({"text": "x", "blocks": [section("x")] * 51}, "invalid_blocks"),
    ({"text": "x", "blocks": [section("x" * 3001)]}, "invalid_blocks"),
    ({"text": "x", "blocks": [section("")]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "section"}]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "banner"}]}, "invalid_blocks"),
    ({"text": "x", "blocks": "nope"}, "invalid_blocks"),
    ([1], "invalid_payload"),
])
def test_block_kit_limits(sb: Client, payload, code):
    a = sb.call("POST", HOOK, payload)
    assert (a.status, a.text) == (400, code)
    assert sb.ctl("GET", "/slack/messages")["messages"][-1]["accepted"] is False


def test_limits_at_the_edge_pass(sb: Client):
    blocks = [section("x" * 3000)] * 49 + [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}]
    assert sb.call("POST", HOOK, {"text": "x", "blocks": blocks}).status == 200


def test_not_json_is_invalid_payload(sb: Client):
    a = sb.call("POST", HOOK, raw=b"text=hi", headers={"Content-Type": "application/json"})
    assert (a.status, a.text) == (400, "invalid_payload")


@pytest.mark.parametrize("status,body", [(429, "rate_limited"), (500, "rollup_error"), (410, "channel_is_archived")])
def test_failure_modes_until_cleared(sb: Client, status, body):
    sb.ctl("POST", "/faults", {"route": "slack", "status": status, "retry_after": 3})
    for _ in range(2):
        a = sb.call("POST", HOOK, {"text": "rollback!"})
        assert (a.status, a.text) == (status, body)
        assert (a.headers.get("retry-after") == "3") == (status == 429)
    sb.call("DELETE", "/_sandbox/faults")
    assert sb.call("POST", HOOK, {"text": "rollback!"}).status == 200
    msgs = sb.ctl("GET", "/slack/messages")["messages"]
    assert [m["status"] for m in msgs] == [status, status, 200]
    assert all(m["payload"] == {"text": "rollback!"} for m in msgs)

"""The stand-in Slack's interactivity side: `actions` blocks checked as Slack would, a
click signed as Slack signs it (checked here with the stdlib, independently of the
sandbox's own signer), resends byte for byte, and a response_url that threads replies
under recorded messages and wears out after 5 uses."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs

import pytest

from .conftest import Client

HOOK = "/slack/services/T000/B000/XXXX"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def button(action_id: str, **extra: Any) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": action_id.title()},
            "action_id": action_id, "value": "mauntic-gateway:v:1", **extra}


def alert(*elements: dict) -> dict:
    return {"text": "Ramping mauntic-gateway", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "10% -> 50%"}},
        {"type": "actions", "block_id": "rollout_gate_actions", "elements": list(elements)}]}


CONFIRM = {"title": {"type": "plain_text", "text": "Abort?"}, "text": {"type": "mrkdwn", "text": "Sure?"},
           "confirm": {"type": "plain_text", "text": "Abort"}, "deny": {"type": "plain_text", "text": "Cancel"},
           "style": "danger"}


def test_buttons_within_the_limits_pass(sb: Client):
    payload = alert(button("pause"), button("promote", style="primary"),
                    button("abort", style="danger", confirm=CONFIRM))
    assert sb.call("POST", HOOK, payload).status == 200
    message = sb.ctl("GET", "/slack/messages")["messages"][-1]
    assert message["ts"] and message["channel"], "an accepted message gets a ts and channel"


@pytest.mark.parametrize("elements", [
    [],
    [button("pause")] * 26,
    [button("pause", text={"type": "mrkdwn", "text": "Pause"})],
    [button("pause", text={"type": "plain_text", "text": "P" * 76})],
    [button("p" * 256)],
    [button("pause", value="v" * 2001)],
    [button("pause", style="warning")],
    [button("pause"), button("pause")],
    [button("abort", confirm={**CONFIRM, "deny": None})],
    [button("abort", confirm={**CONFIRM, "title": {"type": "mrkdwn", "text": "x"}})],
    [{"type": "static_select", "action_id": "x"}],
])
def test_actions_blocks_beyond_the_limits_are_invalid_blocks(sb: Client, elements):
    a = sb.call("POST", HOOK, alert(*elements) if elements else
                {"text": "x", "blocks": [{"type": "actions", "elements": []}]})
    assert (a.status, a.text) == (400, "invalid_blocks")
    assert sb.ctl("GET", "/slack/messages")["messages"][-1]["ts"] is None


class FakeGate:
    """Records what a click delivers, checks the signature with the stdlib, and replies
    through the response_url in the clicked message's thread."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Slack-Request-Timestamp"]
                expected = "v0=" + hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body,
                                            hashlib.sha256).hexdigest()
                payload = json.loads(parse_qs(body.decode())["payload"][0])
                outer.received.append({"body": body, "headers": dict(self.headers), "payload": payload,
                                       "signed": hmac.compare_digest(expected, self.headers["X-Slack-Signature"])})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/actions"


@pytest.fixture
def gate() -> Iterator[FakeGate]:
    g = FakeGate()
    yield g
    g.server.shutdown()
    g.server.server_close()


def posted(sb: Client) -> dict:
    assert sb.call("POST", HOOK, alert(button("pause"), button("abort", style="danger", confirm=CONFIRM))).status == 200
    return sb.ctl("GET", "/slack/messages")["messages"][-1]


def test_a_click_is_a_signed_form_encoded_block_actions_payload(sb: Client, gate: FakeGate):
    sb.ctl("PUT", "/slack/app", {"request_url": gate.url, "signing_secret": SECRET})
    message = posted(sb)
    before = int(time.time())
    answer = sb.ctl("POST", "/slack/click", {"message_seq": message["seq"], "action_id": "pause", "user_id": "U012ABCDEF"})
    assert answer["status"] == 200
    got = gate.received[-1]
    assert got["signed"] and got["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert abs(int(got["headers"]["X-Slack-Request-Timestamp"]) - before) <= 2
    p = got["payload"]
    assert p["type"] == "block_actions" and p["user"]["id"] == "U012ABCDEF"
    assert p["container"]["message_ts"] == message["ts"] and p["message"]["ts"] == message["ts"]
    [action] = p["actions"]
    assert (action["action_id"], action["type"], action["value"]) == ("pause", "button", "mauntic-gateway:v:1")
    assert action["block_id"] == "rollout_gate_actions"
    assert p["response_url"].endswith(f"/slack/actions/response/{answer['response_id']}")


def test_click_options_corrupt_shift_and_resend(sb: Client, gate: FakeGate):
    sb.ctl("PUT", "/slack/app", {"request_url": gate.url, "signing_secret": SECRET})
    message = posted(sb)
    first = sb.ctl("POST", "/slack/click", {"message_seq": message["seq"], "action_id": "pause", "user_id": "U1"})
    sb.ctl("POST", "/slack/click", {"resend": first["click_id"]})
    assert gate.received[0]["body"] == gate.received[1]["body"]
    assert gate.received[0]["headers"]["X-Slack-Signature"] == gate.received[1]["headers"]["X-Slack-Signature"]
    sb.ctl("POST", "/slack/click", {"message_seq": message["seq"], "action_id": "pause", "user_id": "U1",
                                    "bad_signature": True})
    assert not gate.received[-1]["signed"]
    sb.ctl("POST", "/slack/click", {"message_seq": message["seq"], "action_id": "pause", "user_id": "U1",
                                    "shift_s": -301})
    assert gate.received[-1]["signed"], "a shifted timestamp is still signed correctly"
    assert int(gate.received[-1]["headers"]["X-Slack-Request-Timestamp"]) <= int(time.time()) - 300
    missing = sb.call("POST", "/_sandbox/slack/click", {"message_seq": message["seq"], "action_id": "promote", "user_id": "U1"})
    assert missing.status == 404, "no such button on the message"


def test_the_response_url_threads_replies_and_wears_out(sb: Client, gate: FakeGate):
    sb.ctl("PUT", "/slack/app", {"request_url": gate.url, "signing_secret": SECRET})
    message = posted(sb)
    sb.ctl("POST", "/slack/click", {"message_seq": message["seq"], "action_id": "pause", "user_id": "U1"})
    url = gate.received[-1]["payload"]["response_url"]
    path = url[url.index("/slack/"):]
    reply = {"response_type": "in_channel", "replace_original": False, "thread_ts": message["ts"], "text": "paused"}
    assert sb.call("POST", path, {**reply, "thread_ts": "1.000000"}).text == "invalid_thread_ts"
    assert sb.call("POST", path, {"thread_ts": message["ts"]}).text == "missing_text_or_fallback_or_attachments"
    for _ in range(5):
        assert (a := sb.call("POST", path, reply)).status == 200, a.text
    assert (sb.call("POST", path, reply).status, sb.call("POST", path, reply).text) == (404, "expired_url")
    assert sb.call("POST", "/slack/actions/response/999999", reply).status == 404
    responses = sb.ctl("GET", "/slack/responses")["responses"]
    assert [r["status"] for r in responses].count(200) == 5
    assert responses[2]["payload"]["thread_ts"] == message["ts"]
    assert all(m["path"] != path for m in sb.ctl("GET", "/slack/messages")["messages"]), "replies are not webhook posts"

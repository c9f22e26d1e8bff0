"""The stand-in Slack: the incoming webhook and, for Slack actions (issue 20, part 4), the
app's interactivity side.

Webhook: `POST /slack/{anything}` records every message with its receive time, a `ts` and
a channel (internal: the webhook still answers `ok`, as Slack's does, with no ts), and
answers `200 ok`, or 400 with Slack's short error code when the payload breaks the Block
Kit limits. Faults of route class `slack` switch it to 429 (`Retry-After`), 500
`rollup_error`, 410 `channel_is_archived` (a dead webhook), etc.

Limits enforced: JSON object; `text`, `blocks` or `attachments` present; <= 50 blocks;
known block types; section text <= 3000 chars, <= 10 fields each <= 2000; header
plain_text <= 150; context <= 10 elements; block_id <= 255; text objects non-empty;
`actions` blocks of buttons: button text plain_text <= 75, action_id <= 255 (Slack's button
reference as quoted by the `slack-blocks` crate), style `primary` or `danger`, a confirm
object's four texts present (title, confirm, deny plain_text). UNSOURCED (from memory of
Slack's references, not found in a stored source; notes/issue20-research.md Part 3):
<= 25 elements per actions block, value <= 2000, confirm title <= 100, text <= 300,
confirm/deny <= 30, action_ids unique within a block.

Interactivity: `PUT /_sandbox/slack/app {request_url, signing_secret}` is the app's
settings; `POST /_sandbox/slack/click` "clicks" a button of a recorded message: a
`block_actions` payload (fields as in https://docs.slack.dev/reference/interaction-payloads),
form-encoded as `payload=<JSON>`, signed `v0=HMAC-SHA256(secret, "v0:{ts}:{body}")` with
the wall-clock Unix time (https://api.slack.com/authentication/verifying-requests-from-slack),
POSTed to the request URL; options corrupt the signature, shift the timestamp, use another
user or resend a click's identical bytes. Each click's `response_url` is
`/slack/actions/response/<id>`: it takes at most 5 posts within 30 minutes (third-party
sources; Slack states this for slash commands), a `thread_ts` must be a recorded message's
ts, and the body must be a valid message. Its answer (`200 ok`, 404 `expired_url`,
400 `invalid_thread_ts`) is a PLACEHOLDER: Slack's exact answers were not found.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, quote_plus

from .faults import Fault, inject
from .httpio import Request, Response, text_response
from .world import World

ROUTE = "slack"
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
HEADER_TEXT_MAX = 150
CONTEXT_MAX_ELEMENTS = 10
BLOCK_ID_MAX = 255
BLOCK_TYPES = {"section", "header", "divider", "context", "actions", "image", "rich_text",
               "input", "file", "video", "markdown"}
FAULT_BODIES = {429: "rate_limited", 500: "rollup_error", 410: "channel_is_archived",
                404: "channel_not_found", 403: "action_prohibited", 400: "invalid_payload"}


BUTTON_TEXT_MAX = 75
ACTION_ID_MAX = 255
ACTION_ELEMENTS_MAX = 25  # unsourced
BUTTON_VALUE_MAX = 2000  # unsourced
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}  # unsourced
BUTTON_STYLES = {"primary", "danger"}
CHANNEL = "C0GATE0001"
TEAM = "T0GATE0001"
RESPONSE_USES = 5
RESPONSE_TTL_S = 30 * 60


class Invalid(ValueError):
    """A payload Slack would refuse; the message is the error code."""


def check_text_object(obj: Any, limit: int, plain_only: bool = False) -> None:
    """A text composition object: {type: plain_text|mrkdwn, text: 1..limit chars}."""
    if not isinstance(obj, dict):
        raise Invalid("invalid_blocks")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    text = obj.get("text")
    if obj.get("type") not in allowed or not isinstance(text, str) or not 1 <= len(text) <= limit:
        raise Invalid("invalid_blocks")


def check_block(block: Any) -> None:
    """One block against its type's limits."""
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        raise Invalid("invalid_blocks")
    bid = block.get("block_id")
    if bid is not None and (not isinstance(bid, str) or len(bid) > BLOCK_ID_MAX):
        raise Invalid("invalid_blocks")
    kind = block["type"]
    if kind == "section":
        check_section(block)
    elif kind == "header":
        check_text_object(block.get("text"), HEADER_TEXT_MAX, plain_only=True)
    elif kind == "actions":
        check_actions(block)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= CONTEXT_MAX_ELEMENTS:
            raise Invalid("invalid_blocks")
        for e in elements:
            if isinstance(e, dict) and e.get("type") == "image":
                continue
            check_text_object(e, SECTION_TEXT_MAX)


def check_actions(block: dict[str, Any]) -> None:
    """An actions block: 1..25 elements; the gate's buttons are checked in full."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= ACTION_ELEMENTS_MAX:
        raise Invalid("invalid_blocks")
    seen: set[str] = set()
    for e in elements:
        if not isinstance(e, dict) or e.get("type") != "button":
            raise Invalid("invalid_blocks")  # the sandbox knows buttons only
        check_text_object(e.get("text"), BUTTON_TEXT_MAX, plain_only=True)
        aid = e.get("action_id")
        if aid is not None:
            if not isinstance(aid, str) or not 1 <= len(aid) <= ACTION_ID_MAX or aid in seen:
                raise Invalid("invalid_blocks")
            seen.add(aid)
        value = e.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > BUTTON_VALUE_MAX):
            raise Invalid("invalid_blocks")
        if "style" in e and e["style"] not in BUTTON_STYLES:
            raise Invalid("invalid_blocks")
        if "confirm" in e:
            check_confirm(e["confirm"])


def check_confirm(confirm: Any) -> None:
    """A confirmation dialog: plain_text title, confirm and deny; a text; optional style."""
    if not isinstance(confirm, dict):
        raise Invalid("invalid_blocks")
    for key, limit in CONFIRM_LIMITS.items():
        check_text_object(confirm.get(key), limit, plain_only=key != "text")
    if "style" in confirm and confirm["style"] not in BUTTON_STYLES:
        raise Invalid("invalid_blocks")


def check_section(block: dict[str, Any]) -> None:
    """A section needs text (<= 3000) or fields (<= 10, each <= 2000)."""
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        raise Invalid("invalid_blocks")
    if text is not None:
        check_text_object(text, SECTION_TEXT_MAX)
    if fields is not None:
        if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
            raise Invalid("invalid_blocks")
        for f in fields:
            check_text_object(f, FIELD_TEXT_MAX)


def check_payload(payload: Any) -> None:
    """A whole webhook payload; raises Invalid with Slack's error code."""
    if not isinstance(payload, dict):
        raise Invalid("invalid_payload")
    text, blocks, attachments = payload.get("text"), payload.get("blocks"), payload.get("attachments")
    if text is not None and not isinstance(text, str):
        raise Invalid("invalid_payload")
    if not text and blocks is None and attachments is None:
        raise Invalid("missing_text_or_fallback_or_attachments")
    if blocks is not None:
        if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
            raise Invalid("invalid_blocks")
        for b in blocks:
            check_block(b)


def parse_body(req: Request) -> Any:
    """JSON body, or the `payload=` form field Slack also accepts."""
    ctype = (req.header("content-type") or "").lower()
    raw = req.body.decode("utf-8", "replace")
    if ctype.startswith("application/x-www-form-urlencoded"):
        raw = (parse_qs(raw).get("payload") or [""])[0]
    return json.loads(raw)


def handle(world: World, req: Request) -> Response:
    """POST /slack/{anything}."""
    if req.path.startswith(RESPONSE_PREFIX):
        return handle_response(world, req)
    if req.method != "POST":
        return text_response(405, "invalid_request", ROUTE)
    resp = inject(world.faults, ROUTE, world.now_ms, None, fault_answer)
    payload: Any = None
    if resp is None:
        try:
            payload = parse_body(req)
            check_payload(payload)
            resp = text_response(200, "ok", ROUTE)
        except ValueError as e:  # JSONDecodeError and Invalid are both ValueErrors
            resp = text_response(400, str(e) if isinstance(e, Invalid) else "invalid_payload", ROUTE)
    else:
        try:
            payload = parse_body(req)
        except ValueError:
            payload = None
    record(world, req, payload, resp)
    return resp


def fault_answer(f: Fault) -> Response:
    """A status fault: Slack's short code (429 carries `Retry-After`)."""
    headers = [("Retry-After", str(f.retry_after))] if f.status == 429 else []
    body = f.body if f.body is not None else FAULT_BODIES.get(f.status or 500, "rollup_error")
    return text_response(f.status or 500, body, ROUTE, headers=headers)


def record(world: World, req: Request, payload: Any, resp: Response) -> None:
    """Keeps the message, whatever was answered; an accepted one gets a ts and channel."""
    seq = world.next_seq()
    accepted = resp.status == 200 and not resp.drop
    with world.lock:
        world.slack.append({
            "seq": seq, "path": req.path,
            "ts": f"{int(time.time())}.{seq:06d}" if accepted else None,
            "channel": CHANNEL if accepted else None, "wall_ms": int(time.time() * 1000),
            "clock_ms": world.now_ms, "status": resp.status if not resp.drop else None,
            "answer": resp.body.decode("utf-8", "replace"), "accepted": resp.status == 200 and not resp.drop,
            "payload": payload,
            "raw": None if payload is not None else req.body.decode("utf-8", "replace")[:10_000],
        })


# ---- interactivity: the app's side of a click -------------------------------------------

RESPONSE_PREFIX = "/slack/actions/response/"


def set_app(world: World, doc: dict[str, Any]) -> dict[str, Any]:
    """The Slack app's Interactivity settings: {request_url, signing_secret}."""
    url, secret = doc.get("request_url"), doc.get("signing_secret")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("request_url must be an http(s) URL")
    if not isinstance(secret, str) or not secret:
        raise ValueError("signing_secret is required")
    with world.lock:
        world.slack_app = {"request_url": url, "signing_secret": secret}
    return {"ok": True}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of a request."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def block_actions(message: dict[str, Any], action: dict[str, Any], block_id: str | None, user_id: str,
                  response_url: str, trigger_id: str) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for a button on a channel message."""
    payload = message.get("payload") or {}
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM},
        "api_app_id": "A0GATE0001",
        "token": "legacy-verification-token",  # deprecated; the gate must not rely on it
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL,
                      "is_ephemeral": False},
        "trigger_id": trigger_id,
        "team": {"id": TEAM, "domain": "sandbox"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": CHANNEL, "name": "deploys"},
        "message": {"type": "message", "subtype": "bot_message", "text": payload.get("text", ""),
                    "ts": message["ts"], "bot_id": "B0GATE0001", "blocks": payload.get("blocks", [])},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{"action_id": action.get("action_id"), "block_id": block_id, "text": action.get("text"),
                     "value": action.get("value"), "style": action.get("style"), "type": "button",
                     "action_ts": f"{time.time():.6f}"}],
    }


def find_button(message: dict[str, Any], action_id: str) -> tuple[dict[str, Any], str | None]:
    """The button with `action_id` on a recorded message, and its block's id."""
    for block in (message.get("payload") or {}).get("blocks") or []:
        if block.get("type") != "actions":
            continue
        for e in block.get("elements") or []:
            if e.get("action_id") == action_id:
                return e, block.get("block_id")
    raise LookupError(f"message {message['seq']} has no button {action_id!r}")


def click(world: World, doc: dict[str, Any], sandbox_base: str) -> dict[str, Any]:
    """Clicks a button (or resends a click) and returns what the gate answered.

    {message_seq, action_id, user_id, shift_s?, bad_signature?, value?} or {resend: click_id}.
    `shift_s` moves the timestamp from the wall clock; `bad_signature` flips one hex digit;
    `value` replaces the button's value after signing is computed over it (a forged button)."""
    app = world.slack_app
    if app is None:
        raise ValueError("no Slack app: PUT /_sandbox/slack/app first")
    if "resend" in doc:
        with world.lock:
            prior = next((c for c in world.slack_clicks if c["id"] == doc["resend"]), None)
        if prior is None:
            raise LookupError(f"no click {doc['resend']}")
        body, headers = prior["body"].encode(), dict(prior["headers"])
        response_id = prior["response_id"]
    else:
        with world.lock:
            message = next((m for m in world.slack if m["seq"] == doc.get("message_seq") and m["ts"]), None)
        if message is None:
            raise LookupError(f"no accepted message {doc.get('message_seq')}")
        button, block_id = find_button(message, str(doc.get("action_id")))
        response_id = f"{world.next_seq()}"
        with world.lock:
            world.slack_response_urls[response_id] = {"uses": 0, "created_s": time.time(),
                                                      "message_ts": message["ts"]}
        response_url = f"{sandbox_base}{RESPONSE_PREFIX}{response_id}"
        payload = block_actions(message, button, block_id, str(doc.get("user_id")), response_url,
                                f"{response_id}.{int(time.time())}.sandbox")
        body = ("payload=" + quote_plus(json.dumps(payload, separators=(",", ":")))).encode()
        timestamp = str(int(time.time()) + int(doc.get("shift_s", 0)))
        signature = sign(app["signing_secret"], timestamp, body)
        if doc.get("bad_signature"):
            signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp,
                   "X-Slack-Signature": signature, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    status, answer = post(app["request_url"], body, headers)
    entry = {"id": world.next_seq(), "body": body.decode(), "headers": headers, "status": status,
             "answer": answer, "response_id": response_id}
    with world.lock:
        world.slack_clicks.append(entry)
    return {"click_id": entry["id"], "status": status, "answer": answer, "response_id": response_id}


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POSTs and returns (status, body text); Slack waits 3 s, the sandbox longer (a slow
    gate shows as a slow click, never as a lost one)."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def handle_response(world: World, req: Request) -> Response:
    """POST /slack/actions/response/<id>: a reply to a click, as `response_url` takes it."""
    if req.method != "POST":
        return text_response(405, "invalid_request", ROUTE)
    rid = req.path[len(RESPONSE_PREFIX):]
    status, code = 200, "ok"
    payload: Any = None
    with world.lock:
        url = world.slack_response_urls.get(rid)
        known_ts = {m["ts"] for m in world.slack if m.get("ts")}
    try:
        payload = json.loads(req.body.decode("utf-8"))
    except ValueError:
        status, code = 400, "invalid_payload"
    if status == 200:
        if url is None or url["uses"] >= RESPONSE_USES or time.time() - url["created_s"] > RESPONSE_TTL_S:
            status, code = 404, "expired_url"
        else:
            try:
                check_payload(payload)
                thread_ts = payload.get("thread_ts")
                if thread_ts is not None and thread_ts not in known_ts:
                    raise Invalid("invalid_thread_ts")
            except Invalid as e:
                status, code = 400, str(e)
    with world.lock:
        if status == 200 and url is not None:
            url["uses"] += 1
        world.slack_responses.append({"seq": world.next_seq(), "response_id": rid, "payload": payload,
                                      "status": status, "answer": code})
    return text_response(status, code, ROUTE)

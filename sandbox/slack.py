"""The stand-in Slack incoming webhook: `POST /slack/{anything}` records every message with
its receive time and answers `200 ok`, or 400 with Slack's short error code when the
payload breaks the Block Kit limits. Faults of route class `slack` switch it to 429
(`Retry-After`), 500 `rollup_error`, 410 `channel_is_archived` (a dead webhook), etc.

Limits enforced: JSON object; `text`, `blocks` or `attachments` present; <= 50 blocks;
known block types; section text <= 3000 chars, <= 10 fields each <= 2000; header
plain_text <= 150; context <= 10 elements; block_id <= 255; text objects non-empty.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

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
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= CONTEXT_MAX_ELEMENTS:
            raise Invalid("invalid_blocks")
        for e in elements:
            if isinstance(e, dict) and e.get("type") == "image":
                continue
            check_text_object(e, SECTION_TEXT_MAX)


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
    """Keeps the message, whatever was answered."""
    with world.lock:
        world.slack.append({
            "seq": world.next_seq(), "path": req.path, "wall_ms": int(time.time() * 1000),
            "clock_ms": world.now_ms, "status": resp.status if not resp.drop else None,
            "answer": resp.body.decode("utf-8", "replace"), "accepted": resp.status == 200 and not resp.drop,
            "payload": payload,
            "raw": None if payload is not None else req.body.decode("utf-8", "replace")[:10_000],
        })

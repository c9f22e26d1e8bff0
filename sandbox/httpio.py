"""Plain request/response values passed between the HTTP server and the stand-ins, and
small helpers to build answers. No sockets here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    """One HTTP request as the stand-ins see it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, list[str]]  # lower-case names
    body: bytes = b""
    raw_query: str = ""

    @staticmethod
    def build(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> "Request":
        """From the raw request line target (`/path?query`) and header pairs."""
        path, _, qs = target.partition("?")
        hmap: dict[str, list[str]] = {}
        for k, v in headers:
            hmap.setdefault(k.lower(), []).append(v)
        return Request(method.upper(), path, parse_qs(qs, keep_blank_values=True), hmap, body, qs)

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_joined(self, name: str) -> str | None:
        """All values of a header joined with `, ` (how lists combine in HTTP)."""
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def bearer(self) -> str | None:
        """The token of an `Authorization: Bearer <token>` header."""
        auth = self.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """One HTTP answer. `route` names the route class for the call log; `drop` closes the
    connection without answering (a hang); `note` is kept in the call log."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    route: str = "unknown"
    drop: bool = False
    note: str | None = None


def json_response(status: int, obj: Any, route: str, headers: list[tuple[str, str]] | None = None,
                  note: str | None = None) -> Response:
    """A JSON answer."""
    body = json.dumps(obj).encode("utf-8")
    hdrs = [("Content-Type", "application/json; charset=utf-8")] + (headers or [])
    return Response(status, body, hdrs, route, note=note)


def text_response(status: int, text: str, route: str, content_type: str = "text/plain; charset=utf-8",
                  headers: list[tuple[str, str]] | None = None, note: str | None = None) -> Response:
    """A text answer."""
    return Response(status, text.encode("utf-8"), [("Content-Type", content_type)] + (headers or []),
                    route, note=note)

"""The HTTP server: one loopback port, stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive.
Routes by path prefix to the stand-ins and records every non-control call (method,
path, route class, status, wall and sandbox time, a note, and the body of writes and
SQL queries) in the world's call log.

  /client/v4/accounts/{a}/analytics_engine/sql  -> analytics
  /client/v4/... that only wrangler calls       -> wrangler_api
  /client/v4/...                                -> cloudflare
  /slack/...                                    -> slack
  /targets/{script}/healthz                     -> targets
  /assets/{env}/styles/{sha}.css                -> targets (asset host)
  /access/cdn-cgi/access/certs                  -> access (Cloudflare Access keys)
  /_sandbox/...                                 -> control

Every /client/v4/ request of a known token first passes the Cloudflare API rate limit
(`ratelimit.py`); with answer times on (`answer_times.py`), every non-control answer is
held back until its drawn answer time has passed since the request was read, outside
every lock, so slow answers overlap instead of queueing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import access, cloudflare, slack, targets, wrangler_api
from .analytics import PATH_RE as SQL_PATH_RE
from .analytics import Analytics
from .answer_times import AnswerTimes
from .control import Control
from .httpio import Request, Response, json_response, text_response
from .world import World

log = logging.getLogger("sandbox")
MAX_BODY = 16 * 1024 * 1024
LOGGED_BODY_MAX = 20_000


class App:
    """Everything behind the socket: the world and the stand-ins."""

    def __init__(self, state_dir: Path, now_ms: int | None = None, seed: int = 0,
                 answer_times: AnswerTimes | None = None):
        self.world = World(now_ms, seed)
        if answer_times is not None:
            self.world.answer_times = answer_times
        self.analytics = Analytics(self.world, state_dir)
        self.control = Control(self.world, self.analytics)

    def dispatch(self, req: Request) -> Response:
        """Routes one request; never raises. A `hold` fault may block it before it is
        applied or after (the answer not yet sent), and may then drop it. The rate limit
        answers before the request is applied; the answer time is waited out last."""
        started = time.monotonic()
        control = req.path.startswith("/_sandbox/")
        answer_s = 0.0 if control else self._answer_time(req)
        try:
            resp = self._held(req, "before", route_of(req)) if not control else None
            if resp is None and not control:
                resp = self._rate_limited(req)
            if resp is None:
                resp = self._route(req)
                if not control:
                    resp = self._held(req, "after", (resp.route, script_of(req))) or resp
        except Exception:  # a sandbox bug: say so loudly, keep serving
            log.error("unhandled error for %s %s\n%s", req.method, req.path, traceback.format_exc())
            resp = text_response(500, "sandbox internal error (see sandbox.log)", "error")
        served_s = time.monotonic() - started
        if answer_s > served_s:  # no lock held: other requests are served meanwhile
            time.sleep(answer_s - served_s)
        if resp.route != "control":
            self._record(req, resp, served_s, answer_s)
        return resp

    def _rate_limited(self, req: Request) -> Response | None:
        """The 429 of the Cloudflare API's rate limit (971 + `retry-after`), or None. Counts
        /client/v4/ requests of a known token (the SQL endpoint's too) on the sandbox clock."""
        if not req.path.startswith("/client/v4/"):
            return None
        token = cloudflare.bearer_token(req)
        sql = SQL_PATH_RE.match(req.path) is not None
        account = self.world.account_for_token(token, analytics=sql)
        if token is None or account is None:
            return None  # refused 401/400 by the route; the real API cannot attribute it either
        kind = "analytics" if token == account.analytics_token != account.api_token else "api"
        retry_after = self.world.rate_limit.admit(token, f"{account.id} {kind} token", self.world.now_ms)
        if retry_after is None:
            return None
        limit = self.world.rate_limit
        return cloudflare.error(429, route_of(req)[0], [cloudflare.err(*cloudflare.ERR_RATE)],
                                [("retry-after", str(retry_after))],
                                note=f"rate limit: {limit.limit} / {limit.window_ms // 60_000} min")

    def _answer_time(self, req: Request) -> float:
        """Seconds this request's answer takes in all, drawn from the answer times (0: off)."""
        times = self.world.answer_times
        if not times.medians_ms:
            return 0.0
        return times.delay_s(route_of(req)[0], req.method, req.path, req.raw_query, req.body,
                             self.world.now_ms)

    def _held(self, req: Request, stage: str, route: tuple[str, str | None]) -> Response | None:
        """Waits out a matching hold fault; a dropped answer when it says `drop`."""
        rule = self.world.faults.hold(route[0], stage, req.method, self.world.now_ms, route[1], req.body)
        if rule is None or rule.then != "drop":
            return None
        what = "never applied" if stage == "before" else "applied, answer lost"
        return Response(0, route=route[0], drop=True, note=f"fault {rule.id}: held {stage}, dropped ({what})")

    def _route(self, req: Request) -> Response:
        p = req.path
        m = SQL_PATH_RE.match(p)
        if m is not None:
            return self.analytics.handle(req, m["acct"])
        if p.startswith("/client/v4/"):
            return wrangler_api.handle(self.world, req) or cloudflare.handle(self.world, req)
        if p.startswith("/slack/"):
            return slack.handle(self.world, req)
        if p.startswith("/targets/"):
            return targets.healthz(self.world, req)
        if p.startswith("/assets/"):
            return targets.asset(self.world, req)
        if p.startswith("/access/"):
            return access.handle(self.world, req)
        if p.startswith("/_sandbox/"):
            return self.control.handle(req)
        return json_response(404, {"error": {"code": "not_found", "message": p}}, "unknown")

    def _record(self, req: Request, resp: Response, served_s: float, answer_s: float) -> None:
        """One call-log entry; `served_ms` is the sandbox's own time on it (holds and faults
        included), `answer_ms` the drawn answer time (0 when answer times are off)."""
        entry: dict[str, Any] = {
            "method": req.method, "path": req.path, "query": req.raw_query,
            "route": resp.route, "status": None if resp.drop else resp.status,
            "wall_ms": int(time.time() * 1000), "note": resp.note,
            "served_ms": round(served_s * 1000, 1), "answer_ms": round(answer_s * 1000, 1),
        }
        if req.method in ("POST", "PUT", "PATCH") and req.body and resp.route != "slack":
            entry["body"] = logged_body(req.body)
        self.world.record_call(entry)

    def close(self) -> None:
        """Ends the chdb session."""
        self.analytics.store.close()


def route_of(req: Request) -> tuple[str, str | None]:
    """The route class (and script, when the path names one) a request will be served
    as, known before it is served (for `hold` faults at stage "before")."""
    p = req.path
    if SQL_PATH_RE.match(p):
        return "analytics", None
    if p.startswith("/client/v4/"):
        m = cloudflare.ROUTE_RE.match(p)
        if m is None:
            return "cf.unknown", None
        return cloudflare.route_class(req.method, m["kind"]), m["script"]
    if p.startswith("/slack/"):
        return "slack", None
    if p.startswith("/targets/"):
        return "targets.healthz", script_of(req)
    if p.startswith("/assets/"):
        return "assets", None
    if p.startswith("/access/"):
        return "access", None
    return "unknown", None


def script_of(req: Request) -> str | None:
    """The script a Cloudflare API or target path names, if any."""
    m = cloudflare.ROUTE_RE.match(req.path)
    if m is not None:
        return m["script"]
    parts = req.path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "targets" else None


def logged_body(body: bytes) -> Any:
    """A request body for the call log: parsed JSON when it is JSON, else (bounded) text."""
    text = body[:LOGGED_BODY_MAX].decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Handler(BaseHTTPRequestHandler):
    """Turns socket requests into `Request`s for the app and writes the `Response`."""

    protocol_version = "HTTP/1.1"
    server_version = "rollout-gate-sandbox"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET  # noqa: N815

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError as e:
            self._write(text_response(400, f"bad request body: {e}", "error"))
            return
        req = Request.build(self.command, self.path, list(self.headers.items()), body)
        resp = self.server.app.dispatch(req)  # type: ignore[attr-defined]
        if resp.drop:
            self.close_connection = True
            return
        self._write(resp)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("Content-Length out of range")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise ValueError("body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, resp: Response) -> None:
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        log.info("%s %s", self.address_string(), format % args)


class Server(ThreadingHTTPServer):
    """The listening server; `app` is reachable from handlers."""

    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: the default 5 makes a burst of concurrent connections (a gate
    # ticking many rollouts at once) wait on SYN retries, a second each, which is no
    # answer time of any real service.
    request_queue_size = 256

    def __init__(self, host: str, port: int, app: App):
        super().__init__((host, port), Handler)
        self.app = app


def start(state_dir: Path, host: str = "127.0.0.1", port: int = 0, now_ms: int | None = None,
          seed: int = 0, answer_times: AnswerTimes | None = None) -> tuple[Server, threading.Thread]:
    """Builds the app and serves it on a background thread (for tests and the CLI)."""
    app = App(state_dir, now_ms, seed, answer_times)
    server = Server(host, port, app)
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    thread.start()
    return server, thread

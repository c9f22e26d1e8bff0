"""Fixtures: one in-process sandbox per test session (chdb allows one session per
process), reset before each test, and a tiny HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from sandbox.server import start

T0 = 1_795_773_600_000  # 2026-11-27T10:00:00Z, a whole minute
ACCT = "acct0123456789abcdef0123456789ab"
TOKEN = "api-token-1"
AE_TOKEN = "ae-token-1"
V_OLD = "22222222-2222-4222-8222-222222222222"
V_NEW = "11111111-1111-4111-8111-111111111111"


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Client:
    """Requests against the sandbox; never raises on HTTP errors."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None, timeout: float = 30) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = dict(headers or {})
        if body is not None and raw is None:
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def ctl(self, method: str, path: str, body: Any = None) -> Any:
        """A control call that must succeed; returns its JSON."""
        a = self.call(method, "/_sandbox" + path, body)
        assert a.status == 200, (a.status, a.text)
        return a.json()

    def cf(self, method: str, path: str, body: Any = None, token: str = TOKEN) -> Answer:
        """A Cloudflare API call under the test account's scripts."""
        return self.call(method, f"/client/v4/accounts/{ACCT}/workers/scripts{path}", body,
                         {"Authorization": f"Bearer {token}"})

    def sql(self, text: str, token: str = AE_TOKEN) -> Answer:
        return self.call("POST", f"/client/v4/accounts/{ACCT}/analytics_engine/sql", raw=text.encode(),
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    srv, _ = start(tmp_path_factory.mktemp("sandbox"), now_ms=T0)
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    srv.app.close()


@pytest.fixture
def sb(server: str) -> Client:
    """A reset sandbox at T0 with one account."""
    c = Client(server)
    c.ctl("POST", "/reset", {"now_ms": T0})
    c.ctl("POST", "/accounts", {"account_id": ACCT, "api_token": TOKEN, "analytics_token": AE_TOKEN})
    return c


def seed_gateway(c: Client, scenario: dict[str, Any] | None = None, created_on_ms: int = T0,
                 script: str = "mauntic-gateway") -> dict[str, Any]:
    """A script with V_OLD live at 100% since `created_on_ms` and V_NEW uploaded."""
    return c.ctl("POST", "/scripts", {
        "account_id": ACCT, "script": script,
        "versions": [
            {"id": V_OLD, "tag": "old", "bindings": [{"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}]},
            {"id": V_NEW, "tag": "new"},
        ],
        "deployment": {"versions": [{"version_id": V_OLD, "percentage": 100}], "created_on_ms": created_on_ms},
        "scenario": scenario,
    })

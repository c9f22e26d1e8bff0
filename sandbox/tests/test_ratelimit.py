"""The Cloudflare API's rate limit on the sandbox clock: 1,200 requests per 5 minutes per
token across the whole v4 API (the SQL endpoint too), a 429 with code 971 and
`retry-after` over it, every call blocked for the next 5 minutes, and the counts a load
run reports."""

from __future__ import annotations

from typing import Iterator

import pytest

from sandbox.ratelimit import LIMIT, RateLimit

from .conftest import ACCT, AE_TOKEN, T0, TOKEN, Client, seed_gateway

GW = "/mauntic-gateway"
MINUTE = 60_000


@pytest.fixture
def small_limit(sb: Client) -> Iterator[Client]:
    """The sandbox with a limit of 5 per 5 minutes (settings outlive a reset: restored)."""
    sb.ctl("POST", "/ratelimit", {"limit": 5})
    try:
        yield sb
    finally:
        sb.ctl("POST", "/ratelimit", {"limit": LIMIT, "window_ms": 5 * MINUTE, "enabled": True})


def test_the_limit_is_the_real_one_by_default(sb: Client):
    report = sb.ctl("GET", "/ratelimit")
    assert (report["enabled"], report["limit"], report["window_ms"], report["clock"]) == (True, 1_200, 300_000, "sandbox")


def test_the_request_over_the_limit_gets_429_971_with_retry_after_and_everything_is_blocked(small_limit: Client):
    sb = small_limit
    seed_gateway(sb)
    assert [sb.cf("GET", GW + "/deployments").status for _ in range(5)] == [200] * 5
    over = sb.cf("GET", GW + "/deployments")
    assert over.status == 429 and over.headers["retry-after"] == "300"
    body = over.json()
    assert body["success"] is False and [e["code"] for e in body["errors"]] == [971]
    # Every route of the API is blocked, the SQL endpoint and unknown scripts included.
    assert sb.sql("SELECT 1", token=TOKEN).status == 429
    assert sb.cf("GET", "/no-such-script/deployments").status == 429
    sb.ctl("POST", "/clock", {"now_ms": T0 + 2 * MINUTE})
    later = sb.cf("GET", GW + "/versions")
    assert later.status == 429 and later.headers["retry-after"] == "180"
    sb.ctl("POST", "/clock", {"now_ms": T0 + 5 * MINUTE})
    assert sb.cf("GET", GW + "/deployments").status == 200


def test_the_window_slides_on_the_sandbox_clock_not_the_wall_clock(small_limit: Client):
    sb = small_limit
    seed_gateway(sb)
    for minute in range(5):  # one a minute: 5 in any 5 minutes, never over
        sb.ctl("POST", "/clock", {"now_ms": T0 + minute * MINUTE})
        assert sb.cf("GET", GW + "/deployments").status == 200
    sb.ctl("POST", "/clock", {"now_ms": T0 + 4 * MINUTE + 59_000})
    assert sb.cf("GET", GW + "/deployments").status == 429, "6 in (t - 5 min, t]"
    report = sb.ctl("GET", "/ratelimit")["tokens"][0]
    assert report["sent"] == 6 and report["refused"] == 1 and report["blocks"] == 1


def test_refused_calls_are_logged_with_their_route_and_never_applied(small_limit: Client):
    sb = small_limit
    seed_gateway(sb)
    for _ in range(5):
        sb.cf("GET", GW + "/deployments")
    split = {"strategy": "percentage", "versions": [{"version_id": v, "percentage": 50}
                                                    for v in ("11111111-1111-4111-8111-111111111111",
                                                              "22222222-2222-4222-8222-222222222222")]}
    assert sb.cf("POST", GW + "/deployments", split).status == 429
    assert len(sb.ctl("GET", "/scripts/mauntic-gateway/deployments")["splits"]) == 1
    call = sb.ctl("GET", "/calls?route=cf.deployments.write")["calls"][-1]
    assert call["status"] == 429 and call["note"].startswith("rate limit")


def test_each_token_has_its_own_limit_and_unknown_tokens_are_not_counted(small_limit: Client):
    sb = small_limit
    seed_gateway(sb)
    for _ in range(5):
        assert sb.cf("GET", GW + "/deployments").status == 200
    assert sb.sql("SELECT 1", token=AE_TOKEN).status == 200, "the analytics token is another token"
    assert sb.cf("GET", GW + "/deployments", token="unknown-token").status == 401
    labels = {t["label"]: t["sent"] for t in sb.ctl("GET", "/ratelimit")["tokens"]}
    assert labels == {f"{ACCT} api token": 5, f"{ACCT} analytics token": 1}


def test_counts_per_minute_give_the_most_sent_in_any_five_minutes(sb: Client):
    seed_gateway(sb)
    for minute, n in enumerate([3, 1, 0, 2, 4, 5, 0, 0, 0, 0, 1]):
        sb.ctl("POST", "/clock", {"now_ms": T0 + minute * MINUTE})
        for _ in range(n):
            sb.cf("GET", GW + "/deployments")
    report = sb.ctl("GET", "/ratelimit")
    token = report["tokens"][0]
    assert token["sent"] == 16 and token["refused"] == 0
    assert token["max_sent_per_window"] == 12 and token["max_window_start_ms"] == T0 + MINUTE  # 1+0+2+4+5
    assert report["max_sent_per_window"] == 12
    assert token["per_minute"][0] == {"minute_ms": T0, "sent": 3, "refused": 0}


def test_a_reset_forgets_counts_and_blocks_but_keeps_the_settings(small_limit: Client):
    sb = small_limit
    seed_gateway(sb)
    for _ in range(6):
        sb.cf("GET", GW + "/deployments")
    sb.ctl("POST", "/reset", {"now_ms": T0})
    sb.ctl("POST", "/accounts", {"account_id": ACCT, "api_token": TOKEN})
    seed_gateway(sb)
    assert sb.cf("GET", GW + "/deployments").status == 200
    report = sb.ctl("GET", "/ratelimit")
    assert report["limit"] == 5 and report["tokens"][0]["sent"] == 1


def test_switched_off_it_counts_but_never_refuses(sb: Client):
    seed_gateway(sb)
    sb.ctl("POST", "/ratelimit", {"enabled": False, "limit": 1})
    try:
        assert [sb.cf("GET", GW + "/deployments").status for _ in range(3)] == [200] * 3
        assert sb.ctl("GET", "/ratelimit")["tokens"][0]["sent"] == 3
    finally:
        sb.ctl("POST", "/ratelimit", {"enabled": True, "limit": LIMIT})


@pytest.mark.parametrize("doc", [{"limit": 0}, {"window_ms": 90_000}, {"enabled": "yes"}, {"burst": 1}, []])
def test_bad_settings_are_400(sb: Client, doc):
    assert sb.call("POST", "/_sandbox/ratelimit", doc).status == 400


def test_the_limiter_alone_blocks_for_a_whole_window_from_the_refused_request():
    limit = RateLimit(limit=2)
    assert [limit.admit("t", "t", T0) for _ in range(2)] == [None, None]
    assert limit.admit("t", "t", T0 + 10_000) == 300
    assert limit.admit("t", "t", T0 + 309_000) == 1
    assert limit.admit("t", "t", T0 + 310_000) is None

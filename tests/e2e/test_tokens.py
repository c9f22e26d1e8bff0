"""Two Cloudflare tokens on the real runtime (issue 20, part 5): with
CLOUDFLARE_ANALYTICS_TOKEN set, Analytics Engine SQL goes with it and everything else with
CLOUDFLARE_API_TOKEN, so the API token needs only Workers Scripts Edit (docs/deploy.md). The
sandbox's account is made so: its API token is refused by the SQL API (403 10000) and its
analytics token by the Workers API."""

import json

import pytest

from gate import API_TOKEN
from world import ACCOUNT

ANALYTICS_TOKEN = "test-analytics-token"


def split_tokens(world) -> None:
    """The account's API token without Account Analytics Read, and an analytics token."""
    world.sb.account(ACCOUNT, API_TOKEN, analytics_token=ANALYTICS_TOKEN, api_token_analytics=False)


def cloudflare_calls(world) -> tuple[list[dict], list[dict]]:
    """The SQL API's calls and the Workers API's calls the gate made."""
    calls = world.sb.calls()
    sql = [c for c in calls if c["route"] == "analytics"]
    workers = [c for c in calls if c["route"].startswith("cf.")]
    return sql, workers


@pytest.mark.gate_vars(CLOUDFLARE_ANALYTICS_TOKEN=ANALYTICS_TOKEN)
def test_with_an_analytics_token_a_release_completes_on_a_scripts_only_api_token(world):
    rel = world.release("mauntic-gateway", rps=50)
    split_tokens(world)
    _, health = world.gate.get_json("/healthz")
    assert health["analytics_token"] == "separate"
    assert ANALYTICS_TOKEN not in json.dumps(health) and API_TOKEN not in json.dumps(health)

    status, body = world.hook(rel)
    assert status == 201, body
    final = world.run(rel, minutes=70)
    assert final["phase_name"] == "completed", json.dumps(final["phase"])
    assert world.splits(rel) == [0, 10, 50, 100]

    sql, workers = cloudflare_calls(world)
    assert sql and workers
    # Had either token gone to the other API, the sandbox would have answered 403 10000.
    assert {c["status"] for c in sql} == {200}, [c for c in sql if c["status"] != 200][:3]
    assert 403 not in {c["status"] for c in workers}


def test_without_one_a_scripts_only_api_token_leaves_the_gate_blind_and_it_pauses(world):
    rel = world.release("mauntic-gateway", rps=50)
    split_tokens(world)
    _, health = world.gate.get_json("/healthz")
    assert health["analytics_token"] == "shared"

    status, body = world.hook(rel)
    assert status == 201, body
    final = world.run(rel, minutes=12)
    sql, _ = cloudflare_calls(world)
    assert sql and {c["status"] for c in sql} == {403}, sql[:3]
    # No evidence, no promotion: paused at the first step, saying why.
    assert world.splits(rel) == [0, 10]
    assert final["phase_name"] == "paused", json.dumps(final["phase"])
    reason = final["phase"]["reason"]
    assert reason["pause"] == "no_evidence"
    assert all("HTTP 403" in gap for gap in reason["gaps"]), reason

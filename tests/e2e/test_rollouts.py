"""End-to-end rollouts on the real runtime: the gate in `wrangler dev` against the sandbox,
with simulated minutes. Each test is one release story from the deploy hook to its end."""

import json

import pytest

from gate import HOOK_TOKEN


def test_a_healthy_release_goes_ten_fifty_hundred_bakes_and_completes(world):
    rel = world.release("mauntic-gateway", rps=50)
    status, body = world.hook(rel)
    assert status == 201, body
    assert body["rollout"]["phase_name"] == "ramping"

    final = world.run(rel, minutes=70)
    assert final["phase_name"] == "completed", json.dumps(final["phase"])
    assert world.splits(rel) == [0, 10, 50, 100]  # 0%: pre-flight probe; then the schedule
    texts = world.slack()
    assert len(texts) == len(set(texts)), "one message per transition, none repeated per tick"
    assert any("moving" in t and "10%" in t for t in texts)
    assert any("baked healthy" in t for t in texts), "\n".join(texts)


def test_a_five_fold_5xx_regression_rolls_back_during_the_split_with_the_numbers(world):
    rel = world.release("tenant-cache", rps=50, new={"error_rate": 0.005})
    assert world.hook(rel)[0] == 201
    final = world.run(rel, minutes=30)
    assert final["phase_name"] == "rolled back", json.dumps(final["phase"])
    assert rel.minute <= 20, "caught during the 10% or 50% step"
    splits = world.splits(rel)
    assert splits[-1] == 0 and 100 not in splits, splits
    live = world.sb.splits(rel.script)[-1]
    assert live == [[rel.old, 100]]
    rollback = next(p for p in world.slack_payloads() if "Rolling back" in p)
    assert "e-value" in rollback and "5xx" in rollback


def test_the_same_hook_twice_starts_one_rollout_and_another_version_gets_409(world):
    rel = world.release("mauntic-gateway")
    assert world.hook(rel)[0] == 201
    status, body = world.hook(rel)
    assert status == 200 and body["created"] is False
    other = {"script": rel.script, "version_id": rel.old}
    status, body = world.gate.api("POST", "/v1/rollouts", other)
    assert status == 409 and rel.new in body["error"]["message"]


def test_api_refuses_without_the_token_and_never_changes_state(world):
    rel = world.release("mauntic-gateway")
    status, body = world.gate.api("POST", "/v1/rollouts", {"script": rel.script, "version_id": rel.new}, token=None)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = world.gate.api("POST", "/v1/rollouts", {"script": rel.script, "version_id": "nope"})
    assert (status, body["error"]["code"]) == (422, "invalid_version_id")
    status, _ = world.gate.api("GET", f"/v1/rollouts/{rel.script}")
    assert status == 404
    assert world.splits(rel) == []


def test_the_list_pages_and_filters_from_the_registry_without_losing_finished_rollouts(world):
    good = world.release("listing-a", rps=50)
    bad = world.release("listing-b", rps=50, new={"error_rate": 0.02}, t0=good.t0, reset=False)
    third = world.release("listing-c", rps=50, t0=good.t0, reset=False)
    for rel in (good, bad, third):
        assert world.hook(rel)[0] == 201
    for _ in range(12):
        world.tick(good)
    assert world.status(bad)["phase_name"] == "rolled back"

    status, first = world.gate.api("GET", "/v1/rollouts?script=listing-&limit=2")
    assert status == 200, first
    assert [r["script"] for r in first["rollouts"]] == ["listing-a", "listing-b"]
    assert first["matching"] == 3 and first["next_cursor"] == "listing-b"
    status, rest = world.gate.api("GET", f"/v1/rollouts?script=listing-&limit=2&cursor={first['next_cursor']}")
    assert [r["script"] for r in rest["rollouts"]] == ["listing-c"] and rest["next_cursor"] is None

    status, rolled = world.gate.api("GET", "/v1/rollouts?script=listing-&phase=rolled_back")
    assert [r["script"] for r in rolled["rollouts"]] == ["listing-b"], rolled
    status, active = world.gate.api("GET", "/v1/rollouts?script=listing-&active=true")
    assert [r["script"] for r in active["rollouts"]] == ["listing-a", "listing-c"], active

    status, body = world.gate.api("GET", "/v1/rollouts?phase=rolled%20back")
    assert (status, body["error"]["code"]) == (400, "invalid_query")

    status, page = world.gate.request("GET", "/?script=listing-&limit=2",
                                      headers={"authorization": f"Bearer {HOOK_TOKEN}"})
    assert status == 200, page
    assert b"3 matching" in page and b"next page" in page and b"listing-c" not in page

"""Pre-flight on the real runtime: a version that fails a check is refused before any user
sees it, Slack hears which check failed and why, and no traffic moves."""

import json

import pytest

from world import MINUTE


def assert_refused(world, rel, words):
    status = world.status(rel)
    assert status["phase_name"] == "refused in pre-flight" or status["phase"]["phase"] == "failed", json.dumps(status["phase"])
    reasons = " ".join(status["phase"]["reasons"])
    assert words in reasons, reasons
    assert all(pct == 0 for pct in world.splits(rel)), "no traffic moved"
    assert any("re-flight" in t for t in world.slack()), world.slack()


def test_a_failing_canary_healthz_refuses_the_rollout(world):
    rel = world.release("mauntic-gateway", new={"healthz": "fail"})
    assert world.hook(rel)[0] == 201
    assert_refused(world, rel, "/healthz")
    assert world.splits(rel) == [0], "only the 0% deployment that lets the probe reach it"


def test_a_missing_static_asset_refuses_the_rollout(world):
    rel = world.release("mauntic-gateway", publish_asset=False)
    assert world.hook(rel)[0] == 201
    assert_refused(world, rel, f"styles/{rel.git_sha}.css")
    assert world.splits(rel) == [], "no deployment at all"


@pytest.mark.gate_vars(REQUIRED_BINDINGS=json.dumps(
    [{"kind": "secrets_store_secret", "secret_name": "slack_webhook_url"}]))
def test_a_missing_required_binding_refuses_the_rollout(world):
    rel = world.release("mauntic-gateway", bindings=[])
    assert world.hook(rel)[0] == 201
    assert_refused(world, rel, "slack_webhook_url")
    assert world.splits(rel) == []


def test_an_unknown_script_is_refused_with_cloudflares_error(world):
    world.release("mauntic-gateway")
    status, body = world.gate.api("POST", "/v1/rollouts", {
        "script": "no-such-worker", "version_id": "11111111-1111-4111-8111-111111111111"})
    assert (status, body["error"]["code"]) == (422, "unknown_script"), body


def test_an_unknown_version_fails_preflight_with_cloudflares_error(world):
    rel = world.release("mauntic-gateway")
    rel.new = "44444444-4444-4444-8444-444444444444"
    assert world.hook(rel)[0] == 201
    assert_refused(world, rel, "Cloudflare does not know this version")

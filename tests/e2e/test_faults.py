"""Faults on the real runtime: metrics outages, Cloudflare API 429/5xx, drift, Slack down,
latency and queue breaches, dry run. The gate must hold, pause, retry or roll back, and
never promote on missing evidence or fight a human."""

import json

import pytest

from world import MINUTE


@pytest.mark.gate_vars(POLICY=json.dumps({"max_minutes_without_evidence": 5}))
def test_an_analytics_outage_holds_then_pauses_never_promotes_and_recovery_resumes(world):
    rel = world.release("mauntic-gateway")
    world.sb.fault("analytics", status=500, from_ms=rel.at(2), until_ms=rel.at(20))
    assert world.hook(rel)[0] == 201
    paused = world.run(rel, minutes=19, until=lambda s: s["phase_name"] == "paused")
    assert paused["phase_name"] == "paused", json.dumps(paused["phase"])
    assert paused["phase"]["reason"]["pause"] == "no_evidence"
    assert 50 not in world.splits(rel), "never promoted without evidence"
    while rel.minute < 19:  # still failing: stays paused
        assert world.tick(rel)["phase_name"] == "paused"
    final = world.run(rel, minutes=60)
    assert final["phase_name"] == "completed", json.dumps(final["phase"])
    texts = world.slack()
    assert any("aused" in t for t in texts) and any("evidence is flowing again" in t for t in texts), texts


def test_cloudflare_429_and_5xx_are_retried_and_the_split_ends_as_the_state_says(world):
    rel = world.release("mauntic-gateway")
    world.sb.fault("cf.deployments.write", status=503, count=2, from_ms=rel.at(10))
    world.sb.fault("cf", status=429, retry_after=120, count=1, from_ms=rel.at(22))
    assert world.hook(rel)[0] == 201
    final = world.run(rel, minutes=80)
    assert final["phase_name"] == "completed", json.dumps(final["phase"])
    assert world.splits(rel)[-1] == 100
    assert final["live_split"] == [{"version_id": rel.new, "percent": 100.0}]
    calls = world.sb.calls(route="cf")
    limited = [c for c in calls if c["status"] == 429]
    assert limited, "the 429 was served"
    after = [c for c in calls if limited[0]["clock_ms"] < c["clock_ms"] < limited[0]["clock_ms"] + 120_000]
    assert after == [], "no Cloudflare call during retry-after"
    per_5_min = max(sum(1 for c in calls if t <= c["clock_ms"] < t + 5 * MINUTE) for t in (c["clock_ms"] for c in calls))
    assert per_5_min <= 1_000


def test_a_manual_deploy_mid_rollout_pauses_alerts_and_the_gate_stops_writing(world):
    rel = world.release("mauntic-gateway")
    assert world.hook(rel)[0] == 201
    world.run(rel, minutes=3)
    world.sb.manual_deploy(rel.script, versions=[{"version_id": rel.new, "percentage": 30},
                                                 {"version_id": rel.old, "percentage": 70}])
    drift_at = rel.at(rel.minute)
    final = world.run(rel, minutes=15, until=lambda s: False)
    assert final["phase_name"] == "drifted", json.dumps(final["phase"])
    writes = [c for c in world.sb.calls(route="cf.deployments.write") if c["clock_ms"] > drift_at]
    assert writes == [], "the gate never fights a human"
    assert any("human@example.com" in p for p in world.slack_payloads())


def test_slack_down_during_a_rollback_delays_the_alert_not_the_rollback(world):
    rel = world.release("tenant-cache", new={"error_rate": 0.02})
    world.sb.fault("slack", status=500, from_ms=rel.at(1), until_ms=rel.at(15))
    assert world.hook(rel)[0] == 201
    final = world.run(rel, minutes=12)
    assert final["phase_name"] == "rolled back", json.dumps(final["phase"])
    assert world.sb.splits(rel.script)[-1] == [[rel.old, 100]]
    assert not any("Rolling back" in t for t in world.slack()), "Slack is still down"
    world.run(rel, minutes=25, until=lambda s: False)
    assert any("Rolling back" in t for t in world.slack()), "delivered once Slack is back"


def test_a_dead_slack_webhook_is_reported_on_healthz(world):
    rel = world.release("tenant-cache")
    world.sb.fault("slack", status=410)
    assert world.hook(rel)[0] == 201
    world.run(rel, minutes=2, until=lambda s: False)
    status, body = world.gate.get_json("/healthz")
    assert status == 503 and body["slack_webhook"] == "dead", body
    assert any("channel_is_archived" in p for p in body["problems"]), body


def test_a_p95_latency_regression_rolls_back(world):
    rel = world.release("mauntic-gateway", new={"latency_median_ms": 200, "latency_p95_ms": 600})
    assert world.hook(rel)[0] == 201
    final = world.run(rel, minutes=30)
    assert final["phase_name"] == "rolled back", json.dumps(final["phase"])
    assert "latency" in json.dumps(final["phase"]).lower()


@pytest.mark.gate_vars(QUEUE_NAMES="mauntic-events",
                       POLICY=json.dumps({"queue": {"max_depth": 1000, "max_retries_per_minute": 100, "consecutive": 3}}))
def test_a_queue_depth_breach_on_a_consumer_pauses_the_rollout(world):
    rel = world.release("mauntic-consumer", queue={"name": "mauntic-events", "profile": [[0, 10], [14, 5000]]})
    assert world.hook(rel)[0] == 201
    final = world.run(rel, minutes=30, until=lambda s: s["phase_name"] == "paused")
    assert final["phase_name"] == "paused", json.dumps(final["phase"])
    assert final["phase"]["reason"]["pause"] == "queue"


def test_a_dry_run_decides_and_reports_but_never_changes_a_deployment(world):
    rel = world.release("mauntic-gateway")
    status, body = world.hook(rel, dry_run=True)
    assert status == 201 and body["rollout"]["dry_run"] is True
    world.run(rel, minutes=5, until=lambda s: False)
    assert world.splits(rel) == []
    assert world.sb.calls(route="cf.deployments.write") == []
    assert all("dry run" in t for t in world.slack() if "mauntic-gateway" in t), world.slack()


def test_a_canary_healthz_that_stops_answering_rolls_back_after_three_timeouts(world):
    rel = world.release("mauntic-gateway")
    assert world.hook(rel)[0] == 201
    world.run(rel, minutes=2, until=lambda s: False)
    world.sb.fault("targets.healthz", kind="hang", seconds=15)
    final = world.run(rel, minutes=6)
    assert final["phase_name"] == "rolled back", json.dumps(final["phase"])
    assert "healthz" in json.dumps(final["phase"]).lower()
    assert rel.minute <= 2 + 4, "three failed probes in a row, not more"

"""The binding parity audit on the real runtime: the daily cron and `POST /v1/parity` find
the Worker whose live version lacks a required Secrets Store link, and Slack hears it once."""

import json

import pytest

from world import ACCOUNT, MINUTE, new_version

LINK = {"type": "secrets_store_secret", "name": "SLACK_WEBHOOK", "store_id": "mauntic-prod-secrets",
        "secret_name": "slack_webhook_url"}
AE = {"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}


@pytest.mark.gate_vars(AUDIT_SCRIPTS="mauntic-gateway,tenant-cache", REQUIRED_BINDINGS=json.dumps([
    {"kind": "secrets_store_secret", "secret_name": "slack_webhook_url"},
    {"kind": "analytics_engine", "dataset": "mauntic_logs"}]))
def test_a_worker_missing_a_secrets_store_link_is_reported_once(world):
    rel = world.release("mauntic-gateway", bindings=[LINK, AE])
    # mauntic-gateway's live (old) version has no link either: seed it complete.
    broken = new_version()
    world.sb.script(ACCOUNT, "tenant-cache", versions=[{"id": broken, "bindings": [AE]}],
                    deployment={"versions": [{"version_id": broken, "percentage": 100}],
                                "created_on_ms": rel.t0 - 5 * MINUTE})

    world.gate.fire_cron(rel.t0 + 6 * 3_600_000, cron="0 6 * * *")
    status, report = world.gate.api("POST", "/v1/parity")
    assert status == 200, report
    by_script = {f["script"]: f for f in report["findings"]}
    assert by_script["tenant-cache"]["status"] == "gaps"
    assert by_script["tenant-cache"]["missing"] == ["Secrets Store secret `slack_webhook_url`"]
    assert by_script["mauntic-gateway"]["status"] == "gaps", "its live old version lacks the link too"

    audits = world.sb.calls(route="cf.versions", method="GET")
    assert len(audits) == 4, "two audits (the daily cron, then the API) of two Workers"
    posted = [t for t in world.slack() if "parity" in t.lower()]
    assert len(posted) == 1, posted
    assert "tenant-cache" in json.dumps([m["payload"] for m in world.sb.slack_messages()])


"""A rollback Cloudflare refuses until forced, on the real runtime: a secret changed
mid-rollout (`wrangler versions secret put` makes a new version with the change), so
Cloudflare answers 400 with code 10220 when the gate moves traffic back to the stable
version. The gate must re-send the rollback with `?force=true` (as wrangler's own
`rollback` does after asking; cloudflare/workers-sdk packages/wrangler/src/versions/api.ts),
end with the stable version at 100%, name the changed secret in Slack, and never force a
step toward the new version."""

import json

import pytest


def secret_change(world, script: str, name: str) -> None:
    """What `wrangler versions secret put` does: a new, undeployed version with the secret."""
    world.sb.change_secret(script, name, "rotated", deploy=False)


def test_a_rollback_refused_after_a_secret_change_is_forced_and_ends_with_the_stable_version_at_100(world):
    rel = world.release("tenant-cache", new={"error_rate": 0.02})
    assert world.hook(rel)[0] == 201
    world.run(rel, minutes=1, until=lambda s: False)
    secret_change(world, rel.script, "API_KEY")
    final = world.run(rel, minutes=15)
    assert final["phase_name"] == "rolled back", json.dumps(final["phase"])
    assert world.sb.splits(rel.script)[-1] == [[rel.old, 100]]
    writes = world.sb.calls(route="cf.deployments.write")
    refused = [c for c in writes if c["status"] == 400]
    forced = [c for c in writes if "force=true" in (c.get("query") or "")]
    assert refused and all("secrets changed" in c["note"] for c in refused), writes
    assert forced and forced[-1]["status"] == 200, writes
    for call in forced:
        assert rel.new not in json.dumps(call["body"]["versions"]), "a forced write moved traffic forward"
    assert any("API_KEY" in t for t in world.slack_payloads()), "Slack names the changed secret"


@pytest.mark.gate_vars(ROLLBACK_WHEN_SECRETS_CHANGED="pause")
def test_with_the_pause_setting_a_refused_rollback_is_never_forced_and_slack_says_why(world):
    rel = world.release("tenant-cache", new={"error_rate": 0.02})
    assert world.hook(rel)[0] == 201
    world.run(rel, minutes=1, until=lambda s: False)
    secret_change(world, rel.script, "API_KEY")
    world.run(rel, minutes=12, until=lambda s: False)
    writes = world.sb.calls(route="cf.deployments.write")
    assert not [c for c in writes if "force=true" in (c.get("query") or "")], writes
    assert [c for c in writes if c["status"] == 400], "Cloudflare refused the rollback"
    assert any("API_KEY" in t for t in world.slack_payloads()), "Slack names the changed secret"
    assert world.sb.splits(rel.script)[-1] != [[rel.old, 100]], "nothing forced the stable version back"

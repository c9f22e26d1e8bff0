"""Audit-log retention on the real runtime: the Durable Object's SQL prunes the rows of
rollouts past `AUDIT_KEEP_ROLLOUTS` when a new one starts (docs/deploy.md)."""

import pytest

pytestmark = pytest.mark.gate_vars(AUDIT_KEEP_ROLLOUTS="1")


def test_a_new_rollout_prunes_the_audit_log_of_the_ones_past_the_retention(world):
    first = world.release("prune-me", rps=50)
    assert world.hook(first)[0] == 201
    world.tick(first)
    status, body = world.gate.api("POST", "/v1/rollouts/prune-me/abort", {"by": "e2e", "reason": "retention"})
    assert status == 200, body
    world.run(first, minutes=5)
    assert {row["event"]["version_id"] for row in world.events(first)} == {first.new}

    # CI uploads another version of the same script and calls the hook again.
    again = world.sb.upload_version("prune-me")["id"]
    hook = {"script": "prune-me", "version_id": again, "git_sha": first.git_sha}
    status, body = world.gate.api("POST", "/v1/rollouts", hook)
    assert status == 201, body
    versions = {row["event"]["version_id"] for row in world.events(first)}
    assert versions == {again}, "the first rollout's rows went when the second started"

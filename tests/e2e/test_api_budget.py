"""A deploy hook waits for the account's Cloudflare API budget: with the budget set small
(`API_CALLS_PER_5_MIN`), hooks start rollouts while the running ones keep their reserve,
then one is answered 503 `api_budget_in_use` with `Retry-After`, starts nothing and leaves
no trace; the calls the gate made stay within the budget."""

import pytest

BUDGET = 30


@pytest.mark.gate_vars(API_CALLS_PER_5_MIN=str(BUDGET))
def test_a_hook_that_would_eat_the_running_rollouts_reserve_is_told_to_retry_and_starts_nothing(world):
    first = world.release("budget-0")
    answers = []
    for i in range(8):
        rel = first if i == 0 else world.release(f"budget-{i}", t0=first.t0, reset=False)
        status, headers, body = world.hook_exchange(rel)
        answers.append((rel, status, headers, body))
        if status == 503:
            break
    started = [a for a in answers if a[1] == 201]
    rel, status, headers, body = answers[-1]
    assert len(started) >= 2, [(a[0].script, a[1], a[3]) for a in answers]
    assert status == 503, [(a[0].script, a[1], a[3]) for a in answers]
    assert body["error"]["code"] == "api_budget_in_use"
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= 310
    assert f"retry after {retry_after} s" in body["error"]["message"]
    assert f"of {BUDGET} calls" in body["error"]["message"]

    # Nothing of the refused start exists: no rollout, no deployment written, not ticked.
    status, _ = world.gate.api("GET", f"/v1/rollouts/{rel.script}")
    assert status == 404
    assert [d for d in world.sb.deployments(rel.script) if d["created_on_ms"] >= rel.t0] == []
    status, health = world.gate.get_json("/healthz")
    assert status == 200
    assert health["cloudflare_api"]["calls_last_5_min"] <= BUDGET, health["cloudflare_api"]
    assert world.sb.rate_limit()["max_sent_per_window"] <= BUDGET

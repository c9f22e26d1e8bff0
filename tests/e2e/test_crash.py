"""Crash recovery on the real runtime: workerd is SIGKILLed at a chosen point of a tick and
`wrangler dev` restarts on the same --persist-to state; the rollout must end as an
uninterrupted run of the same release does (same phase, same live split, same audit
transitions, no audit gap or duplicate), and Slack must see each message once, except
where the one honest limit applies (see `test_slack_killed_after_it_accepted_*`).

Kill points (issue 17 §2), each made exact by a sandbox `hold` fault that blocks the
gate's request until workerd is dead, then drops it:
  before_write  the deployment POST is held before the sandbox applies it
  after_write   the deployment POST is applied, its answer held (the state save after the
                write never happens)
  slack_before  the outbox flush's webhook POST is held before Slack records it
  slack_after   Slack recorded and accepted the message; its answer is held
and, once, the deploy hook itself (it writes the first step before it answers), killed
while its Slack flush is held.

Each scenario is compared with one uninterrupted run of the same release on the same
sandbox (traffic is keyed to the release's start, so both runs see the same requests).

What makes recovery possible is a platform promise this file checks on workerd rather
than takes on trust: a Durable Object holds back an outgoing request until the storage
writes made before it are durable (output gates), and writes made without an await in
between commit together (https://blog.cloudflare.com/durable-objects-easy-fast-correct-choose-three/).
So when the sandbox sees a request of the gate, the state saved before it is on disk.

Measured Slack limits (Slack's incoming-webhook documentation,
https://api.slack.com/messaging/webhooks, describes no idempotency key): a kill after Slack accepted a message repeats
that message (asserted as measured); a kill while a later message of the same flush is in
flight repeats nothing, since each answer is stored before the next post.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from gate import Gate
from world import InFlight, World, gate_vars

SCENARIOS: dict[str, dict[str, Any]] = {
    # A healthy release: 10% -> 50% -> 100%, bake, completed. The kill targets the 50% step
    # (the write annotated "step 2/3", the Slack message announcing it).
    "healthy": {"script": "mauntic-gateway", "new": {}, "end": "completed", "minutes": 80,
                "write": "step 2/3", "slack": "step 2/3"},
    # A five-fold 5xx regression: rolled back. The kill targets the rollback write and the
    # "Rolling back" message.
    "regression": {"script": "tenant-cache", "new": {"error_rate": 0.005}, "end": "rolled back",
                   "minutes": 40, "write": "rollback of", "slack": "Rolling back"},
}
KILL_POINTS: dict[str, dict[str, Any]] = {
    # `writes`: the sandbox's answers to the targeted deployment write, in order (None =
    # dropped by the hold). Before: dropped unapplied, re-sent once the pending write is
    # due again (2 minutes on). After: applied once; the restarted gate's read of the live
    # deployment confirms it, so it is never sent again.
    "before_write": {"route": "cf.deployments.write", "stage": "before", "target": "write",
                     "writes": [None, 200]},
    "after_write": {"route": "cf.deployments.write", "stage": "after", "target": "write",
                    "writes": [None]},
    "slack_before": {"route": "slack", "stage": "before", "target": "slack", "writes": [200]},
    "slack_after": {"route": "slack", "stage": "after", "target": "slack", "writes": [200]},
}
TIMINGS: list[str] = []  # printed at the end of the module (pytest -s) and kept for the report


def uuid_free(text: str, rel) -> str:
    """A Slack text with the run's own version ids replaced, so two runs compare (the
    headlines carry no times or measured numbers)."""
    return text.replace(rel.new, "<new>").replace(rel.old, "<old>").replace(rel.git_sha, "<sha>")


def outcome(world: World, rel) -> dict[str, Any]:
    """What a finished run left behind, in terms two runs of the same release share."""
    role = {rel.new: "new", rel.old: "old"}
    rows = world.events(rel)
    messages = [m for m in world.sb.slack_messages() if m.get("accepted")]
    return {
        "phase": world.status(rel)["phase_name"],
        "live": [[role[v], p] for v, p in world.sb.splits(rel.script)[-1]],
        "splits": [[[role[v], p] for v, p in s] for s in world.sb.splits(rel.script)[1:]],
        "seqs": [r["seq"] for r in rows],
        "transitions": [transition(r["event"]) for r in rows if r["event"]["kind"]["kind"] != "tick"],
        "ticks": sum(1 for r in rows if r["event"]["kind"]["kind"] == "tick"),
        "slack": [uuid_free(m["payload"].get("text", ""), rel) for m in messages],
    }


def transition(event: dict[str, Any]) -> str:
    """`kind` or `kind(step)` of an audit event."""
    kind = event["kind"]
    return kind["kind"] + (f"({kind['step']})" if "step" in kind else "")


def finished(status: dict[str, Any]) -> bool:
    """Terminal, and Slack has every message (what ends the registry's ticks)."""
    return status["terminal"] and status["slack"]["pending"] == 0


def run_release_unhooked(world: World, scenario: str) -> Any:
    """The scenario's script, old version live, new version uploaded; no hook yet."""
    spec = SCENARIOS[scenario]
    return world.release(spec["script"], rps=50, new=spec["new"])


def run_release(world: World, scenario: str) -> Any:
    rel = run_release_unhooked(world, scenario)
    status, body = world.hook(rel)
    assert status == 201, body
    return rel


@pytest.fixture(scope="module")
def baselines(sandbox):
    """The uninterrupted run of each scenario (computed once, on first use)."""
    done: dict[str, dict[str, Any]] = {}

    def get(scenario: str) -> dict[str, Any]:
        if scenario not in done:
            started = time.monotonic()
            with Gate(extra_vars=gate_vars(sandbox.base)) as gate:
                world = World(sandbox.client, gate)
                rel = run_release(world, scenario)
                final = world.run(rel, minutes=SCENARIOS[scenario]["minutes"], until=finished)
                assert finished(final), final
                done[scenario] = outcome(world, rel)
            TIMINGS.append(f"baseline {scenario}: {time.monotonic() - started:.1f}s, "
                           f"{rel.minute} ticks")
        return done[scenario]

    yield get
    print("\n" + "\n".join(TIMINGS))


def crash_run(world: World, scenario: str, kill_point: str,
              contains: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One release with one crash at `kill_point`, run to its end. The hold catches the
    request whose body holds the scenario's target string (or `contains`)."""
    spec, kill = SCENARIOS[scenario], KILL_POINTS[kill_point]
    started = time.monotonic()
    rel = run_release(world, scenario)
    hold = world.sb.hold(kill["route"], kill["stage"], then="drop",
                         contains=contains or spec[kill["target"]])
    crash = world.crash_on_hold(rel, hold["id"], minutes=spec["minutes"])
    # Cron keeps firing after the end while the outbox holds messages (the registry drops
    # a rollout from the fan-out only once it reports terminal with an empty outbox), so
    # the harness does too: a tick killed at the end leaves its messages for the next one.
    final = world.run(rel, minutes=spec["minutes"], until=finished)
    assert finished(final), json.dumps({"phase": final["phase"], "slack": final["slack"]})
    result = outcome(world, rel)
    result["held_calls"] = [c for c in world.sb.calls(route=kill["route"])
                            if (c.get("note") or "").startswith(f"fault {hold['id']}:")]
    target = [c for c in world.sb.calls(route="cf.deployments.write") if spec["write"] in json.dumps(c.get("body"))]
    result["target_writes"] = [c["status"] for c in target]
    TIMINGS.append(f"{scenario}/{kill_point}: killed at minute {crash['minute']}, restart "
                   f"{crash['restart_s']:.1f}s, whole run {time.monotonic() - started:.1f}s, "
                   f"{rel.minute} ticks")
    return result, crash


def assert_killed_where_meant(got: dict[str, Any], kill_point: str) -> None:
    """The crash hit the request it was aimed at, at the stage it was aimed at."""
    kill = KILL_POINTS[kill_point]
    assert len(got["held_calls"]) == 1 and got["held_calls"][0]["status"] is None, got["held_calls"]
    stage = "never applied" if kill["stage"] == "before" else "applied, answer lost"
    assert stage in got["held_calls"][0]["note"]
    assert got["target_writes"] == kill["writes"], got["target_writes"]


def assert_same_end(base: dict[str, Any], got: dict[str, Any]) -> None:
    """Same phase, same live split, same deployments written, same audit transitions, an
    audit log without gap or duplicate row."""
    assert got["phase"] == base["phase"]
    assert got["live"] == base["live"]
    assert got["splits"] == base["splits"], "each split written once, as uninterrupted"
    assert got["seqs"] == list(range(1, len(got["seqs"]) + 1)), "audit rows without a gap"
    assert got["transitions"] == base["transitions"], "every transition once, in order"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kill_point", ["before_write", "after_write", "slack_before"])
def test_a_tick_killed_mid_flight_ends_as_the_uninterrupted_run_with_slack_once(
        world, baselines, scenario, kill_point):
    base = baselines(scenario)
    assert base["phase"] == SCENARIOS[scenario]["end"], base
    got, crash = crash_run(world, scenario, kill_point)
    assert crash["workerd"], "a workerd process was killed"
    assert_killed_where_meant(got, kill_point)
    assert_same_end(base, got)
    assert sorted(got["slack"]) == sorted(base["slack"]) and len(got["slack"]) == len(set(got["slack"])), \
        "Slack saw every message of the uninterrupted run, each once"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_slack_killed_after_it_accepted_a_message_shows_that_message_twice_and_nothing_else_differs(
        world, baselines, scenario):
    """The limit of at-least-once delivery: Slack accepted the message, the gate died
    before saving that it had, so the restarted gate sends it again. Slack incoming
    webhooks take no idempotency key, so Slack shows it twice. Every other message once."""
    base = baselines(scenario)
    got, crash = crash_run(world, scenario, "slack_after")
    assert_killed_where_meant(got, "slack_after")
    assert_same_end(base, got)
    counts = Counter(got["slack"])
    twice = [text for text, n in counts.items() if n == 2]
    assert len(twice) == 1 and SCENARIOS[scenario]["slack"] in twice[0], counts
    assert all(n <= 2 for n in counts.values()), counts
    assert sorted(set(got["slack"])) == sorted(base["slack"]), "nothing lost"


def test_a_kill_before_slack_records_the_second_message_of_a_flush_repeats_none(world, baselines):
    """The rollback tick flushes two messages ("Rolling back", then "Rolled back"); the
    gate is killed while the second is held, before Slack records it. Slack had accepted
    the first and the outbox stored that answer before the second post went out (the
    output gate holds the post until the save is durable), so nothing is sent twice.
    (Measured before main's per-message save: "Rolling back" twice.)"""
    base = baselines("regression")
    got, crash = crash_run(world, "regression", "slack_before", contains="Rolled back")
    assert_killed_where_meant(got, "slack_before")
    assert_same_end(base, got)
    assert sorted(got["slack"]) == sorted(base["slack"]), Counter(got["slack"])


def test_a_deploy_hook_killed_after_it_moved_traffic_is_still_ticked_without_a_retry(world, baselines):
    """The hook itself runs pre-flight and writes the first step (10%) before it answers.
    Killed while its Slack flush is in flight, the gate has moved traffic but the hook's
    caller saw no answer; cron must watch the rollout anyway (before the fix the registry
    learnt of the script only after the start, so nothing ticked it until the hook was
    retried, with 10% of traffic on the new version unwatched)."""
    base = baselines("healthy")
    rel = run_release_unhooked(world, "healthy")
    hold = world.sb.hold("slack", "before", then="drop", contains="started")
    hook = InFlight(lambda: world.hook(rel))
    world.sb.wait_held(hold["id"], timeout_s=60)
    assert world.gate.crash(), "a workerd process was killed"
    world.sb.release(hold["id"])
    assert hook.done(timeout_s=30) and hook.error is not None, "the hook's caller saw no answer"
    world.gate.restart()
    assert world.status(rel)["live_split"][0]["percent"] == 10.0, "traffic had moved"
    final = world.run(rel, minutes=SCENARIOS["healthy"]["minutes"], until=finished)  # no retry
    assert finished(final), json.dumps({"phase": final["phase"], "slack": final["slack"]})
    got = outcome(world, rel)
    assert_same_end(base, got)
    assert sorted(got["slack"]) == sorted(base["slack"]), Counter(got["slack"])

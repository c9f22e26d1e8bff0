"""Slack actions on the real runtime (issue 20, part 4): the sandbox plays the Slack app,
clicking the buttons of an alert the gate posted, signed as Slack signs (HMAC-SHA256 over
`v0:{timestamp}:{body}`); the gate checks the signature in WebCrypto, the window both ways,
replays, the allow-list and its scopes, and whether the button's rollout still runs. Every
refusal has its status and code and leaves the rollout as it was (phase and audit log);
a good click pauses the rollout as `slack:<user id>` and says so in the alert's thread."""

import json
import time

import pytest

SECRET = "e2e-slack-signing-secret-8f742231b10e8888"
OPERATOR, READER, STRANGER = "U0OPERATOR1", "U0READER01", "U0STRANGER1"
OPERATORS = json.dumps({OPERATOR: ["operate", "read"], READER: ["read"]})


def wait_for(fn, what: str, timeout_s: float = 60):
    """Polls `fn` until it returns something truthy (the gate acts after answering Slack)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout_s} s")


def alert_with_buttons(world) -> dict:
    """The newest accepted message that carries the gate's buttons."""
    for m in reversed(world.sb.slack_messages()):
        blocks = (m.get("payload") or {}).get("blocks") or []
        if m.get("accepted") and any(b.get("type") == "actions" for b in blocks):
            return m
    raise AssertionError("no alert with buttons")


def state(world, rel) -> tuple[str, int]:
    return world.status(rel)["phase_name"], len(world.events(rel))


def replies(world) -> list[dict]:
    return [r for r in world.sb.slack_responses() if r["status"] == 200]


@pytest.mark.gate_vars(SLACK_SIGNING_SECRET=SECRET, SLACK_OPERATORS=OPERATORS)
def test_clicks_are_verified_refused_by_name_and_a_good_one_pauses_as_the_slack_user(world):
    rel = world.release("mauntic-gateway", rps=50)  # resets the sandbox, app settings too
    world.sb.slack_app(f"{world.gate.base}/slack/actions", SECRET)
    status, body = world.hook(rel)
    assert status == 201, body
    running = world.tick(rel)
    assert running["phase_name"] == "ramping", running["phase_name"]
    message = alert_with_buttons(world)
    actions = next(b for b in message["payload"]["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == ["pause", "resume", "promote", "abort"]
    assert message["payload"]["text"], "a top-level text fallback"
    assert actions["elements"][3]["style"] == "danger" and actions["elements"][3]["confirm"]

    def click(**options):
        return world.sb.slack_click(message_seq=message["seq"], **options)

    before = state(world, rel)
    table = [
        (dict(action_id="pause", user_id=OPERATOR, bad_signature=True), 401, "slack_bad_signature"),
        (dict(action_id="pause", user_id=OPERATOR, shift_s=-301), 401, "slack_stale"),
        (dict(action_id="pause", user_id=OPERATOR, shift_s=301), 401, "slack_stale"),
        (dict(action_id="pause", user_id=STRANGER), 403, "slack_unknown_user"),
        (dict(action_id="abort", user_id=READER), 403, "missing_scope"),
    ]
    for options, want_status, want_code in table:
        answer = click(**options)
        assert answer["status"] == want_status, (options, answer)
        assert json.loads(answer["answer"])["error"]["code"] == want_code, (options, answer)
        assert state(world, rel) == before, f"{options} changed the rollout"
    # The two refused after verification are told in the thread; the unverified ones not.
    told = wait_for(lambda: len(replies(world)) >= 2 and replies(world), "refusal replies")
    assert len(told) == 2, told
    texts = " | ".join(r["payload"]["text"] for r in told)
    assert f"Slack user {STRANGER} is not in SLACK_OPERATORS" in texts, texts
    assert f"slack:{READER} lacks scope 'operate'" in texts, texts
    assert all(r["payload"]["thread_ts"] == message["ts"] for r in told)

    good = click(action_id="pause", user_id=OPERATOR)
    assert (good["status"], good["answer"]) == (200, ""), good
    paused = wait_for(lambda: world.status(rel)["phase_name"] == "paused" and world.status(rel), "pause")
    assert paused["phase_name"] == "paused"
    reply = wait_for(lambda: [r for r in replies(world) if "ran *pause*" in r["payload"]["text"]], "thread reply")[0]
    assert f"slack:{OPERATOR}" in reply["payload"]["text"] and "`paused`" in reply["payload"]["text"]
    assert reply["payload"]["thread_ts"] == message["ts"] and reply["payload"]["replace_original"] is False
    assert any(f"slack:{OPERATOR}" in json.dumps(row) for row in world.events(rel)), "the audit log names the user"

    after_pause = state(world, rel)
    replay = world.sb.slack_click(resend=good["click_id"])
    assert replay["status"] == 409 and json.loads(replay["answer"])["error"]["code"] == "slack_replay", replay
    assert state(world, rel) == after_pause

    # The rollout ends (aborted through the API); its alert's buttons no longer apply.
    status, body = world.gate.api("POST", f"/v1/rollouts/{rel.script}/abort", {})
    assert status == 200, body
    assert world.run(rel, minutes=10)["terminal"]
    ended = state(world, rel)
    last = [m for m in world.sb.slack_messages() if m.get("accepted")][-1]
    assert not any(b["type"] == "actions" for b in last["payload"]["blocks"]), "no buttons once it has ended"
    stale = click(action_id="resume", user_id=OPERATOR)
    assert stale["status"] == 409 and json.loads(stale["answer"])["error"]["code"] == "rollout_ended", stale
    assert state(world, rel) == ended
    wait_for(lambda: [r for r in replies(world) if "has ended" in r["payload"]["text"]], "ended reply")


def test_without_the_signing_secret_and_operators_alerts_have_no_buttons_and_the_route_is_off(world):
    rel = world.release("mauntic-gateway", rps=50)
    status, body = world.hook(rel)
    assert status == 201, body
    world.tick(rel)
    messages = [m for m in world.sb.slack_messages() if m.get("accepted")]
    assert messages
    assert not any(b.get("type") == "actions" for m in messages for b in m["payload"].get("blocks") or [])
    status, raw = world.gate.request("POST", "/slack/actions", body=b"payload=%7B%7D",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert status == 404, raw

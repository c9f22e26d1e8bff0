"""Smoke test on the real runtime: the Worker boots in workerd, answers /healthz with its
build identity, and cron ticks reach the registry Durable Object exactly once per minute."""

import json

T0 = 1_795_773_600_000  # 2026-11-27T10:00:00Z
MINUTE = 60_000


def test_healthz_reports_build_identity_and_an_empty_ledger(gate):
    status, body = gate.get_json("/healthz")
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["build"]["service"] == "rollout-gate"
    assert body["build"]["version"]
    assert len(body["build"]["git_sha"]) in (40, len("unknown"))
    assert body["environment"] == "dev"
    assert body["cron"]["ticks"] == 0


def test_healthz_serves_the_alpha_budget_of_the_configured_policy(gate):
    _, body = gate.get_json("/healthz")
    budget = body["alpha_budget"]
    rows = {r["row"]: r for r in budget["rows"]}
    assert len(rows) == 13 and {"errors_split_history", "errors_split_onset"} <= rows.keys(), rows.keys()
    total = sum(r["alpha"] for r in budget["rows"]) + budget["unallocated"]
    assert abs(total - budget["alpha"]) < 1e-12, budget
    assert {g["name"] for g in budget["guards"]} >= {"5xx ceiling", "p95 ceiling", "drift check"}


def test_two_cron_ticks_advance_the_registry_ledger_and_a_redelivery_does_not(gate):
    gate.fire_cron(T0 + 5_000)
    gate.fire_cron(T0 + MINUTE + 5_000)
    _, body = gate.get_json("/healthz")
    assert body["cron"]["ticks"] == 2
    assert body["cron"]["last_minute"] == T0 + MINUTE  # the scheduled time, not the wall clock

    gate.fire_cron(T0 + MINUTE + 30_000)  # same minute delivered again
    _, body = gate.get_json("/healthz")
    assert body["cron"]["ticks"] == 2
    assert body["cron"]["duplicates"] == 1


def test_unknown_route_is_a_json_404(gate):
    status, raw = gate.get("/no/such/route")
    assert status == 404
    assert json.loads(raw) == {"error": {"code": "not_found", "message": "no route GET /no/such/route"}}

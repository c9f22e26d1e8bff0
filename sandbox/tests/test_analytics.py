"""The stand-in Analytics Engine SQL API end to end: chdb executes the gate's two queries
over generated points and the numbers match the model; sampling weights; the JSON shape;
rejections; faults (SQL error, slow, late data); clock-driven determinism."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from .conftest import ACCT, T0, V_NEW, V_OLD, Client, seed_gateway
from .test_aesql import DOCUMENTED

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/analytics"
T0_S = T0 // 1000


def http_query(start_s: int, end_s: int) -> str:
    sql = (FIXTURES / "http_query.sql").read_text()
    return sql.replace("1795773600", str(start_s)).replace("1795773780", str(end_s))


def queue_query(start_s: int, end_s: int, queues: str = "'mauntic-events', 'o\\'brien'") -> str:
    sql = (FIXTURES / "queue_query.sql").read_text()
    sql = sql.replace("'mauntic-events', 'o\\'brien'", queues)
    return sql.replace("1795773600", str(start_s)).replace("1795773780", str(end_s))


def start_canary(sb: Client, scenario: dict, pct: float = 10) -> None:
    """V_OLD live since T0; the gate's first step (V_NEW at `pct`) also at T0."""
    seed_gateway(sb, scenario)
    a = sb.cf("POST", "/mauntic-gateway/deployments", {"strategy": "percentage", "versions": [
        {"version_id": V_NEW, "percentage": pct}, {"version_id": V_OLD, "percentage": 100 - pct}]})
    assert a.status == 200


def totals(data: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for row in data:
        t = out.setdefault(row["version"], {"requests": 0, "errors_5xx": 0, "stored_rows": 0, "slow": 0,
                                            "error_rows": 0, "slow_rows": 0})
        for k in t:
            t[k] += int(row[k])
    return out


def test_gate_http_query_runs_and_counts_match_the_model(sb: Client):
    start_canary(sb, {"rps": 20, "seed": 11, "versions": {
        V_NEW: {"error_rate": 0.05, "latency_median_ms": 100, "latency_p95_ms": 300},
        V_OLD: {"error_rate": 0.01, "latency_median_ms": 50, "latency_p95_ms": 150}}})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 30 * 60_000})
    a = sb.sql(http_query(T0_S, T0_S + 1800))
    assert a.status == 200 and a.headers["content-type"].startswith("application/json")
    body = a.json()
    assert [m["name"] for m in body["meta"]] == ["version", "minute", "requests", "errors_5xx", "slow",
                                                 "very_slow", "approaching", "p95_ms", "stored_rows",
                                                 "error_rows", "slow_rows"]
    assert all(int(r["very_slow"]) <= int(r["slow"]) <= int(r["approaching"]) for r in body["data"])
    assert body["rows"] == 60 == len(body["data"])
    first = body["data"][0]
    assert first["minute"] == str(T0_S) and isinstance(first["requests"], str)  # 64-bit ints quoted
    assert isinstance(first["p95_ms"], float)
    t = totals(body["data"])
    for vid, share, err in ((V_NEW, 0.1, 0.05), (V_OLD, 0.9, 0.01)):
        n = 20 * 1800 * share
        assert abs(t[vid]["requests"] - n) < 5 * math.sqrt(n), (vid, t[vid])
        assert t[vid]["stored_rows"] == t[vid]["requests"]
        assert (t[vid]["error_rows"], t[vid]["slow_rows"]) == (t[vid]["errors_5xx"], t[vid]["slow"])
        assert abs(t[vid]["errors_5xx"] - n * err) < 5 * math.sqrt(n * err) + 3
    p95_new = sorted(r["p95_ms"] for r in body["data"] if r["version"] == V_NEW)
    assert 220 < p95_new[len(p95_new) // 2] < 400


def test_sample_interval_weights_counts_not_rows(sb: Client):
    start_canary(sb, {"rps": 40, "seed": 2, "sample_interval": 10}, pct=50)
    sb.ctl("POST", "/clock", {"now_ms": T0 + 20 * 60_000})
    t = totals(sb.sql(http_query(T0_S, T0_S + 1200)).json()["data"])
    for vid in (V_NEW, V_OLD):
        n = 40 * 1200 * 0.5
        assert abs(t[vid]["requests"] - n) < 5 * 10 * math.sqrt(n / 10)
        assert t[vid]["requests"] == 10 * t[vid]["stored_rows"]
        assert t[vid]["errors_5xx"] == 10 * t[vid]["error_rows"] and t[vid]["slow"] == 10 * t[vid]["slow_rows"]


def test_gate_queue_query_on_a_consumer(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": "mauntic-consumer",
                                "deployment": {"created_on_ms": T0},
                                "scenario": {"rps": 0, "queue": {"name": "o'brien", "depth": 100,
                                                                 "depth_per_min": 10, "retries_per_min": 4}}})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 3 * 60_000})
    body = sb.sql(queue_query(T0_S, T0_S + 180)).json()
    assert [(r["queue"], r["minute"], r["max_depth"], r["points"]) for r in body["data"]] == [
        ("o'brien", str(T0_S + 60 * i), 110 + 10 * i, "2") for i in range(3)]
    assert all(isinstance(r["retries"], (int, float)) for r in body["data"])


def test_rejections_and_auth(sb: Client):
    seed_gateway(sb, {"rps": 1})
    join = sb.sql("SELECT * FROM mauntic_logs a JOIN mauntic_logs b ON a.index1 = b.index1")
    assert join.status == 422 and "JOIN" in join.text
    union = sb.sql("SELECT 1 FROM mauntic_logs UNION ALL SELECT 1 FROM mauntic_logs")
    assert union.status == 422 and "UNION" in union.text
    assert "unknown dataset" in sb.sql("SELECT count() FROM health_metrics").text
    bad_fn = sb.sql("SELECT quantileExactWeightd(0.5)(double2, _sample_interval) FROM mauntic_logs")
    assert bad_fn.status == 422 and "quantileExactWeightd" in bad_fn.text and "points" not in bad_fn.text
    assert sb.sql("SELECT 1", token="nope").status == 401


def test_the_sql_endpoint_answers_a_malformed_authorization_header_as_the_v4_api_does(sb: Client):
    answer = sb.call("POST", f"/client/v4/accounts/{ACCT}/analytics_engine/sql", raw=b"SELECT 1",
                     headers={"Authorization": "Token abc", "Content-Type": "text/plain"})
    assert answer.status == 400, answer.text
    error = json.loads(answer.text)["errors"][0]
    assert error["code"] == 6003 and error["error_chain"][0]["code"] == 6111


def test_ae_only_spellings_and_now_follow_the_sandbox_clock(sb: Client):
    start_canary(sb, {"rps": 5, "seed": 1})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 10 * 60_000})
    body = sb.sql("SELECT toUnixTimestamp(now()) AS t, SUM(_sample_interval) AS n, "
                  "quantileWeighted(0.5, double2, _sample_interval) AS p50 FROM mauntic_logs "
                  "WHERE timestamp >= now() - INTERVAL '5' MINUTE").json()
    row = body["data"][0]
    assert int(row["t"]) == T0_S + 600 and 900 < int(row["n"]) < 2100 and row["p50"] > 0


def test_sql_error_fault_for_k_calls_then_recovery(sb: Client):
    start_canary(sb, {"rps": 2})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 5 * 60_000})
    sb.ctl("POST", "/faults", {"route": "analytics", "status": 500, "count": 2})
    assert [sb.sql(http_query(T0_S, T0_S + 300)).status for _ in range(3)] == [500, 500, 200]
    sb.ctl("POST", "/faults", {"route": "analytics", "status": 429, "retry_after": 30, "count": 1})
    a = sb.sql(http_query(T0_S, T0_S + 300))
    assert a.status == 429 and a.headers["retry-after"] == "30"


def test_slow_sql(sb: Client):
    start_canary(sb, {"rps": 1})
    sb.ctl("POST", "/faults", {"route": "analytics", "kind": "slow", "seconds": 0.6, "count": 1})
    t = time.monotonic()
    assert sb.sql(http_query(T0_S, T0_S + 60)).status == 200
    assert time.monotonic() - t >= 0.6


def test_late_data_hides_the_newest_minutes(sb: Client):
    start_canary(sb, {"rps": 5})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 10 * 60_000})
    sb.ctl("POST", "/faults", {"route": "analytics", "kind": "late_data", "minutes": 3})
    minutes = {int(r["minute"]) for r in sb.sql(http_query(T0_S, T0_S + 600)).json()["data"]}
    assert max(minutes) == T0_S + 6 * 60
    sb.call("DELETE", "/_sandbox/faults")
    minutes = {int(r["minute"]) for r in sb.sql(http_query(T0_S, T0_S + 600)).json()["data"]}
    assert max(minutes) == T0_S + 9 * 60


def test_only_whole_minutes_before_the_clock_exist(sb: Client):
    start_canary(sb, {"rps": 5})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 150_000})
    minutes = {int(r["minute"]) for r in sb.sql(http_query(T0_S, T0_S + 600)).json()["data"]}
    assert minutes == {T0_S, T0_S + 60}


def test_generation_is_deterministic_however_the_clock_is_stepped(sb: Client):
    scenario = {"rps": 10, "seed": 42, "versions": {V_NEW: {"error_rate": 0.2}}}
    start_canary(sb, scenario)
    sb.ctl("POST", "/clock", {"now_ms": T0 + 8 * 60_000})
    one_jump = sb.sql(http_query(T0_S, T0_S + 480)).json()["data"]

    sb.ctl("POST", "/reset", {"now_ms": T0})
    sb.ctl("POST", "/accounts", {"account_id": ACCT, "api_token": "api-token-1", "analytics_token": "ae-token-1"})
    start_canary(sb, scenario)
    for m in range(1, 9):
        sb.ctl("POST", "/clock", {"now_ms": T0 + m * 60_000})
        sb.sql(http_query(T0_S, T0_S + 60 * m))
    assert sb.sql(http_query(T0_S, T0_S + 480)).json()["data"] == one_jump


def test_scenario_change_mid_run_and_the_immutable_past(sb: Client):
    start_canary(sb, {"rps": 20, "seed": 3, "versions": {V_NEW: {"error_rate": 0.0}}}, pct=50)
    sb.ctl("POST", "/clock", {"now_ms": T0 + 5 * 60_000})
    sb.sql(http_query(T0_S, T0_S + 300))  # minutes 0-4 are now fixed
    late = sb.call("PATCH", "/_sandbox/scripts/mauntic-gateway/scenario",
                   {"from_ms": T0, "versions": {V_NEW: {"error_rate": 0.5}}})
    assert late.status == 409
    assert sb.call("POST", "/_sandbox/clock", {"now_ms": T0}).status == 409
    sb.ctl("PATCH", "/scripts/mauntic-gateway/scenario", {"versions": {V_NEW: {"error_rate": 0.5}}})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 10 * 60_000})
    rows = [r for r in sb.sql(http_query(T0_S, T0_S + 600)).json()["data"] if r["version"] == V_NEW]
    before = sum(int(r["errors_5xx"]) for r in rows if int(r["minute"]) < T0_S + 300)
    after = sum(int(r["errors_5xx"]) for r in rows if int(r["minute"]) >= T0_S + 300)
    assert before == 0 and after > 500


def test_stats_and_explicit_generation(sb: Client):
    start_canary(sb, {"rps": 10})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 10 * 60_000})
    gen = sb.ctl("POST", "/analytics/generate")
    assert gen["minutes"] == 10 and 5000 < gen["rows"] < 7000
    groups = sb.ctl("GET", "/analytics/stats")["groups"]
    assert {g["version"] for g in groups} == {V_NEW, V_OLD}


@pytest.mark.parametrize("sql", DOCUMENTED)
def test_every_documented_query_shape_runs_in_chdb(sb: Client, sql: str):
    """The allow-list accepts nothing chdb cannot run: an accepted query never turns into
    the sandbox's own SQL error."""
    seed_gateway(sb, {"rps": 2})
    sb.ctl("POST", "/clock", {"now_ms": T0 + 3 * 60_000})
    a = sb.sql(sql)
    assert a.status == 200, a.text


def test_an_undocumented_function_is_refused_with_422_before_chdb_sees_it(sb: Client):
    seed_gateway(sb, {"rps": 1})
    before = sb.ctl("GET", "/analytics/stats")["queries"]
    a = sb.sql("SELECT uniqExact(index1) FROM mauntic_logs")  # chdb would run it
    assert a.status == 422 and "unknown function uniqExact" in a.text
    assert sb.ctl("GET", "/analytics/stats")["queries"] == before

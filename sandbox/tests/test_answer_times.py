"""Answer times: off by default; the `real` profile's figures per route class, drawn
uniformly within ±30% from a seeded hash of the request; the wait happens outside every
lock, so a slow answer never holds up another request."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from sandbox.answer_times import AnswerTimes, parse_answer_times

from .conftest import T0, Client, seed_gateway

GW = "/mauntic-gateway"


@pytest.fixture
def timed(sb: Client) -> Iterator[Client]:
    """The sandbox with answer times switched on by the test (off again afterwards)."""
    try:
        yield sb
    finally:
        sb.ctl("POST", "/answer_times", {"profile": "off"})


def test_answer_times_are_off_by_default():
    assert AnswerTimes().delay_s("analytics", "POST", "/x", "", b"SELECT 1", T0) == 0.0


def test_the_real_profile_names_each_service_and_matches_the_longest_route_prefix():
    real = parse_answer_times({"profile": "real"})
    assert real.median_ms("analytics") == 300 and real.median_ms("targets.healthz") == 100
    assert real.median_ms("cf.deployments.write") == 150 and real.median_ms("cf.unknown") == 150
    assert real.median_ms("slack") == 50 and real.median_ms("control") is None
    tuned = parse_answer_times({"profile": "real", "medians_ms": {"cf.deployments.write": 400}})
    assert tuned.median_ms("cf.deployments.write") == 400 and tuned.median_ms("cf.versions") == 150


def test_draws_stay_within_the_jitter_and_are_the_same_for_the_same_request_and_seed():
    real = parse_answer_times({"profile": "real"}, seed=3)
    draws = [real.delay_s("analytics", "POST", "/sql", "", f"SELECT {i}".encode(), T0) for i in range(400)]
    assert all(0.21 <= d <= 0.39 for d in draws)
    assert min(draws) < 0.23 and max(draws) > 0.37, "spread over the whole ±30%"
    assert abs(sum(draws) / len(draws) - 0.3) < 0.01, "uniform: the mean is the median"
    again = parse_answer_times({"profile": "real"}, seed=3)
    assert again.delay_s("analytics", "POST", "/sql", "", b"SELECT 7", T0) == draws[7]
    other_seed = parse_answer_times({"profile": "real"}, seed=4)
    assert other_seed.delay_s("analytics", "POST", "/sql", "", b"SELECT 7", T0) != draws[7]
    next_minute = real.delay_s("analytics", "POST", "/sql", "", b"SELECT 7", T0 + 60_000)
    assert next_minute != draws[7]


@pytest.mark.parametrize("doc", [{"profile": "fast"}, {"jitter": 2}, {"medians_ms": {"cf": -1}},
                                 {"seed": "x"}, {"speed": 1}, []])
def test_bad_answer_times_are_400(sb: Client, doc):
    assert sb.call("POST", "/_sandbox/answer_times", doc).status == 400


def test_an_answer_takes_at_least_its_drawn_time(timed: Client):
    seed_gateway(timed)
    shown = timed.ctl("POST", "/answer_times", {"profile": "real", "medians_ms": {"cf": 500}, "jitter": 0})
    assert shown["medians_ms"]["cf"] == 500 and shown["distribution"] == "uniform"
    started = time.monotonic()
    assert timed.cf("GET", GW + "/deployments").status == 200
    assert time.monotonic() - started >= 0.5


def test_a_slow_answer_holds_no_lock_the_others_need(timed: Client):
    seed_gateway(timed, scenario={"rps": 1}, created_on_ms=T0 - 600_000)
    timed.ctl("POST", "/answer_times", {"profile": "off", "medians_ms": {"analytics": 5_000}, "jitter": 0})
    slow = threading.Thread(target=timed.sql, args=("SELECT count() AS n FROM mauntic_logs",))
    slow.start()
    time.sleep(0.3)  # let it reach its wait (the wait, not this sleep, is what is tested)
    # chdb (stats) and the world (an API read) both answer while the SQL answer waits.
    assert timed.call("GET", "/_sandbox/analytics/stats").status == 200
    assert timed.cf("GET", GW + "/deployments").status == 200
    assert slow.is_alive(), "the SQL answer was still waiting out its answer time"
    slow.join(30)
    assert [c["route"] for c in timed.ctl("GET", "/calls")["calls"]] == ["cf.deployments.read", "analytics"]


def test_settings_survive_a_reset(timed: Client):
    timed.ctl("POST", "/answer_times", {"profile": "real", "seed": 9})
    timed.ctl("POST", "/reset", {"now_ms": T0})
    assert timed.ctl("GET", "/answer_times") == {**parse_answer_times({"profile": "real"}, 9).to_json()}


def test_the_call_log_shows_the_sandbox_time_and_the_answer_time_and_counts_late_answers(timed: Client):
    seed_gateway(timed)
    timed.ctl("POST", "/answer_times", {"profile": "real", "medians_ms": {"cf": 200}, "jitter": 0})
    timed.cf("GET", GW + "/deployments")
    timed.ctl("POST", "/answer_times", {"profile": "off"})
    timed.ctl("POST", "/faults", {"route": "cf.versions", "kind": "slow", "seconds": 0.2, "count": 1})
    timed.cf("GET", GW + "/versions")
    timed.ctl("POST", "/answer_times", {"profile": "real", "medians_ms": {"cf": 50}, "jitter": 0})
    timed.ctl("POST", "/faults", {"route": "cf.versions", "kind": "slow", "seconds": 0.2, "count": 1})
    timed.cf("GET", GW + "/versions")
    read, unprofiled, late = timed.ctl("GET", "/calls")["calls"]
    assert read["answer_ms"] == 200
    assert unprofiled["answer_ms"] == 0 and unprofiled["served_ms"] >= 200
    assert late["answer_ms"] == 50 and late["served_ms"] >= 200
    timing = timed.ctl("GET", "/calls/timing")["routes"]
    assert timing["cf.versions"]["calls"] == 2 and timing["cf.versions"]["late"] == 1
    assert timing["cf.deployments.read"] == {**timing["cf.deployments.read"], "calls": 1, "late": 0}

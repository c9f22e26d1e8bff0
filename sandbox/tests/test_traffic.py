"""The traffic model on its own: determinism, Poisson counts, splits, error rates,
latency quantiles, sampling weights, queue depth and scenario validation."""

from __future__ import annotations

import math

import pytest

from sandbox.traffic import (Scenario, ScenarioError, Split, merge_docs, minute_rows,
                             queue_rows)

M0 = 1_795_773_600_000
A, B = "aaaaaaaa-0000-4000-8000-000000000000", "bbbbbbbb-0000-4000-8000-000000000000"


def rows_for(sc: Scenario, splits: list[Split], minutes: int, script: str = "s"):
    out, depth = [], None
    for m in range(minutes):
        rows, depth = minute_rows(script, M0 + m * 60_000, sc, splits, M0, depth)
        out += rows
    return out


def test_same_seed_same_points_other_seed_other_points():
    sc = Scenario.from_json({"rps": 5, "seed": 3})
    splits = [Split(M0, ((A, 100.0),))]
    assert rows_for(sc, splits, 3) == rows_for(sc, splits, 3)
    other = Scenario.from_json({"rps": 5, "seed": 4})
    assert rows_for(other, splits, 3) != rows_for(sc, splits, 3)


def test_with_an_epoch_the_same_scenario_gives_the_same_traffic_at_any_start():
    later = M0 + 37 * 60_000
    first = Scenario.from_json({"rps": 5, "seed": 3, "epoch_ms": M0})
    second = Scenario.from_json({"rps": 5, "seed": 3, "epoch_ms": later})
    a, _ = minute_rows("s", M0 + 60_000, first, [Split(M0, ((A, 100.0),))], M0, None)
    b, _ = minute_rows("s", later + 60_000, second, [Split(later, ((A, 100.0),))], later, None)
    shift = (later - M0) // 1000  # rows carry whole seconds in field 1
    assert a, "the minute has requests"
    assert [r[:1] + (r[1] + shift,) + r[2:] for r in a] == b
    unanchored = Scenario.from_json({"rps": 5, "seed": 3})
    c, _ = minute_rows("s", later + 60_000, unanchored, [Split(later, ((A, 100.0),))], later, None)
    assert c != b, "without an epoch the traffic follows the wall clock"
    with pytest.raises(ScenarioError, match="epoch_ms"):
        Scenario.from_json({"epoch_ms": "soon"})


def test_a_minute_does_not_depend_on_generation_order():
    sc = Scenario.from_json({"rps": 5, "seed": 3})
    splits = [Split(M0, ((A, 100.0),))]
    second_alone, _ = minute_rows("s", M0 + 60_000, sc, splits, M0, None)
    assert rows_for(sc, splits, 2)[-len(second_alone):] == second_alone


def test_counts_split_errors_and_latency_follow_the_scenario():
    sc = Scenario.from_json({"rps": 50, "seed": 1, "versions": {
        A: {"error_rate": 0.10, "latency_median_ms": 100, "latency_p95_ms": 400},
        B: {"error_rate": 0.01, "latency_median_ms": 20, "latency_p95_ms": 60}}})
    rows = rows_for(sc, [Split(M0, ((A, 20.0), (B, 80.0)))], 10)
    n = 50 * 600
    assert abs(len(rows) - n) < 5 * math.sqrt(n)
    a = [r for r in rows if r[3] == A]
    assert abs(len(a) - 0.2 * n) < 5 * math.sqrt(0.2 * n)
    errors = sum(1 for r in a if r[6] >= 500)
    assert abs(errors / len(a) - 0.10) < 0.02
    lat = sorted(r[7] for r in a)
    assert 90 < lat[len(lat) // 2] < 110
    assert 340 < lat[int(len(lat) * 0.95)] < 460
    assert all(M0 // 1000 <= r[1] < M0 // 1000 + 600 for r in rows)


def test_a_split_change_inside_a_minute_applies_from_its_instant():
    sc = Scenario.from_json({"rps": 100, "seed": 2})
    rows, _ = minute_rows("s", M0, sc, [Split(M0, ((A, 100.0),)), Split(M0 + 30_000, ((B, 100.0),))], M0, None)
    assert all(r[3] == (A if r[1] < (M0 + 30_000) // 1000 else B) for r in rows)


def test_no_traffic_before_the_first_deployment():
    sc = Scenario.from_json({"rps": 100})
    rows, _ = minute_rows("s", M0, sc, [Split(M0 + 45_000, ((A, 100.0),))], M0, None)
    assert rows and all(r[1] >= (M0 + 45_000) // 1000 for r in rows)


def test_sample_interval_stores_fewer_rows_that_weigh_more():
    splits = [Split(M0, ((A, 100.0),))]
    full = rows_for(Scenario.from_json({"rps": 40, "seed": 5}), splits, 10)
    sampled = rows_for(Scenario.from_json({"rps": 40, "seed": 5, "sample_interval": 8}), splits, 10)
    assert all(r[2] == 8 for r in sampled)
    assert abs(len(sampled) - len(full) / 8) < 5 * math.sqrt(len(full) / 8)
    weight = sum(r[2] for r in sampled)
    assert abs(weight - 40 * 600) < 5 * 8 * math.sqrt(40 * 600 / 8)


def test_queue_depth_grows_with_the_bad_versions_share():
    sc = Scenario.from_json({"rps": 0, "queue": {"name": "q", "depth": 10, "retries_per_min": 6},
                             "versions": {B: {"queue_depth_per_min": 100}}})
    splits = [Split(M0, ((A, 50.0), (B, 50.0)))]
    depth, maxima = None, []
    for m in range(4):
        rows, depth = queue_rows("c", M0 + m * 60_000, sc, splits, M0, depth)
        assert len(rows) == 2 and all(r[4] == "queue.metric" and r[5] == "q" for r in rows)
        maxima.append(max(r[8] for r in rows))
    assert maxima == [60, 110, 160, 210]


def test_queue_profile_is_a_step_function_of_minutes_since_traffic_start():
    sc = Scenario.from_json({"rps": 0, "queue": {"name": "q", "profile": [[0, 5], [2, 500]]}})
    splits = [Split(M0, ((A, 100.0),))]
    got = [max(r[8] for r in queue_rows("c", M0 + m * 60_000, sc, splits, M0, None)[0]) for m in range(4)]
    assert got == [5, 5, 500, 500]


@pytest.mark.parametrize("doc,why", [
    ({"rps": -1}, "rps"),
    ({"versions": {A: {"error_rate": 2}}}, "error_rate"),
    ({"versions": {A: {"latency_median_ms": 100, "latency_p95_ms": 50}}}, "p95"),
    ({"versions": {A: {"healthz": "maybe"}}}, "healthz"),
    ({"versions": {A: {"typo": 1}}}, "unknown"),
    ({"sample_interval": 0}, "sample_interval"),
    ({"queue": {"depth": 3}}, "name"),
    ({"colour": "red"}, "unknown"),
    ({"rps": 100000, "sample_interval": 1}, "too high"),
])
def test_scenario_validation(doc, why):
    with pytest.raises(ScenarioError, match=why):
        Scenario.from_json(doc)


def test_merge_docs_deep_merges_and_null_deletes():
    base = {"rps": 10, "versions": {A: {"error_rate": 0.01}, B: {"error_rate": 0.02}}}
    out = merge_docs(base, {"versions": {A: {"error_rate": 0.5}, B: None}, "seed": 2})
    assert out == {"rps": 10, "versions": {A: {"error_rate": 0.5}}, "seed": 2}
    assert base["versions"][A]["error_rate"] == 0.01

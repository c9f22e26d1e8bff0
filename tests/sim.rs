//! Simulator tests: the scenario grid parses, seeded runs are deterministic (whatever the
//! thread count), a healthy release rarely rolls back (binomial tolerance around α), a ×20
//! regression at 100 rps always rolls back, and promotions always carry evidence. Kept small:
//! the decision core runs unoptimized here. Native only, like `rollout_gate::sim`.
#![cfg(not(target_arch = "wasm32"))]

use rollout_gate::sim::{self, GateKind, Options, Scenario};
use std::path::Path;

/// A short schedule (3 + 3 minutes of split, 3 of bake) keeps debug-build runs fast.
fn scenario(name: &str, rps: f64, candidate_error_rate: f64, extra: &str) -> Scenario {
    let text = format!(
        r#"{{
            "name": "{name}",
            "rps": {rps},
            "minutes": 16,
            "baseline": {{"error_rate": 0.001, "latency": {{"median_ms": 80, "p95_ms": 200}}}},
            "candidate": {{"error_rate": {candidate_error_rate}, "latency": {{"median_ms": 80, "p95_ms": 200}}}},
            "schedule": {{"steps": [
                {{"percent": 10, "dwell_minutes": 3}},
                {{"percent": 50, "dwell_minutes": 3}},
                {{"percent": 100, "dwell_minutes": 3}}
            ]}}
            {extra}
        }}"#
    );
    Scenario::from_json(&text).expect("test scenario is valid")
}

fn options(runs: usize, gates: &[GateKind], threads: usize) -> Options {
    Options {
        runs,
        seed: 7,
        gates: gates.to_vec(),
        oracle: false,
        calibration_runs: 1_000,
        threads,
    }
}

#[test]
fn every_scenario_in_the_grid_and_the_sweeps_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut dirs = vec![root.clone()];
    for entry in std::fs::read_dir(&root).expect("scenarios/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    assert!(dirs.len() >= 4, "scenarios/ and its sweeps: {dirs:?}");
    for dir in &dirs {
        let files = sim::scenario::grid_files(dir).expect("readable");
        assert!(!files.is_empty(), "{} has no scenarios", dir.display());
        let mut names = Vec::new();
        for file in &files {
            let scenario =
                Scenario::load(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            names.push(scenario.name);
        }
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            files.len(),
            "names are unique in {}",
            dir.display()
        );
    }
    let grid = sim::scenario::grid_files(&root).expect("readable");
    assert!(grid.len() >= 30, "the grid has {} files", grid.len());
}

#[test]
fn unknown_fields_in_a_scenario_file_are_an_error() {
    let text = r#"{"name": "x", "rps": 1, "minutes": 5, "traffic": 3,
        "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
        "candidate": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}}}"#;
    let err = Scenario::from_json(text).expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `traffic`"), "{err}");
}

#[test]
fn the_same_seed_gives_the_same_report_whatever_the_threads() {
    let scenarios = vec![scenario("det", 50.0, 0.01, "")];
    let gates = [GateKind::Ours, GateKind::Flagger1, GateKind::FixedZ];
    let quiet = |_: usize, _: usize| {};
    let one = sim::simulate(&scenarios, &options(12, &gates, 1), &quiet);
    let two = sim::simulate(&scenarios, &options(12, &gates, 3), &quiet);
    let json = |r| serde_json::to_string(&r).expect("serializable");
    assert_eq!(json(one.clone()), json(two));
    let other_seed = Options {
        seed: 8,
        ..options(12, &gates, 1)
    };
    let three = sim::simulate(&scenarios, &other_seed, &quiet);
    assert_ne!(json(one), json(three), "a different seed changes the runs");
}

#[test]
fn healthy_releases_rarely_roll_back_and_never_promote_without_evidence() {
    let runs = 120;
    let scenarios = vec![scenario("aa", 20.0, 0.001, "")];
    let report = sim::simulate(&scenarios, &options(runs, &[GateKind::Ours], 2), &|_, _| {});
    let ours = &report[0].gates[0];
    // False rollbacks are bounded by α = 1% over the whole rollout; allow three binomial
    // standard errors on top for the sampling noise of 120 runs.
    let alpha = 0.01;
    let tolerance = alpha + 3.0 * (alpha * (1.0 - alpha) / runs as f64).sqrt();
    assert!(
        ours.rollback_rate <= tolerance,
        "false rollbacks {} > {tolerance}",
        ours.rollback_rate
    );
    assert_eq!(ours.unsupported_promotions, 0);
    assert!(ours.promotions > 0, "some healthy runs promote");
}

#[test]
fn a_twenty_fold_error_regression_at_100_rps_always_rolls_back() {
    let scenarios = vec![scenario("x20", 100.0, 0.02, "")];
    let report = sim::simulate(&scenarios, &options(25, &[GateKind::Ours], 2), &|_, _| {});
    let ours = &report[0].gates[0];
    assert_eq!(ours.rollback_rate, 1.0, "{ours:?}");
    // With a 3-minute dwell and a 2-minute ingestion lag, the 10% step is judged on one
    // minute (about 11 new-version 5xx expected): most runs, not all, are caught there.
    assert!(ours.first_step_detection >= 0.9, "caught at 10%: {ours:?}");
    assert_eq!(ours.rollback_signals.get("5xx"), Some(&25));
}

#[test]
fn a_metrics_outage_holds_instead_of_promoting() {
    let outage = r#", "faults": [{"kind": "metrics_down", "from_min": 2, "to_min": 8}]"#;
    let scenarios = vec![scenario("outage", 50.0, 0.001, outage)];
    let report = sim::simulate(&scenarios, &options(10, &[GateKind::Ours], 2), &|_, _| {});
    let ours = &report[0].gates[0];
    assert_eq!(ours.unsupported_promotions, 0);
    assert_eq!(
        ours.on_time_rate, 0.0,
        "no run promotes through the outage on time"
    );
}

#[test]
fn flagger_style_gates_roll_back_healthy_low_traffic_releases() {
    // At 0.1 rps a 10% canary sees no request in most minutes: Flagger counts "no values" as
    // a failed check, so threshold 1 rolls back most healthy releases.
    let scenarios = vec![scenario("aa-0.1rps", 0.1, 0.001, "")];
    let report = sim::simulate(
        &scenarios,
        &options(40, &[GateKind::Flagger1], 1),
        &|_, _| {},
    );
    assert!(
        report[0].gates[0].rollback_rate > 0.5,
        "{:?}",
        report[0].gates[0]
    );
}

#[test]
fn a_rollout_state_survives_the_durable_objects_json_round_trip_every_tick_unchanged() {
    // `--tick-cost` decodes each tick's state from JSON and encodes it again, as the Durable
    // Object does: the runs must decide exactly what the in-memory ones decide.
    let scenarios = [
        scenario("aa", 20.0, 0.001, ""),
        scenario("x20", 100.0, 0.02, ""),
    ];
    for s in &scenarios {
        for run in 0..3 {
            let (outcome, costs) = sim::tick_costs(s, 7, run);
            assert_eq!(
                outcome,
                sim::run_once(s, GateKind::Ours, 7, run),
                "{}",
                s.name
            );
            let last = outcome
                .rolled_back_at
                .or(outcome.completed_at)
                .unwrap_or(s.minutes);
            assert_eq!(
                costs.len() as u32,
                last,
                "one timed tick a minute until the end"
            );
            assert!(costs.iter().all(|c| c.state_bytes > 1_000 && c.nanos > 0));
        }
    }
}

#[test]
fn tick_costs_are_summarized_over_all_ticks_and_then_by_phase() {
    use sim::report::summarize_tick_costs;
    let tick = |tick, phase, micros: u64| sim::TickCost {
        tick,
        phase,
        nanos: micros * 1_000,
        state_bytes: 2_000 + tick as usize,
    };
    let mut costs: Vec<_> = (1..=100)
        .map(|t| tick(t, "ramping", u64::from(t)))
        .collect();
    costs.push(tick(101, "baking", 5_000));
    let rows = summarize_tick_costs("s", 2, &costs);
    let phases: Vec<_> = rows.iter().map(|r| r.phase).collect();
    assert_eq!(phases, ["all", "ramping", "baking"]);
    assert_eq!(
        (rows[0].ticks, rows[0].max_us, rows[0].max_tick),
        (101, 5_000.0, 101)
    );
    assert_eq!(
        (rows[1].median_us, rows[1].p99_us, rows[1].max_us),
        (50.0, 99.0, 100.0)
    );
    assert_eq!(rows[1].max_state_bytes, 2_100);
    assert_eq!((rows[2].ticks, rows[2].median_us), (1, 5_000.0));
}

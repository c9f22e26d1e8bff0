//! Tests of the policy's configuration: defaults, and the refusal of what the tests cannot work with.

use crate::policy::*;

#[test]
fn defaults_are_valid_and_documented_values() {
    let policy = Policy::default();
    assert_eq!(policy.validate(), Ok(()));
    assert_eq!(policy.alpha, 0.01);
    assert_eq!(policy.rho0, 1.5);
    assert_eq!(policy.error_rate_ceiling, 0.02);
    assert_eq!(policy.latency_p95_ceiling_ms, 250.0);
    assert_eq!(policy.healthz_failures, 3);
    assert_eq!(policy.max_minutes_without_evidence, 10);
    assert_eq!(policy.ingestion_lag_minutes, 2);
}

#[test]
fn looks_and_history_looks_are_refused_outside_their_ranges() {
    for (field, value) in [
        ("look_share", 1.0),
        ("look_share", -0.1),
        ("look_rho0", 0.9),
        ("look_interim_share", 1.5),
        ("look_max_events_per_minute", 0.0),
        ("history_minutes", 1441.0),
        ("history_share", 1.0),
        ("history_margin", 0.99),
        ("history_guard_alpha", 0.0),
        ("approach_factor", 0.0),
        ("approach_factor", 1.0),
        ("approach_share", 1.0),
        ("approach_share", -0.5),
        ("approach_rho0", 0.99),
    ] {
        let mut policy = Policy::default();
        match field {
            "look_share" => policy.look_share = value,
            "look_rho0" => policy.look_rho0 = value,
            "look_interim_share" => policy.look_interim_share = value,
            "history_minutes" => policy.history_minutes = value as u32,
            "history_share" => policy.history_share = value,
            "history_margin" => policy.history_margin = value,
            "history_guard_alpha" => policy.history_guard_alpha = value,
            "approach_factor" => policy.approach_factor = value,
            "approach_share" => policy.approach_share = value,
            "approach_rho0" => policy.approach_rho0 = value,
            _ => policy.look_max_events_per_minute = value,
        }
        assert!(policy.validate().is_err(), "{field} = {value} accepted");
    }
}

#[test]
fn invalid_policies_are_refused() {
    let cases: Vec<(&str, Policy)> = vec![
        (
            "alpha zero",
            Policy {
                alpha: 0.0,
                ..Policy::default()
            },
        ),
        (
            "rho0 below one",
            Policy {
                rho0: 0.5,
                ..Policy::default()
            },
        ),
        (
            "no healthz failures",
            Policy {
                healthz_failures: 0,
                ..Policy::default()
            },
        ),
        (
            "ceiling over one",
            Policy {
                error_rate_ceiling: 1.5,
                ..Policy::default()
            },
        ),
        (
            "detect not above the floor",
            Policy {
                rho_detect: 1.5,
                ..Policy::default()
            },
        ),
        (
            "split over budget",
            Policy {
                alpha_split: AlphaSplit {
                    errors_split: 0.9,
                    ..AlphaSplit::default()
                },
                ..Policy::default()
            },
        ),
        (
            "very slow share over budget",
            Policy {
                alpha_split: AlphaSplit {
                    very_slow_split: 0.05,
                    ..AlphaSplit::default()
                },
                ..Policy::default()
            },
        ),
        (
            "very slow share negative",
            Policy {
                alpha_split: AlphaSplit {
                    very_slow_split: -0.01,
                    slow_bake: 0.05,
                    ..AlphaSplit::default()
                },
                ..Policy::default()
            },
        ),
        (
            "very slow no slower than slow",
            Policy {
                very_slow_factor: 1.0,
                ..Policy::default()
            },
        ),
    ];
    for (name, policy) in cases {
        assert!(policy.validate().is_err(), "{name}");
    }
}

#[test]
fn a_policy_written_for_the_four_old_shares_is_refused_with_the_way_out() {
    let old: Policy = serde_json::from_str(
        r#"{"alpha_split": {"errors_split": 0.8, "slow_split": 0.1,
            "errors_bake": 0.05, "slow_bake": 0.05}}"#,
    )
    .expect("parses");
    let message = old.validate().expect_err("1.02 is over budget").to_string();
    for part in [
        "sum to 1.02",
        "very_slow_split 0.02",
        "slow_bake 0.05",
        "set very_slow_split to 0",
    ] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
    let huge = Policy {
        very_slow_factor: 1e308,
        ..Policy::default()
    };
    assert!(huge.validate().is_err(), "an infinite threshold");
}

#[test]
fn partial_json_overrides_keep_other_defaults() {
    let policy: Policy = serde_json::from_str(r#"{"alpha": 0.05}"#).expect("parses");
    assert_eq!(policy.alpha, 0.05);
    assert_eq!(policy.rho0, 1.5);
    assert!(serde_json::from_str::<Policy>(r#"{"alfa": 0.05}"#).is_err());
}

#[test]
fn a_policy_spelling_the_slow_request_shares_the_old_way_still_reads() {
    let old: Policy =
        serde_json::from_str(r#"{"alpha_split": {"latency_split": 0.12, "latency_bake": 0.01}}"#)
            .expect("the old names read");
    assert_eq!(old.alpha_split.slow_split, 0.12);
    assert_eq!(old.alpha_split.slow_bake, 0.01);
    let written = serde_json::to_string(&old.alpha_split).unwrap();
    assert!(written.contains("\"slow_split\":0.12"), "{written}");
}

#[test]
fn a_policy_stored_with_the_request_floors_reads_them_as_row_floors() {
    let stored = r#"{"error_ceiling_min_requests": 150, "latency_min_requests": 40}"#;
    let policy: Policy = serde_json::from_str(stored).expect("an earlier release's names");
    assert_eq!(
        (
            policy.error_ceiling_min_rows,
            policy.latency_ceiling_min_rows
        ),
        (150.0, 40.0)
    );
    let written = serde_json::to_value(&policy).expect("serializes");
    assert_eq!(written["latency_ceiling_min_rows"], 40.0);
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let policy = Policy {
            latency_ceiling_min_rows: bad,
            ..Policy::default()
        };
        assert!(policy.validate().is_err(), "{bad} rows accepted");
    }
}

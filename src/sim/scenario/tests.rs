//! Scenario parsing: defaults, unknown-field rejection at every level, range errors that
//! name the field, profiles and faults, and the policy merge order.

use super::*;

const MINIMAL: &str = r#"{
    "name": "aa",
    "rps": 10,
    "minutes": 45,
    "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
    "candidate": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}}
}"#;

#[test]
fn a_minimal_scenario_gets_the_defaults() {
    let s = Scenario::from_json(MINIMAL).expect("valid");
    assert!(s.is_healthy());
    assert_eq!(s.rps_at(30), 10.0);
    assert_eq!(s.sample_interval, 1.0);
    assert_eq!(s.schedule, Schedule::default());
    assert_eq!(s.policy, Policy::default());
    assert_eq!(s.split_minutes(), 20);
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    let cases = [
        MINIMAL.replace("\"minutes\"", "\"minuets\": 1, \"minutes\""),
        MINIMAL.replace("\"error_rate\": 0.001, \"latency\"", "\"error_rate\": 0.001, \"p99\": 1, \"latency\""),
        MINIMAL.replace("\"median_ms\": 80, \"p95_ms\": 200}}\n}", "\"median_ms\": 80, \"p95_ms\": 200, \"p50\": 1}}\n}"),
        MINIMAL.replace("\"minutes\": 45", "\"minutes\": 45, \"faults\": [{\"kind\": \"metrics_down\", \"from_min\": 1, \"to_min\": 2, \"why\": \"x\"}]"),
        MINIMAL.replace("\"minutes\": 45", "\"minutes\": 45, \"overdispersion\": {\"bursty\": 1}"),
        MINIMAL.replace("\"minutes\": 45", "\"minutes\": 45, \"policy\": {\"alpah\": 0.01}"),
        MINIMAL.replace("\"rps\": 10", "\"rps\": [{\"from_min\": 0, \"rps\": 10, \"x\": 1}]"),
    ];
    for (i, text) in cases.iter().enumerate() {
        assert_ne!(text, MINIMAL, "case {i} did not change the text");
        let err = Scenario::from_json(text).expect_err("unknown field");
        let msg = err.to_string();
        assert!(
            msg.contains("unknown field") || msg.contains("unknown variant"),
            "case {i}: {msg}"
        );
    }
}

#[test]
fn out_of_range_values_are_refused_with_the_field() {
    let cases = [
        (MINIMAL.replace("\"rps\": 10", "\"rps\": -1"), "rps"),
        (MINIMAL.replace("\"minutes\": 45", "\"minutes\": 0"), "minutes"),
        (
            MINIMAL.replacen("\"error_rate\": 0.001", "\"error_rate\": 2", 1),
            "baseline.error_rate",
        ),
        (
            MINIMAL.replacen("\"p95_ms\": 200", "\"p95_ms\": 50", 1),
            "baseline.latency",
        ),
        (
            MINIMAL.replace("\"minutes\": 45", "\"minutes\": 45, \"sample_interval\": 0.5"),
            "sample_interval",
        ),
        (
            MINIMAL.replace("\"minutes\": 45", "\"minutes\": 45, \"policy\": {\"alpha\": 2}"),
            "policy",
        ),
        (
            MINIMAL.replace(
                "\"minutes\": 45",
                "\"minutes\": 45, \"schedule\": {\"steps\": [{\"percent\": 50, \"dwell_minutes\": 5}]}",
            ),
            "schedule",
        ),
    ];
    for (text, field) in cases {
        let err = Scenario::from_json(&text).expect_err(field).to_string();
        assert!(err.starts_with(field), "{field}: {err}");
    }
}

#[test]
fn profiles_faults_and_changes_are_read() {
    let text = MINIMAL
        .replace(
            "\"rps\": 10",
            "\"rps\": [{\"from_min\": 0, \"rps\": 100}, {\"from_min\": 15, \"rps\": 20}]",
        )
        .replace(
            "\"minutes\": 45",
            "\"minutes\": 45, \"candidate_changes_at_min\": 25, \"faults\": [{\"kind\": \"late_data\", \"from_min\": 5, \"to_min\": 9, \"extra_lag_min\": 2, \"arrived_fraction\": 0.5}]",
        );
    let s = Scenario::from_json(&text).expect("valid");
    assert_eq!((s.rps_at(14), s.rps_at(15)), (100.0, 20.0));
    let late = s.fault_at(6, |f| matches!(f, Fault::LateData { .. }).then_some(()));
    assert!(late.is_some());
    assert!(s.fault_at(9, |f| Some(f.clone())).is_none());
}

#[test]
fn policy_overrides_merge_field_by_field() {
    let mut s = Scenario::from_json(&MINIMAL.replace(
        "\"minutes\": 45",
        "\"minutes\": 45, \"policy\": {\"rho_detect\": 12, \"alpha_split\": {\"errors_split\": 0.4}}",
    ))
    .expect("valid");
    assert_eq!(s.policy.rho_detect, 12.0);
    assert_eq!(s.policy.alpha_split.errors_split, 0.4);
    assert_eq!(s.policy.alpha_split.slow_split, 0.1);
    let cli: Map<String, Value> =
        serde_json::from_str(r#"{"rho_detect": 20, "power": 0.8}"#).expect("json");
    s.apply_policy_overrides(&cli).expect("valid");
    assert_eq!((s.policy.rho_detect, s.policy.power), (20.0, 0.8));
    assert_eq!(s.policy.alpha_split.errors_split, 0.4);
}

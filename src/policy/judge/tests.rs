//! Tests of judging: each signal's verdict rules, with their numbers.

use crate::observe::{Probe, QueueMetrics, VersionLatency};
use crate::policy::*;
use crate::stats::RatioSummary;

fn summary(regression: bool, upper_bound: f64, exposure_met: bool) -> RatioSummary {
    RatioSummary {
        new_total: 1000.0,
        new_bad: 3.0,
        old_total: 9000.0,
        old_bad: 9.0,
        e_value: if regression { 250.0 } else { 0.8 },
        threshold: 200.0,
        regression,
        upper_bound,
        exposure_met,
        new_requests_needed: if exposure_met { 0.0 } else { 4200.0 },
        burst_divisor: None,
    }
}

#[test]
fn healthz_verdict_follows_the_consecutive_failure_rule() {
    let policy = Policy::default();
    let failed = Probe::Failed {
        status: Some(503),
        error: None,
    };
    let wrong = Probe::WrongVersion {
        answered_by: "old".into(),
    };
    let cases: Vec<(&str, u32, Option<&Probe>, &str)> = vec![
        ("ok probe", 0, Some(&Probe::Ok), "healthy"),
        ("not probed", 0, None, "inconclusive"),
        ("wrong version", 0, Some(&wrong), "inconclusive"),
        ("one failure", 1, Some(&failed), "inconclusive"),
        ("two failures", 2, Some(&failed), "inconclusive"),
        ("three failures", 3, Some(&failed), "unhealthy"),
    ];
    for (name, streak, probe, want) in cases {
        let got = policy.judge_healthz(streak, probe);
        let kind = match got {
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy { .. } => "unhealthy",
            Verdict::Inconclusive { .. } => "inconclusive",
        };
        assert_eq!(kind, want, "{name}: {got}");
    }
    let unhealthy = policy.judge_healthz(3, Some(&failed));
    assert!(unhealthy.to_string().contains("status 503"), "{unhealthy}");
}

#[test]
fn count_test_verdicts_need_positive_evidence() {
    let policy = Policy::default();
    let cases = [
        ("regression", summary(true, 9.0, true), "unhealthy"),
        ("tight upper bound", summary(false, 1.4, false), "healthy"),
        ("exposure met", summary(false, 5.0, true), "healthy"),
        (
            "wide bound, low exposure",
            summary(false, 5.0, false),
            "inconclusive",
        ),
    ];
    for (name, s, want) in cases {
        let got = policy.judge_count_test(Signal::Errors, &s);
        let kind = match &got {
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy { .. } => "unhealthy",
            Verdict::Inconclusive { .. } => "inconclusive",
        };
        assert_eq!(kind, want, "{name}: {got}");
    }
}

#[test]
fn regression_reason_carries_the_e_value_and_counts() {
    let policy = Policy::default();
    let got = policy.judge_count_test(Signal::Errors, &summary(true, 9.0, true));
    let reason = &got.reasons()[0];
    assert_eq!((reason.observed, reason.limit), (250.0, 200.0));
    assert!(reason.detail.contains("3/1000"), "{}", reason.detail);
    let gap = policy.judge_count_test(Signal::Errors, &summary(false, 5.0, false));
    assert!(gap.to_string().contains("4200 more"), "{gap}");
}

#[test]
fn error_ceiling_needs_a_minimum_sample_and_spares_shared_incidents() {
    let policy = Policy::default();
    let cases = [
        ("too few", (100.0, 50.0), (900.0, 0.0), "too_few"),
        ("within", (1000.0, 10.0), (9000.0, 90.0), "within"),
        ("over", (1000.0, 50.0), (9000.0, 9.0), "over"),
        (
            "just over, within noise",
            (1000.0, 30.0),
            (9000.0, 9.0),
            "within",
        ),
        ("old over too", (1000.0, 50.0), (9000.0, 400.0), "within"),
        ("bake, no old", (1000.0, 50.0), (0.0, 0.0), "over"),
    ];
    for (name, new, old, want) in cases {
        let got = policy.judge_error_ceiling(new, old, 5);
        let kind = match got {
            Breach::Over(_) => "over",
            Breach::Within => "within",
            Breach::TooFew { .. } => "too_few",
        };
        assert_eq!(kind, want, "{name}");
    }
}

#[test]
fn latency_ceiling_judges_p95_with_a_minimum_sample() {
    let policy = Policy::default();
    let lat = |requests, p95| VersionLatency {
        requests,
        p95_ms: Some(p95),
    };
    let none = VersionLatency::default();
    let cases = [
        ("too few", lat(10.0, 900.0), none, "too_few"),
        ("no data", none, none, "too_few"),
        ("within", lat(100.0, 200.0), lat(900.0, 180.0), "within"),
        ("over", lat(100.0, 300.0), lat(900.0, 180.0), "over"),
        (
            "old over too",
            lat(100.0, 300.0),
            lat(900.0, 280.0),
            "within",
        ),
    ];
    for (name, new, old, want) in cases {
        let kind = match policy.judge_latency_ceiling(&new, &old) {
            Breach::Over(_) => "over",
            Breach::Within => "within",
            Breach::TooFew { .. } => "too_few",
        };
        assert_eq!(kind, want, "{name}");
    }
}

#[test]
fn queue_breaches_on_depth_or_retries() {
    let t = QueueThresholds::default();
    let m = |depth, retries_per_minute| QueueMetrics {
        depth,
        retries_per_minute,
    };
    assert_eq!(Policy::judge_queue(&t, &m(10.0, 1.0)), Breach::Within);
    assert!(matches!(
        Policy::judge_queue(&t, &m(5000.0, 1.0)),
        Breach::Over(_)
    ));
    assert!(matches!(
        Policy::judge_queue(&t, &m(10.0, 500.0)),
        Breach::Over(_)
    ));
}

#[test]
fn worst_verdict_prefers_unhealthy_then_inconclusive() {
    let bad = |n: f64| {
        Verdict::unhealthy(Reason {
            signal: Signal::Errors,
            detail: format!("{n}"),
            observed: n,
            limit: 1.0,
        })
    };
    let gap = Verdict::inconclusive(Gap::NoNewMinutes);
    assert_eq!(Verdict::Healthy.worst(gap.clone()), gap);
    assert_eq!(gap.clone().worst(bad(2.0)), bad(2.0));
    assert_eq!(bad(2.0).worst(bad(3.0)).reasons().len(), 2);
    assert_eq!(Verdict::Healthy.worst(Verdict::Healthy), Verdict::Healthy);
}

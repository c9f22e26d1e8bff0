//! Tests of judging: each signal's verdict rules, with their numbers.

use crate::observe::{Probe, QueueMetrics, StoredRows};
use crate::policy::*;
use crate::stats::{Burstiness, RatioSummary};

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

fn rows(rows: f64, errors: f64, slow: f64) -> StoredRows {
    StoredRows { rows, errors, slow }
}

/// The old version over the same minutes: its rows and share of bad ones.
fn old(rows: f64, share: f64) -> Option<ConcurrentShare> {
    Some(ConcurrentShare { rows, share })
}

fn kind(breach: &Breach) -> &'static str {
    match breach {
        Breach::Over(_) => "over",
        Breach::Within => "within",
        Breach::TooFew { .. } => "too_few",
    }
}

#[test]
fn error_ceiling_needs_a_minimum_of_rows_and_spares_shared_incidents() {
    let policy = Policy::default();
    let cases = [
        (
            "too few rows",
            rows(100.0, 50.0, 0.0),
            old(900.0, 0.0),
            "too_few",
        ),
        (
            "within",
            rows(1000.0, 10.0, 0.0),
            old(9000.0, 0.01),
            "within",
        ),
        ("over", rows(1000.0, 50.0, 0.0), old(9000.0, 0.001), "over"),
        (
            "just over, within noise",
            rows(1000.0, 30.0, 0.0),
            old(9000.0, 0.001),
            "within",
        ),
        (
            "old over too",
            rows(1000.0, 50.0, 0.0),
            old(9000.0, 0.044),
            "within",
        ),
        (
            "old over, but too few rows to say",
            rows(1000.0, 50.0, 0.0),
            old(100.0, 0.05),
            "over",
        ),
        ("bake, no old", rows(1000.0, 50.0, 0.0), None, "over"),
    ];
    for (name, new, old, want) in cases {
        let got = policy.judge_error_ceiling(&new, old, 5, None);
        assert_eq!(kind(&got), want, "{name}");
    }
}

#[test]
fn error_ceiling_is_an_exact_binomial_test_at_its_rate_per_look() {
    // Of 1000 rows at the 2% ceiling, P(≥ 36 with a 5xx) = 0.00070 ≤ 0.001 < P(≥ 35) =
    // 0.00133 (the binomial tail, by hand).
    let policy = Policy::default();
    let judge = |errors| policy.judge_error_ceiling(&rows(1000.0, errors, 0.0), None, 5, None);
    assert_eq!(kind(&judge(35.0)), "within");
    let Breach::Over(reason) = judge(36.0) else {
        panic!("36 of 1000 rows rejects 5xx share ≤ 2% at 0.001");
    };
    assert_eq!((reason.observed, reason.limit), (0.036, 0.02));
    assert!(
        reason.detail.contains("36 of 1000 stored rows"),
        "{}",
        reason.detail
    );
    assert!(reason.detail.contains("p = 7.0e-4"), "{}", reason.detail);
}

#[test]
fn latency_ceiling_tests_the_share_of_rows_over_it_against_five_percent() {
    // p95 ≤ the ceiling exactly when at most 5% of requests are slower. Of 100 rows at 5%,
    // P(≥ 14 slow) = 0.00046 ≤ 0.001 < P(≥ 13) = 0.00146.
    let policy = Policy::default();
    let none = StoredRows::default();
    let cases = [
        ("too few rows", rows(40.0, 0.0, 40.0), None, "too_few"),
        ("no data", none, None, "too_few"),
        ("within", rows(100.0, 0.0, 2.0), old(900.0, 0.02), "within"),
        (
            "over 5%, within noise",
            rows(100.0, 0.0, 13.0),
            None,
            "within",
        ),
        ("over", rows(100.0, 0.0, 14.0), old(900.0, 0.02), "over"),
        (
            "old over too",
            rows(100.0, 0.0, 30.0),
            old(900.0, 0.1),
            "within",
        ),
        ("bake, no old", rows(100.0, 0.0, 30.0), None, "over"),
    ];
    for (name, new, old, want) in cases {
        let got = policy.judge_latency_ceiling(&new, old, 5, None);
        assert_eq!(kind(&got), want, "{name}");
    }
    let Breach::Over(reason) = policy.judge_latency_ceiling(&rows(100.0, 0.0, 14.0), None, 5, None)
    else {
        panic!("14 of 100 rows over the ceiling rejects p95 ≤ it");
    };
    assert_eq!((reason.observed, reason.limit), (0.14, P95_TAIL_SHARE));
    assert!(
        reason.detail.contains("14 of 100 stored rows"),
        "{}",
        reason.detail
    );
}

#[test]
fn without_the_old_version_the_ceilings_allow_for_its_bursts_before_the_rollout() {
    // The old version's slow rows before the rollout ran 30% over and under for five
    // minutes at a time: sums over 5 minutes vary with c² near 0.09 beyond Poisson, which
    // at the null's 5% of 10,000 rows (500 expected) inflates their variance about 45
    // times. 600 slow rows of 10,000 reject 5% outright, but not counted for the bursts.
    let policy = Policy::default();
    let bursts = Burstiness::estimate((0..180).map(|m| {
        let surge = if m % 10 < 5 { 1.3 } else { 0.7 };
        (2000.0, 40.0 * surge)
    }))
    .expect("an estimate from 180 minutes");
    let inflation = bursts.sum_inflation(500.0, 5.0);
    assert!(inflation > 20.0, "a bursty window: ÷{inflation}");
    let new = rows(10_000.0, 0.0, 600.0);
    assert_eq!(
        kind(&policy.judge_latency_ceiling(&new, None, 5, None)),
        "over"
    );
    let scaled = policy.judge_latency_ceiling(&new, None, 5, Some(&bursts));
    assert_eq!(kind(&scaled), "within");
    // The old version's rows over the same minutes, where it has them, decide instead.
    let concurrent = policy.judge_latency_ceiling(&new, old(90_000.0, 0.02), 5, Some(&bursts));
    assert_eq!(kind(&concurrent), "over");
    let far_over = rows(10_000.0, 0.0, 2_000.0);
    let Breach::Over(reason) = policy.judge_latency_ceiling(&far_over, None, 5, Some(&bursts))
    else {
        panic!("20% of the rows over the ceiling rejects 5% even counted for bursts");
    };
    assert!(reason.detail.contains("counted ÷"), "{}", reason.detail);
}

#[test]
fn a_handful_of_sampled_rows_never_breaks_the_latency_ceiling() {
    // Issue 18 §4: at a few requests a second sampled at 20, a window of 5 stored rows once
    // passed "≥ 50 requests" and its p95 was one of them. The rows are what was observed.
    let policy = Policy::default();
    let few = rows(5.0, 0.0, 5.0);
    assert_eq!(
        policy.judge_latency_ceiling(&few, None, 5, None),
        Breach::TooFew {
            have: 5.0,
            need: policy.latency_ceiling_min_rows
        }
    );
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

//! Unit tests for `policy`: defaults, validation and each signal's verdict rules.

use super::*;
use crate::stats::LookKind;

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
fn alpha_split_spends_exactly_the_whole_budget_by_default() {
    let policy = Policy::default();
    let anytime: f64 = CountTest::ALL
        .iter()
        .map(|t| policy.test_config(*t).alpha)
        .sum();
    let looks: f64 = [CountTest::ErrorsSplit, CountTest::LatencySplit]
        .iter()
        .map(|t| {
            let mut looks = policy.looks(*t);
            looks.look(LookKind::Closing, 1.0).map_or(0.0, |l| l.alpha)
        })
        .sum();
    let bake_looks: f64 = [CountTest::ErrorsBake, CountTest::LatencyBake]
        .iter()
        .map(|t| policy.bake_looks(*t).alpha())
        .sum();
    // The bakes give `look_share` of their α to their exact looks.
    assert!(
        (bake_looks - 0.01 * 0.08 * 0.75).abs() < 1e-12,
        "{bake_looks}"
    );
    let history = policy
        .history_looks()
        .look(LookKind::Closing, 1.0)
        .map_or(0.0, |l| l.alpha);
    let approach = policy
        .approach_looks()
        .look(LookKind::Closing, 1.0)
        .map_or(0.0, |l| l.alpha);
    let very_slow = policy
        .very_slow_looks()
        .look(LookKind::Closing, 1.0)
        .map_or(0.0, |l| l.alpha);
    assert!(
        (very_slow - 0.01 * 0.02).abs() < 1e-12,
        "very slow {very_slow}"
    );
    let total = anytime + looks + bake_looks + history + approach + very_slow;
    assert!((total - policy.alpha).abs() < 1e-12, "total {total}");
    // 5xx split: 0.8 of α; 0.75 of that to the looks, a quarter of which to the history
    // looks; the e-process keeps 0.25 whether or not there are history looks.
    assert!((policy.test_config(CountTest::ErrorsSplit).alpha - 0.002).abs() < 1e-12);
    let expected = 0.01 * 0.8 * 0.75 * 0.25;
    assert!((history - expected).abs() < 1e-12, "history {history}");
    // Slow requests: 0.1 of α; 0.75 of that to the looks, half of which to the approach looks.
    let expected = 0.01 * 0.1 * 0.75 * 0.5;
    assert!((approach - expected).abs() < 1e-12, "approach {approach}");

    // Without a window to read, the history looks' share goes back to the scheduled looks.
    let none = Policy {
        history_minutes: 0,
        ..Policy::default()
    };
    assert!((none.test_config(CountTest::ErrorsSplit).alpha - 0.002).abs() < 1e-12);
    let mut looks = none.looks(CountTest::ErrorsSplit);
    let closing = looks.look(LookKind::Closing, 1.0).unwrap().alpha;
    assert!((closing - 0.006).abs() < 1e-12, "{closing}");
    assert!(none.history_looks().latest().is_none());
    let mut off = none.history_looks();
    assert!(off.look(LookKind::Closing, 1.0).is_none());
    // The approach looks' burstiness comes from the window too: without it, their share
    // goes back to the slow-request looks.
    assert!(none.approach_looks().finished());
    let short = Policy {
        history_minutes: 29,
        ..Policy::default()
    };
    assert!(short.approach_looks().finished());
    let mut slow = short.looks(CountTest::LatencySplit);
    let closing = slow.look(LookKind::Closing, 1.0).unwrap().alpha;
    assert!((closing - 0.01 * 0.1 * 0.75).abs() < 1e-12, "{closing}");
    let mut slow = none.looks(CountTest::LatencySplit);
    let closing = slow.look(LookKind::Closing, 1.0).unwrap().alpha;
    assert!((closing - 0.01 * 0.1 * 0.75).abs() < 1e-12, "{closing}");
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
                    latency_bake: 0.05,
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
        r#"{"alpha_split": {"errors_split": 0.8, "latency_split": 0.1,
            "errors_bake": 0.05, "latency_bake": 0.05}}"#,
    )
    .expect("parses");
    let message = old.validate().expect_err("1.02 is over budget").to_string();
    for part in [
        "sum to 1.02",
        "very_slow_split 0.02",
        "latency_bake 0.05",
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
fn very_slow_looks_use_their_share_and_turn_off_at_zero() {
    let policy = Policy::default();
    assert_eq!(policy.very_slow_ms(), 1000.0);
    let off = Policy {
        alpha_split: AlphaSplit {
            very_slow_split: 0.0,
            ..AlphaSplit::default()
        },
        ..Policy::default()
    };
    assert!(off.validate().is_ok());
    assert!(off.very_slow_looks().finished());
    assert!(!policy.very_slow_looks().finished());
}

#[test]
fn partial_json_overrides_keep_other_defaults() {
    let policy: Policy = serde_json::from_str(r#"{"alpha": 0.05}"#).expect("parses");
    assert_eq!(policy.alpha, 0.05);
    assert_eq!(policy.rho0, 1.5);
    assert!(serde_json::from_str::<Policy>(r#"{"alfa": 0.05}"#).is_err());
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

#[test]
fn a_look_past_the_exact_looks_total_says_so_rather_than_blaming_the_minute() {
    use crate::stats::PairCounts;
    let mut looks = ScheduledLooks::new(0.01, 1.0, 30.0);
    assert!(looks.scale_for_bursts(5_000.0));
    let minute = PairCounts {
        new_total: 600.0,
        new_bad: 20.0,
        old_total: 5400.0,
        old_bad: 180.0,
    };
    // 200 events a minute, far under the 5,000 backstop; 101 minutes pass 20,000 in all.
    for _ in 0..101 {
        looks.observe(minute);
    }
    let look = looks
        .look(LookKind::Interim { step: 0 }, 0.5)
        .expect("a look");
    let said = describe_look(look);
    assert!(
        said.contains("skipped, 20200 bad events in all (limit 20000)"),
        "{said}"
    );
}

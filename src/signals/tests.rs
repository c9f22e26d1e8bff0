//! Unit tests for `signals`: minute dedupe, the ingestion lag, streaks, sampling, the bake
//! reference, and burst scaling from the window before the rollout.

use super::*;
use crate::observe::{CountsWindow, StoredRows, VersionLatency};
use crate::policy::BudgetRow;
use crate::stats::{Against, ExactLooks};

const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000);

fn at(minutes: i64) -> Timestamp {
    T0.plus_minutes(minutes)
}

fn minute(m: i64, new_requests: f64, new_errors: f64) -> MinuteCounts {
    MinuteCounts {
        minute: at(m),
        new: VersionCounts {
            requests: new_requests,
            errors: new_errors,
            slow: 0.0,
            very_slow: 0.0,
            approaching: 0.0,
            stored: StoredRows::unsampled(new_requests, new_errors, 0.0),
        },
        old: VersionCounts {
            requests: 900.0,
            errors: 9.0,
            slow: 0.0,
            very_slow: 0.0,
            approaching: 0.0,
            stored: StoredRows::unsampled(900.0, 9.0, 0.0),
        },
        sample_interval: 1.0,
    }
}

fn window(from: i64, to: i64, p95: Option<f64>) -> Observations {
    let minutes = (from..to).map(|m| minute(m, 100.0, 1.0)).collect();
    let latency = VersionLatency {
        requests: 500.0,
        p95_ms: p95,
    };
    Observations {
        counts: Some(Fetched::Ok(CountsWindow {
            from: at(from),
            to: at(to),
            minutes,
            new_latency: latency,
            old_latency: VersionLatency::default(),
        })),
        ..Observations::default()
    }
}

/// `window`, with `new_slow` of the new version's 100 requests a minute over the latency
/// ceiling (unsampled: as many stored rows), and no old version (as in the bake), so that
/// only the p95 ceiling judges them.
fn slow_window(from: i64, to: i64, new_slow: f64) -> Observations {
    let mut obs = window(from, to, None);
    if let Some(Fetched::Ok(w)) = obs.counts.as_mut() {
        for m in &mut w.minutes {
            m.new.slow = new_slow;
            m.new.stored.slow = new_slow;
            m.old = VersionCounts::default();
        }
    }
    obs
}

fn counting() -> (Policy, SignalState) {
    let policy = Policy::default();
    let mut state = SignalState::new(&policy, T0);
    state.start_counting(T0);
    (policy, state)
}

#[test]
fn each_minute_is_counted_once() {
    let (policy, mut state) = counting();
    let facts = state.ingest(&policy, &window(0, 3, None), at(5));
    assert_eq!(facts.minutes_counted, 3);
    let again = state.ingest(&policy, &window(0, 3, None), at(5));
    assert_eq!(again.minutes_counted, 0);
    assert_eq!(again.counts_gap, Some(Gap::NoNewMinutes));
    assert_eq!(state.step_totals.new.requests, 300.0);
    assert_eq!(state.errors.summary().new_total, 300.0);
}

#[test]
fn minutes_inside_the_ingestion_lag_are_not_counted() {
    let (policy, mut state) = counting();
    // Asked up to minute 5 at 10:05:30: only minutes before 10:03 are complete and ingested.
    let now = Timestamp::from_millis(at(5).millis() + 30_000);
    let facts = state.ingest(&policy, &window(0, 5, None), now);
    assert_eq!(facts.minutes_counted, 3);
    assert_eq!(state.next_minute, Some(at(3)));
}

#[test]
fn a_window_that_skips_minutes_is_refused() {
    let (policy, mut state) = counting();
    let facts = state.ingest(&policy, &window(2, 4, None), at(8));
    assert_eq!(facts.minutes_counted, 0);
    assert!(matches!(facts.counts_gap, Some(Gap::SourceFailed { .. })));
    assert_eq!(state.next_minute, Some(at(0)));
}

#[test]
fn minutes_without_new_traffic_are_no_evidence() {
    let (policy, mut state) = counting();
    let mut obs = window(0, 2, None);
    if let Some(Fetched::Ok(w)) = obs.counts.as_mut() {
        w.minutes.clear();
    }
    let facts = state.ingest(&policy, &obs, at(6));
    assert_eq!(
        facts.minutes_counted, 2,
        "an empty minute is still counted as seen"
    );
    assert!(matches!(facts.counts_gap, Some(Gap::TooFewRequests { .. })));
    assert_eq!(state.last_evidence_at, T0, "evidence clock not moved");
    let assessment = state.assess(&policy, &facts, false);
    assert!(!assessment.errors.is_healthy());
    assert!(!assessment.latency.is_healthy());
}

#[test]
fn failed_counts_are_inconclusive_for_both_count_signals() {
    let (policy, mut state) = counting();
    state.ingest(&policy, &window(0, 3, None), at(5));
    let failed = Observations {
        counts: Some(Fetched::Failed {
            why: "SQL 500".into(),
        }),
        ..Observations::default()
    };
    let facts = state.ingest(&policy, &failed, at(6));
    let a = state.assess(&policy, &facts, false);
    for (verdict, signal) in [(&a.errors, Signal::Errors), (&a.latency, Signal::Latency)] {
        assert!(
            matches!(verdict, Verdict::Inconclusive { why: Gap::SourceFailed { signal: s, .. } } if *s == signal),
            "{verdict}"
        );
    }
}

#[test]
fn probe_streak_moves_once_per_minute() {
    let (policy, mut state) = counting();
    let failed = Observations {
        healthz: Some(Probe::Failed {
            status: Some(500),
            error: None,
        }),
        ..Observations::default()
    };
    let wrong = Observations {
        healthz: Some(Probe::WrongVersion {
            answered_by: "old".into(),
        }),
        ..Observations::default()
    };
    let steps = [
        (&failed, 1, 1),
        (&failed, 1, 1), // same minute again
        (&wrong, 2, 1),  // another version answered: neither failure nor success
        (&failed, 3, 2),
    ];
    for (obs, m, want) in steps {
        state.ingest(&policy, obs, at(m));
        assert_eq!(state.healthz_failures, want, "minute {m}");
    }
}

#[test]
fn p95_over_the_ceiling_is_unhealthy_only_after_k_windows() {
    let (policy, mut state) = counting();
    let mut kinds = Vec::new();
    // 20 of each minute's 100 rows over the ceiling: p95 is clearly above it (over 5%).
    for m in 0..3 {
        let facts = state.ingest(&policy, &slow_window(m, m + 1, 20.0), at(m + 3));
        let a = state.assess(&policy, &facts, false);
        kinds.push(matches!(a.latency, Verdict::Unhealthy { .. }));
    }
    assert_eq!(kinds, vec![false, false, true]);
    // A trailing window of minutes within the ceiling resets the streak.
    let facts = state.ingest(&policy, &slow_window(3, 8, 2.0), at(10));
    assert_eq!(facts.latency, Some(Breach::Within));
    assert_eq!(
        state.latency_breaches, 0,
        "a judged window within the ceiling resets"
    );
    assert!(!matches!(
        state.assess(&policy, &facts, false).latency,
        Verdict::Unhealthy { .. }
    ));
}

#[test]
fn the_shared_incident_rule_weighs_both_versions_minutes_alike_after_a_step_up() {
    // Four minutes at 10% (100 new rows, 900 old), then one at 50% where everyone is slow
    // (20% of 500 rows each). The new version's window is 11% slow, mostly that minute;
    // the old version's rows are 2.4% slow, mostly the calm minutes, but weighed as the new
    // version's rows fall, 11% too: a shared incident, not the release's fault.
    let (policy, mut state) = counting();
    let mut obs = window(0, 5, None);
    if let Some(Fetched::Ok(w)) = obs.counts.as_mut() {
        for (i, m) in w.minutes.iter_mut().enumerate() {
            let (new, old, slow) = if i < 4 {
                (100.0, 900.0, 0.0)
            } else {
                (500.0, 500.0, 100.0)
            };
            for (c, rows) in [(&mut m.new, new), (&mut m.old, old)] {
                *c = VersionCounts {
                    requests: rows,
                    slow,
                    stored: StoredRows::unsampled(rows, 0.0, slow),
                    ..VersionCounts::default()
                };
            }
        }
    }
    let facts = state.ingest(&policy, &obs, at(7));
    assert_eq!(facts.latency, Some(Breach::Within));
    let spared = state
        .concurrent_share(|r| r.slow)
        .expect("the old version served");
    assert!((spared.share - 100.0 / 900.0).abs() < 1e-12, "{spared:?}");
    let new = &state.window().new.stored;
    let alone = policy.judge_latency_ceiling(new, None, 5, None);
    assert!(
        matches!(alone, Breach::Over(_)),
        "without the old version: {alone:?}"
    );
}

#[test]
fn the_ceilings_count_stored_rows_not_the_requests_they_stand_for() {
    // Sampled at 20: 5 rows a minute stand for 100 requests, 1 of them slow. Five minutes
    // hold 500 requests but 25 rows, too few for the p95 ceiling however the slow one falls.
    let (policy, mut state) = counting();
    let mut obs = slow_window(0, 5, 20.0);
    if let Some(Fetched::Ok(w)) = obs.counts.as_mut() {
        for m in &mut w.minutes {
            m.sample_interval = 20.0;
            m.new.stored = StoredRows {
                rows: 5.0,
                errors: 0.0,
                slow: 1.0,
            };
        }
    }
    let facts = state.ingest(&policy, &obs, at(7));
    assert_eq!(
        facts.latency,
        Some(Breach::TooFew {
            have: 25.0,
            need: policy.latency_ceiling_min_rows
        })
    );
    let a = state.assess(&policy, &facts, false);
    assert_eq!(
        (a.window.new.requests, a.window.new.stored.rows),
        (500.0, 25.0)
    );
}

#[test]
fn sampled_counts_feed_the_tests_per_sample() {
    let (policy, mut state) = counting();
    let mut obs = window(0, 1, None);
    if let Some(Fetched::Ok(w)) = obs.counts.as_mut() {
        w.minutes[0].sample_interval = 10.0;
    }
    state.ingest(&policy, &obs, at(5));
    assert_eq!(state.errors.summary().new_total, 10.0);
    assert_eq!(
        state.step_totals.new.requests, 100.0,
        "reports keep the estimate"
    );
}

#[test]
fn bake_minutes_feed_the_bake_test_against_the_split_reference() {
    let (policy, mut state) = counting();
    state.ingest(&policy, &window(0, 3, None), at(5));
    state.begin_bake(at(2).plus_minutes(0), 30);
    // Minute 2 was already counted as split; minutes 3.. go to the bake.
    state.ingest(&policy, &window(3, 5, None), at(7));
    let bake = state.errors_bake.as_ref().expect("bake test").summary();
    assert_eq!((bake.old_bad, bake.old_total), (27.0, 2700.0));
    assert_eq!(bake.new_total, 200.0);
    assert_eq!(state.errors.summary().new_total, 300.0);
    // The bake looks got the same reference, over the three split minutes.
    state.bake_look(1.0);
    let look = state
        .looks
        .bake(BudgetRow::ErrorsBakeLooks)
        .unwrap()
        .latest()
        .expect("a bake look");
    let Against::Reference {
        reference: Some(reference),
        ..
    } = look.against
    else {
        panic!("a bake look has its reference: {look:?}");
    };
    assert_eq!((reference.minutes, reference.bad), (3, 27.0));
    assert_eq!((look.new_bad, look.new_requests().unwrap()), (2, 200.0));
    assert!(look.closing() && !look.rejected, "{look:?}");
}

#[test]
fn a_rollout_stored_before_the_bake_looks_gets_them_when_its_bake_starts() {
    let (policy, mut state) = counting();
    // What the schema's step 0 → 1 gives a rollout stored without them (rollout::schema).
    *state.looks.bake_mut(BudgetRow::ErrorsBakeLooks).unwrap() = BakeLooks::default();
    *state.looks.bake_mut(BudgetRow::SlowBakeLooks).unwrap() = BakeLooks::default();
    state.split_minutes = 0;
    assert_eq!(
        state
            .looks
            .bake(BudgetRow::ErrorsBakeLooks)
            .unwrap()
            .alpha(),
        0.0
    );
    state.ingest(&policy, &window(0, 3, None), at(5));
    state.begin_bake(at(2), 30);
    state.ingest(&policy, &window(3, 5, None), at(7));
    let want = policy.bake_looks(CountTest::ErrorsBake).alpha();
    assert!(want > 0.0);
    assert_eq!(
        state
            .looks
            .bake(BudgetRow::ErrorsBakeLooks)
            .unwrap()
            .alpha(),
        want
    );
    assert_eq!(
        state.looks.bake(BudgetRow::SlowBakeLooks).unwrap().alpha(),
        policy.bake_looks(CountTest::SlowBake).alpha()
    );
}

/// 180 minutes of the old version before the rollout at 100 rps and 0.1% 5xx (6 a minute),
/// each minute's rate moved by a gamma factor of squared CV `cv2`.
fn quiet_window(seed: u64, cv2: f64) -> Option<Burstiness> {
    let mut rng = crate::sim::rng::Rng::from_seed(seed);
    let minutes: Vec<(f64, f64)> = (0..180)
        .map(|_| {
            let mean = 6.0 * rng.gamma_mean_one(cv2);
            (6000.0, rng.poisson(mean) as f64)
        })
        .collect();
    Burstiness::estimate(minutes)
}

#[test]
fn quiet_looks_scale_for_bursts_only_where_the_window_is_plainly_bursty() {
    // Six 5xx a minute is under half the raw limit of 30: Poisson minutes stay raw, while
    // per-version bursts of CV 50% (which fooled raw looks: 2.6% false rollbacks in the
    // stress sweep) are beyond doubt over 180 minutes, and those looks are scaled.
    let policy = Policy::default();
    let scaled = |seed: u64, cv2: f64| {
        let mut looks = ScheduledLooks::new(0.001, 1.0, policy.look_max_events_per_minute);
        burst_scale_for(&policy, Some(&mut looks), quiet_window(seed, cv2)).is_some()
    };
    let calm = (0..200).filter(|&seed| scaled(seed, 0.0)).count();
    let bursty = (0..200).filter(|&seed| scaled(seed, 0.25)).count();
    eprintln!("scaled: {calm} of 200 calm windows, {bursty} of 200 bursty ones");
    // About 2% of calm windows look bursty by chance (one-sided, two standard errors).
    assert!(calm <= 12, "{calm} of 200 calm windows scaled");
    assert!(bursty >= 190, "{bursty} of 200 bursty windows scaled");
}

#[test]
fn a_window_bursty_only_over_blocks_of_minutes_scales_the_bake_but_not_the_split() {
    let policy = Policy::default();
    let mut state = SignalState::new(&policy, T0);
    // 180 minutes before the deploy hook: 8 5xx a minute for 10 minutes, then 4 for 10, and
    // so on. Minute to minute that is calm (each count within Poisson noise of 6); over
    // blocks of minutes it is a burst that lasts, which the split cancels and the bake
    // does not.
    let minutes = (-180..0)
        .map(|m: i64| MinuteCounts {
            minute: at(m),
            new: VersionCounts::default(),
            old: {
                let errors = if (m + 180) / 10 % 2 == 0 { 8.0 } else { 4.0 };
                VersionCounts {
                    requests: 6000.0,
                    errors,
                    stored: StoredRows::unsampled(6000.0, errors, 0.0),
                    ..VersionCounts::default()
                }
            },
            sample_interval: 1.0,
        })
        .collect();
    let history = Fetched::Ok(CountsWindow {
        from: at(-180),
        to: at(0),
        minutes,
        new_latency: VersionLatency::default(),
        old_latency: VersionLatency::default(),
    });
    let obs = Observations {
        history: Some(history),
        ..Observations::default()
    };
    state.ingest(&policy, &obs, at(0));
    assert!(state.history_read);
    assert!(state.errors_bursts.is_none(), "the split looks stay raw");
    let scaling = state
        .looks
        .bake(BudgetRow::ErrorsBakeLooks)
        .unwrap()
        .e_process_scaling(30);
    assert!(scaling.is_some_and(|s| s.bake_divisor > 1.0), "{scaling:?}");
    // No slow requests in the window: no estimate, raw bake.
    assert!(state
        .looks
        .bake(BudgetRow::SlowBakeLooks)
        .unwrap()
        .e_process_scaling(30)
        .is_none());
    // The ceilings read the same rows: bursty 5-minute sums, and nothing to say of slow ones.
    let errors = state
        .ceiling_bursts
        .errors
        .expect("5xx rows to estimate from");
    assert!(errors.sum_inflation(20.0, 5.0) > 1.0, "{errors:?}");
    assert!(state.ceiling_bursts.slow.is_none());
}

#[test]
fn the_bake_e_process_counts_burst_scaled_minutes_where_the_bake_looks_do() {
    let policy = Policy::default();
    let mut state = SignalState::new(&policy, T0);
    let bursts = Burstiness::estimate(vec![(6000.0, 60.0); 40]).expect("an estimate");
    assert!(state
        .looks
        .bake_mut(BudgetRow::ErrorsBakeLooks)
        .unwrap()
        .scale_for_bursts(bursts, 200.0, 5_000.0));
    state.start_counting(T0);
    state.ingest(&policy, &window(0, 3, None), at(5));
    state.begin_bake(at(2), 30);
    state.ingest(&policy, &window(3, 5, None), at(7));
    let expected = state
        .looks
        .bake(BudgetRow::ErrorsBakeLooks)
        .unwrap()
        .e_process_scaling(30)
        .expect("scaled");
    let summary = state.errors_bake.as_ref().expect("bake started").summary();
    assert_eq!(summary.burst_divisor, Some(expected.bake_divisor));
    assert!(expected.bake_divisor > 1.0);
    assert_eq!(
        (summary.old_bad, summary.old_total),
        (expected.reference.bad, expected.reference.requests)
    );
    // The three split minutes' 2,700 old-version requests, divided by their own inflation.
    assert!(expected.reference.requests < 2700.0, "{expected:?}");
    // Bake minutes 3 and 4, 100 requests each, divided.
    let divided = 200.0 / expected.bake_divisor;
    assert!((summary.new_total - divided).abs() < 1e-9, "{summary:?}");
    // The slow-request bake was not scaled: raw counts.
    let slow = state.slow_bake.as_ref().expect("bake started").summary();
    assert_eq!(slow.burst_divisor, None);
}

//! The window before the rollout: read once, the burst scaling it sets, a failed read given
//! up, and the history look it feeds.

use super::*;
use crate::policy::BudgetRow;
use crate::stats::ExactLooks;
use crate::stats::{LookKind, Skipped};

/// What a healthy world answers at minute `m` when the read of the window before the
/// rollout, if asked for, fails.
fn history_read_failing(s: &RolloutState, m: i64) -> Observations {
    let mut obs = observe(s, at(m), HEALTHY, &s.deployment.live);
    if obs.history.is_some() {
        obs.history = Some(Fetched::Failed { why: "503".into() });
    }
    obs
}

#[test]
fn the_baseline_window_before_the_rollout_is_read_once() {
    let s = ramping();
    let q = plan(&s, at(1))
        .history
        .expect("asks for the baseline window");
    // 180 minutes ending the ingestion lag (2 minutes) before the rollout started.
    assert_eq!((q.from, q.to), (at(-182), at(-2)));
    assert_eq!(
        (q.new_version.as_str(), q.old_version.as_str()),
        ("new", "old")
    );
    let (s, _) = run(s, 1..=1, HEALTHY);
    assert!(plan(&s, at(2)).history.is_none(), "read once");
    let baseline = s
        .signals
        .looks
        .history(BudgetRow::ErrorsSplitHistory)
        .unwrap()
        .baseline()
        .expect("baseline");
    assert_eq!(baseline.minutes, 180);
    assert!((baseline.requests - 180.0 * 6000.0).abs() < 1e-6);
    assert!((baseline.bad - 180.0 * 60.0).abs() < 1e-6);
}

#[test]
fn the_5xx_and_slow_looks_scale_for_bursts_only_where_the_window_ran_at_half_their_limit() {
    // 100 rps before the rollout: 60 5xx and 120 slow requests a minute, over half of 30.
    let (s, _) = run(ramping(), 1..=1, HEALTHY);
    assert!(s.signals.errors_bursts.is_some() && s.signals.slow_bursts.is_some());
    // Either side of 15 5xx a minute (6,000 requests a minute).
    for (per_minute, scaled) in [(14.0, false), (16.0, true)] {
        let traffic = Traffic {
            new_errors: per_minute / 6000.0,
            old_errors: per_minute / 6000.0,
            ..HEALTHY
        };
        let (s, _) = run(ramping(), 1..=1, traffic);
        assert_eq!(
            s.signals.errors_bursts.is_some(),
            scaled,
            "{per_minute} a minute"
        );
    }
    // 10 rps: 0.06 5xx and 12 slow requests a minute; the looks count raw minutes.
    let quiet = Traffic {
        rps: 10.0,
        new_errors: 0.0001,
        old_errors: 0.0001,
        ..HEALTHY
    };
    let (s, _) = run(ramping(), 1..=1, quiet);
    assert!(s.signals.errors_bursts.is_none() && s.signals.slow_bursts.is_none());
    assert!(s.signals.approach_bursts.is_some(), "the window was read");
}

#[test]
fn a_window_read_after_split_minutes_were_counted_leaves_the_looks_raw() {
    let mut s = ramping();
    let mut m = 3;
    // The window read fails until the looks have counted a split minute.
    while s.signals.split_minutes == 0 {
        let obs = history_read_failing(&s, m);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        s = confirm(next, &actions, at(m)).0;
        m += 1;
        assert!(m < 10, "no split minute counted");
    }
    assert!(
        s.signals.history_wanted(),
        "{} failures",
        s.signals.history_failures
    );
    let (s, _) = run(s, m..=m + 2, HEALTHY);
    assert!(s.signals.history_read && s.signals.approach_bursts.is_some());
    assert!(s.signals.errors_bursts.is_none() && s.signals.slow_bursts.is_none());
    let look = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .latest()
        .expect("a look");
    assert!(!look.scaled, "{look:?}");
    assert!(
        matches!(look.skipped, Some(Skipped::TooManyEvents { .. })),
        "{look:?}"
    );
}

#[test]
fn a_failing_baseline_read_is_given_up_after_three_tries_and_holds_nothing() {
    let mut s = ramping();
    for m in 1..=4 {
        let obs = history_read_failing(&s, m);
        assert_eq!(obs.history.is_some(), m <= 3, "minute {m}");
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        if m <= 3 {
            let said = actions.iter().any(|a| match a {
                Action::RecordEvent(e) => e
                    .details
                    .iter()
                    .any(|d| d.contains("window before the rollout failed") && d.contains("503")),
                _ => false,
            });
            assert!(said, "the audit event says the read failed (minute {m})");
        }
        s = confirm(next, &actions, at(m)).0;
    }
    assert!(s
        .signals
        .looks
        .history(BudgetRow::ErrorsSplitHistory)
        .unwrap()
        .baseline()
        .is_none());
    assert!(s.signals.approach_bursts.is_none());
    // Everything else goes on: the healthy release is promoted when its dwell ends.
    let (s, _) = run(s, 5..=10, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
}

/// Minute counts for the first step (10%) of a low-traffic world: `new` and `old` 5xx in
/// each minute, 60 and 540 requests.
fn low_traffic_tick(s: RolloutState, m: i64, new: f64, old: f64) -> (RolloutState, Vec<Action>) {
    let traffic = Traffic {
        rps: 10.0,
        new_errors: 0.0,
        old_errors: 0.0001,
        new_p95_ms: 120.0,
    };
    let mut obs = observe(&s, at(m), traffic, &s.deployment.live);
    if let Some(Fetched::Ok(window)) = obs.counts.as_mut() {
        for minute in &mut window.minutes {
            minute.new.errors = new;
            minute.old.errors = old;
        }
    }
    let (next, actions) = step(s, Input::Tick(obs), at(m));
    confirm(next, &actions, at(m))
}

#[test]
fn a_few_new_version_5xx_against_a_quiet_baseline_roll_back_through_the_history_look() {
    // The baseline: 0.01% over 180 minutes at 10 rps (about 11 5xx in 108,000 requests).
    // In the 10% step the new version serves 3 5xx in 480 requests, the old version 1 in
    // 4,320 (in line with its baseline): too few for the concurrent looks alone (p ≈ 0.0037
    // against 0.0024 at the step end), enough for their 5% guard, and far above 1.5 × the
    // baseline (p ≈ 1e-4).
    let mut s = ramping();
    for m in 1..=10 {
        let new = if (3..=5).contains(&m) { 1.0 } else { 0.0 };
        let old = if m == 3 { 1.0 } else { 0.0 };
        s = low_traffic_tick(s, m, new, old).0;
    }
    let look = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .latest()
        .expect("step-end look");
    assert!(
        !look.rejected,
        "the concurrent looks alone do not reject: {look:?}"
    );
    let history = s
        .signals
        .looks
        .history(BudgetRow::ErrorsSplitHistory)
        .unwrap()
        .rejected()
        .expect("history look rejected");
    assert_eq!(history.kind, LookKind::StepEnd { step: 0 });
    assert_eq!(history.new_bad, 3);
    assert!(history.guard_rejected() && history.p_value < history.alpha);
    assert!(rolled_back(&s), "{:?}", s.phase);
    let reason = format!("{:?}", s.last_assessment.as_ref().unwrap().errors);
    assert!(reason.contains("before the rollout"), "{reason}");

    // The same counts with the old version as bad during the split as the new one (an
    // incident both share): the old version's own counts show the drift from the
    // baseline, the history look is skipped, and nothing is rolled back.
    let mut s = ramping();
    for m in 1..=10 {
        let bad = if (3..=5).contains(&m) { 1.0 } else { 0.0 };
        s = low_traffic_tick(s, m, bad, 9.0 * bad).0;
    }
    let history = s
        .signals
        .looks
        .history(BudgetRow::ErrorsSplitHistory)
        .unwrap()
        .latest()
        .expect("history look");
    assert!(
        matches!(history.skipped, Some(Skipped::Drifted { .. })) && !history.rejected,
        "{history:?}"
    );
    assert!(!rolled_back(&s), "{:?}", s.phase);
}

//! Rollbacks: what triggers one (healthz, a 5xx regression, even while paused), the
//! numbers it reports, and a rollback confirmed by a read when its outcome is lost.

use super::*;

/// The new version serving 15% 5xx against the old version's 1%.
const REGRESSION: Traffic = Traffic {
    new_errors: 0.15,
    ..HEALTHY
};

#[test]
fn healthz_three_failures_roll_back() {
    let (mut s, _) = run(ramping(), 1..=3, HEALTHY);
    for m in 4..=6 {
        let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
        obs.healthz = Some(Probe::Failed {
            status: Some(500),
            error: None,
        });
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        s = confirm(next, &actions, at(m)).0;
        if m < 6 {
            assert!(matches!(s.phase, Phase::Ramping { .. }), "minute {m}");
            assert!(writes(&actions).is_empty());
        } else {
            assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
            assert_eq!(percents(&writes(&actions)[0].1), vec![("old", 100.0)]);
            let headline = &notices(&actions)[0].headline;
            assert!(headline.contains("Rolling back"), "{headline}");
        }
    }
}

#[test]
fn error_regression_rolls_back_with_the_numbers() {
    let (s, actions) = run(ramping(), 1..=5, REGRESSION);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    let rollback = rollback_notice(&actions);
    assert!(!rollback.details.is_empty());
    assert!(rollback
        .assessment
        .as_ref()
        .is_some_and(|a| a.errors_test.is_some()));
}

#[test]
fn paused_rollout_still_rolls_back_on_unhealthy() {
    let (s, _) = run(ramping(), 1..=2, HEALTHY);
    let (s, _) = step(s, operator(Command::Pause, "a", None), at(3));
    let (s, actions) = run(s, 4..=8, REGRESSION);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    assert_eq!(percents(&writes(&actions)[0].1), vec![("old", 100.0)]);
}

#[test]
fn rollback_is_confirmed_by_a_read_when_the_outcome_is_lost() {
    let (s, _) = run(ramping(), 1..=2, HEALTHY);
    let (s, _) = step(
        s,
        operator(Command::Abort, "ops", Some("bad deploy")),
        at(3),
    );
    let obs = Observations {
        deployment: Some(Fetched::Ok(LiveDeployment {
            versions: vec![stable()],
            ..LiveDeployment::default()
        })),
        ..Observations::default()
    };
    let (s, actions) = step(s, Input::Tick(obs), at(4));
    assert!(matches!(&s.phase, Phase::Aborted { by, .. } if by == "ops"));
    assert_eq!(notices(&actions)[0].kind, EventKind::Aborted);
}

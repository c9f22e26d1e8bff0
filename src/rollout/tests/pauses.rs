//! Pauses: what pauses a rollout (missing evidence, the step's maximum, a queue breach, an
//! operator), and which pauses lift themselves.

use super::*;
use crate::observe::QueueMetrics;
use crate::policy::QueueThresholds;

/// A healthy tick at minute `m` whose counts query timed out.
fn tick_without_counts(s: RolloutState, m: i64) -> RolloutState {
    let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
    obs.counts = Some(Fetched::Failed {
        why: "SQL timeout".into(),
    });
    step(s, Input::Tick(obs), at(m)).0
}

#[test]
fn no_evidence_for_ten_minutes_pauses_and_says_so() {
    let (mut s, _) = run(ramping(), 1..=3, HEALTHY);
    let mut paused_at = None;
    for m in 4..=20 {
        s = tick_without_counts(s, m);
        if paused_at.is_none() && matches!(s.phase, Phase::Paused { .. }) {
            paused_at = Some(m);
        }
    }
    assert_eq!(
        paused_at,
        Some(13),
        "10 min after the last evidence at minute 3"
    );
    let Phase::Paused { reason, .. } = &s.phase else {
        unreachable!()
    };
    assert!(reason.to_string().contains("SQL timeout"), "{reason}");
}

#[test]
fn a_pause_for_missing_evidence_lifts_itself_when_evidence_returns() {
    let (mut s, _) = run(ramping(), 1..=3, HEALTHY);
    for m in 4..=14 {
        s = tick_without_counts(s, m);
    }
    assert!(matches!(s.phase, Phase::Paused { .. }), "{:?}", s.phase);
    let obs = observe(&s, at(15), HEALTHY, &s.deployment.live);
    let (s, actions) = step(s, Input::Tick(obs), at(15));
    // The minutes missed during the outage arrive at once, so it may even advance now.
    assert!(matches!(s.phase, Phase::Ramping { .. }), "{:?}", s.phase);
    assert!(notices(&actions)
        .iter()
        .any(|n| n.kind == EventKind::Resumed));
}

#[test]
fn a_pause_an_operator_asked_for_does_not_lift_itself() {
    let (s, _) = run(ramping(), 1..=3, HEALTHY);
    let pause = operator(Command::Pause, "ana", None);
    let (mut s, _) = step(s, pause, at(4));
    for m in 5..=8 {
        let obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
        s = step(s, Input::Tick(obs), at(m)).0;
    }
    assert!(matches!(s.phase, Phase::Paused { .. }), "{:?}", s.phase);
}

#[test]
fn step_max_without_evidence_pauses_with_the_reason() {
    // The counts fail every other minute and the probe misses the new version in between:
    // never unhealthy, never healthy, yet never long without evidence.
    let (mut s, _) = run(ramping(), 1..=3, HEALTHY);
    for m in 4..=31 {
        let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
        if m % 2 == 0 {
            obs.counts = Some(Fetched::Failed {
                why: "Analytics Engine answered 503".into(),
            });
        } else {
            obs.healthz = Some(answered_by_old());
        }
        let (next, _) = step(s, Input::Tick(obs), at(m));
        s = next;
    }
    let Phase::Paused {
        reason: PauseReason::StepMaxReached { minutes, gaps, .. },
        ..
    } = &s.phase
    else {
        panic!("{:?}", s.phase);
    };
    assert_eq!(*minutes, 30);
    assert!(!gaps.is_empty());
}

#[test]
fn queue_breach_for_k_ticks_pauses() {
    let policy = Policy {
        queue: Some(QueueThresholds::default()),
        ..Policy::default()
    };
    let (s, actions) = first_split_written(policy);
    let (mut s, _) = confirm(s, &actions, T0);
    for m in 1..=3 {
        let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
        obs.queue = Some(Fetched::Ok(QueueMetrics {
            depth: 5000.0,
            retries_per_minute: 0.0,
        }));
        let (next, _) = step(s, Input::Tick(obs), at(m));
        s = next;
        let paused = matches!(
            s.phase,
            Phase::Paused {
                reason: PauseReason::Queue { .. },
                ..
            }
        );
        assert_eq!(paused, m == 3, "minute {m}");
    }
}

//! A deployment someone else wrote: a split the gate did not write pauses it, and a manual
//! rollback supersedes it.

use super::*;
use crate::rollout::deployment::share;

#[test]
fn drift_pauses_and_makes_no_writes() {
    let (mut s, _) = run(ramping(), 1..=3, HEALTHY);
    let foreign = vec![share("new", 30.0), share("old", 70.0)];
    // A human sets 30% at minute 4; the quiet rollout notices at its next read minute.
    let mut noticed = None;
    for m in 4..4 + DRIFT_READ_MINUTES {
        let obs = observe(&s, at(m), HEALTHY, &foreign);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        s = next;
        if matches!(s.phase, Phase::Drifted { .. }) {
            noticed = Some((m, actions));
            break;
        }
        assert!(writes(&actions).is_empty(), "minute {m}");
    }
    let (m, actions) = noticed.expect("noticed within DRIFT_READ_MINUTES");
    assert!(matches!(
        s.phase,
        Phase::Drifted {
            at: Stage::Ramping { step: 0 },
            ..
        }
    ));
    assert_eq!(notices(&actions).len(), 1);
    for m in m + 1..=40 {
        let obs = observe(&s, at(m), HEALTHY, &foreign);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        assert!(actions.is_empty(), "minute {m}: {actions:?}");
        s = next;
    }
    assert!(plan(&s, at(41)).counts.is_none());
    // Resuming takes over: the intended split is written again, once a read shows the
    // deployment the operator took over still live.
    let (s, actions) = step(s, operator(Command::Resume, "ops", None), at(41));
    assert_eq!(s.phase, Phase::Ramping { step: 0 });
    let (_, sent) = answer_reads(s, &actions, &live_read(&foreign), at(41));
    assert_eq!(
        percents(&writes(&sent)[0].1),
        vec![("new", 10.0), ("old", 90.0)]
    );
}

#[test]
fn manual_rollback_supersedes_the_rollout() {
    let (s, _) = run(ramping(), 1..=3, HEALTHY);
    let manual = LiveDeployment {
        versions: vec![stable()],
        author_email: Some("alice@example.com".into()),
        triggered_by: Some("rollback".into()),
        ..LiveDeployment::default()
    };
    let obs = Observations {
        deployment: Some(Fetched::Ok(manual)),
        ..Observations::default()
    };
    let (s, actions) = step(s, Input::Tick(obs), at(4));
    assert!(matches!(s.phase, Phase::Superseded { .. }));
    assert!(writes(&actions).is_empty());
    assert!(notices(&actions)[0]
        .details
        .iter()
        .any(|d| d.contains("alice@example.com")));
    assert_eq!(plan(&s, at(5)), ObservationPlan::default());
}

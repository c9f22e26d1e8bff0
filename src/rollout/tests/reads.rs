//! When the live deployment is read: once every `DRIFT_READ_MINUTES` on a quiet rollout, at
//! minutes staggered by script; every minute while anything can change; and always in the
//! same step before a write, so a write never overwrites what a human did since.

use super::*;
use crate::observe::CohortSplit;
use crate::rollout::deployment::share;

/// The minutes in `minutes` at which `plan` reads the live deployment of `s`.
fn read_minutes(s: &RolloutState, minutes: std::ops::Range<i64>) -> Vec<i64> {
    minutes
        .filter(|m| plan(s, at(*m)).read_deployment)
        .collect()
}

/// The `ReadDeployment`s among `actions`.
fn reads(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::ReadDeployment { .. }))
        .count()
}

/// A human's split of our versions.
fn foreign() -> Vec<VersionShare> {
    vec![share("new", 30.0), share("old", 70.0)]
}

#[test]
fn a_quiet_rollout_reads_the_deployment_once_every_five_minutes() {
    let s = ramping();
    assert!(s.deployment.pending.is_none() && s.clock.live_since.is_some());
    let minutes = read_minutes(&s, 1..101);
    assert_eq!(minutes.len(), 20, "{minutes:?}");
    assert!(
        minutes
            .windows(2)
            .all(|w| w[1] - w[0] == DRIFT_READ_MINUTES),
        "{minutes:?}"
    );
    // API reads per rollout per 5 minutes: 5 when it read every minute, 1 now.
    for start in 1..96 {
        assert_eq!(read_minutes(&s, start..start + 5).len(), 1, "from {start}");
    }
}

#[test]
fn the_read_minutes_are_stable_per_script_and_spread_over_200_rollouts() {
    let scripts: Vec<String> = (0..200).map(|i| format!("worker-{i}")).collect();
    let mut readers_per_minute = Vec::new();
    for minute in 0..60 {
        let readers = scripts
            .iter()
            .filter(|script| drift_read_due(script, at(minute)))
            .count();
        assert!(
            (30..=50).contains(&readers),
            "minute {minute}: {readers} of 200 read (all 200 read every minute before)"
        );
        readers_per_minute.push(readers);
    }
    for five in readers_per_minute.chunks(5) {
        assert_eq!(
            five.iter().sum::<usize>(),
            200,
            "one read per rollout per 5 minutes"
        );
    }
    // A rollout reads at the minutes its script name gives, whatever else runs: `plan` of a
    // quiet rollout of that script reads exactly there.
    for script in scripts.iter().step_by(37) {
        let mut s = ramping();
        s.script = script.clone();
        let among_200: Vec<i64> = (0..60).filter(|m| drift_read_due(script, at(*m))).collect();
        assert_eq!(read_minutes(&s, 0..60), among_200, "{script}");
    }
    // Stable across releases and platforms (FNV-1a of the name): pinned.
    assert_eq!(
        read_minutes(&ramping(), 0..12),
        [1, 6, 11],
        "mauntic-gateway"
    );
}

#[test]
fn every_condition_that_can_change_reads_every_minute() {
    let unconfirmed = {
        let mut s = ramping();
        s.clock.live_since = None;
        s
    };
    let paused_in_preflight = {
        let (s, _) = started(Policy::default());
        step(s, operator(Command::Pause, "ops", None), T0).0
    };
    let rolling_back = step(ramping(), operator(Command::Abort, "ops", None), T0).0;
    let drifted = {
        let obs = Observations {
            deployment: Some(live_read(&foreign())),
            ..Observations::default()
        };
        step(ramping(), Input::Tick(obs), at(1)).0
    };
    let cases = [
        ("pre-flight", started(Policy::default()).0),
        ("paused in pre-flight", paused_in_preflight),
        ("rolling back", rolling_back),
        ("drifted", drifted),
        ("a write pending", first_split_written(Policy::default()).0),
        ("the step not yet confirmed live", unconfirmed),
    ];
    for (name, s) in cases {
        assert_eq!(
            read_minutes(&s, 1..11),
            (1..11).collect::<Vec<_>>(),
            "{name}: {:?}",
            s.phase
        );
    }
}

#[test]
fn a_tick_without_a_planned_read_is_not_a_gap_and_a_failed_read_is() {
    let (s, _) = run(ramping(), 1..=9, HEALTHY);
    let obs = observe(&s, at(10), HEALTHY, &s.deployment.live);
    assert!(obs.deployment.is_none(), "minute 10 is not a read minute");
    let (advanced, _) = step(s.clone(), Input::Tick(obs.clone()), at(10));
    assert_eq!(advanced.phase, Phase::Ramping { step: 1 });
    let failed = Observations {
        deployment: Some(Fetched::Failed {
            why: "API 502".into(),
        }),
        ..obs
    };
    let (held, _) = step(s, Input::Tick(failed), at(10));
    assert_eq!(held.phase, Phase::Ramping { step: 0 });
    let Some(Decision::Hold { gaps, .. }) = &held.last_decision else {
        panic!("{:?}", held.last_decision);
    };
    assert!(gaps.iter().any(|g| g.contains("deployment")), "{gaps:?}");
}

#[test]
fn a_rollback_decided_without_a_fresh_read_reads_first_and_keeps_cohorts_a_human_set() {
    let (mut s, _) = run(ramping(), 1..=1, HEALTHY);
    let mut decided = Vec::new();
    for m in 2..=4 {
        let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
        assert!(obs.deployment.is_none(), "minute {m} is not a read minute");
        obs.healthz = Some(Probe::Failed {
            status: Some(500),
            error: None,
        });
        (s, decided) = step(s, Input::Tick(obs), at(m));
    }
    assert!(
        matches!(s.phase, Phase::RollingBack { .. }),
        "{:?}",
        s.phase
    );
    assert_eq!(reads(&decided), 1);
    assert!(writes(&decided).is_empty(), "no write before the read");
    // Since the last read (minute 1) a human gave a cohort the new version.
    let live = LiveDeployment {
        versions: s.deployment.live.clone(),
        author_email: Some("alice@example.com".into()),
        cohorts: vec![CohortSplit {
            name: "employees".into(),
            versions: vec![share("new", 100.0)],
        }],
        ..LiveDeployment::default()
    };
    let (s, actions) = answer_reads(s, &decided, &Fetched::Ok(live), at(4));
    assert!(writes(&actions).is_empty(), "the cohorts are not erased");
    assert!(matches!(s.phase, Phase::Superseded { .. }), "{:?}", s.phase);
    assert!(s.deployment.pending.is_none());
    assert!(notices(&actions)[0]
        .headline
        .contains("finish the rollback by hand"));
}

#[test]
fn an_advance_at_the_dwell_end_reads_first_and_stops_on_drift_instead_of_overwriting() {
    let (s, _) = run(ramping(), 1..=9, HEALTHY);
    let obs = observe(&s, at(10), HEALTHY, &s.deployment.live);
    assert!(obs.deployment.is_none(), "minute 10 is not a read minute");
    let (s, actions) = step(s, Input::Tick(obs), at(10));
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
    assert_eq!(reads(&actions), 1);
    assert!(writes(&actions).is_empty(), "no write before the read");
    // The read finds our split confirmed: the write goes out.
    let (ok, sent) = answer_reads(s.clone(), &actions, &live_read(&s.deployment.live), at(10));
    assert_eq!(
        percents(&writes(&sent)[0].1),
        vec![("new", 50.0), ("old", 50.0)]
    );
    assert!(ok.deployment.pending.is_some());
    // The read finds a human's split: drift, and nothing is overwritten.
    let (s, actions) = answer_reads(s, &actions, &live_read(&foreign()), at(10));
    assert!(matches!(s.phase, Phase::Drifted { .. }), "{:?}", s.phase);
    assert!(writes(&actions).is_empty());
    assert!(s.deployment.pending.is_none());
    assert_eq!(notices(&actions)[0].kind, EventKind::Drifted);
}

#[test]
fn operator_commands_that_write_read_the_deployment_first() {
    for command in [Command::Promote, Command::Abort] {
        let (s, actions) = step(ramping(), operator(command, "ops", None), at(2));
        assert_eq!(reads(&actions), 1, "{command}");
        assert!(writes(&actions).is_empty(), "{command}");
        let (_, sent) = answer_reads(s, &actions, &live_read(&first_split()), at(2));
        assert_eq!(writes(&sent).len(), 1, "{command}: written after the read");
    }
}

/// The first split (10%), as `ramping` left it live.
fn first_split() -> Vec<VersionShare> {
    ramping().deployment.live
}

#[test]
fn a_failed_read_before_a_write_leaves_it_pending_and_the_next_tick_sends_it() {
    let (s, actions) = step(ramping(), operator(Command::Abort, "ops", None), at(2));
    let (write, _) = {
        let (_, sent) = answer_reads(s.clone(), &actions, &live_read(&first_split()), at(2));
        writes(&sent)[0].clone()
    };
    let failed = Fetched::Failed {
        why: "API 502".into(),
    };
    let (s, actions) = answer_reads(s, &actions, &failed, at(2));
    assert!(writes(&actions).is_empty());
    let pending = s.deployment.pending.as_ref().expect("still pending");
    assert_eq!(
        (pending.write, pending.attempts),
        (write, 0),
        "not sent yet"
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::RecordEvent(e) if e.kind == EventKind::WriteFailed && e.details[0] == "API 502"
    )));
    assert!(plan(&s, at(3)).read_deployment, "a write pending reads");
    let obs = Observations {
        deployment: Some(live_read(&first_split())),
        ..Observations::default()
    };
    let (s, actions) = step(s, Input::Tick(obs), at(3));
    assert_eq!(writes(&actions), vec![(write, vec![stable()])]);
    assert_eq!(reads(&actions), 0, "the tick's own read serves");
    assert_eq!(s.deployment.pending.as_ref().map(|p| p.attempts), Some(1));
}

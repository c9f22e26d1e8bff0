//! Unit tests for `rollout`: each transition, idempotency, the never-promote-on-missing-data
//! rule, deployment writes (pending, retry, refusal), drift and dry-run.

use super::*;
use crate::observe::QueueMetrics;
use crate::observe::{
    Check, CountsWindow, Fetched, MinuteCounts, Probe, VersionCounts, VersionLatency,
};
use crate::policy::QueueThresholds;
use crate::stats::{HistorySkipped, LookKind};

const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000); // 2026-11-27T10:00:00Z

fn at(minutes: i64) -> Timestamp {
    T0.plus_minutes(minutes)
}

fn request(dry_run: bool) -> StartRequest {
    StartRequest {
        script: "mauntic-gateway".into(),
        version_id: "new".into(),
        baseline_version_id: "old".into(),
        git_sha: Some("abc123".into()),
        schedule: Schedule::default(),
        dry_run,
        message: None,
    }
}

fn pass() -> Check {
    Check::Pass {
        detail: "ok".into(),
    }
}

fn report() -> PreflightReport {
    PreflightReport {
        version_exists: pass(),
        healthz: pass(),
        asset: pass(),
        bindings: pass(),
    }
}

/// Per-version traffic of a scripted world (rates are fractions of requests).
#[derive(Clone, Copy)]
struct Traffic {
    rps: f64,
    new_errors: f64,
    old_errors: f64,
    new_p95_ms: f64,
}

const HEALTHY: Traffic = Traffic {
    rps: 100.0,
    new_errors: 0.01,
    old_errors: 0.01,
    new_p95_ms: 120.0,
};

fn counts(requests: f64, error_rate: f64) -> VersionCounts {
    VersionCounts {
        requests,
        errors: requests * error_rate,
        slow: requests * 0.02,
        very_slow: 0.0,
        approaching: requests * 0.2,
    }
}

/// What a world with `live` deployed and `traffic` would answer to `plan(s, now)`.
fn observe(
    s: &RolloutState,
    now: Timestamp,
    traffic: Traffic,
    live: &[VersionShare],
) -> Observations {
    let p = plan(s, now);
    let share = live
        .iter()
        .find(|v| v.version_id == s.version_id)
        .map_or(0.0, |v| v.percent / 100.0);
    let per_minute = traffic.rps * 60.0;
    let counts = p.counts.map(|q| {
        let n = q.to.minute_index() - q.from.minute_index();
        let minutes: Vec<MinuteCounts> = (0..n)
            .map(|i| MinuteCounts {
                minute: q.from.plus_minutes(i),
                new: counts(per_minute * share, traffic.new_errors),
                old: counts(per_minute * (1.0 - share), traffic.old_errors),
                sample_interval: 1.0,
            })
            .collect();
        let window = f64::from(s.policy.window_minutes);
        Fetched::Ok(CountsWindow {
            from: q.from,
            to: q.to,
            minutes,
            new_latency: VersionLatency {
                requests: per_minute * share * window,
                p95_ms: Some(traffic.new_p95_ms),
            },
            old_latency: VersionLatency {
                requests: per_minute * (1.0 - share) * window,
                p95_ms: Some(120.0),
            },
        })
    });
    // Before the rollout the old version served everything at its own rates.
    let history = p.history.map(|q| {
        let old = self::counts(per_minute, traffic.old_errors);
        Fetched::Ok(CountsWindow::steady(&q, VersionCounts::default(), old))
    });
    Observations {
        deployment: p.read_deployment.then(|| {
            Fetched::Ok(LiveDeployment {
                versions: live.to_vec(),
                message: Some(format!("{MESSAGE_PREFIX} test")),
                ..LiveDeployment::default()
            })
        }),
        healthz: p.probe_healthz.then_some(Probe::Ok),
        counts,
        queue: None,
        history,
    }
}

/// Rolling back, or already rolled back (writes are confirmed at once here).
fn rolled_back(s: &RolloutState) -> bool {
    matches!(
        s.phase,
        Phase::RollingBack { .. } | Phase::RolledBack { .. }
    )
}

fn stable() -> VersionShare {
    crate::rollout::deployment::share("old", 100.0)
}

fn writes(actions: &[Action]) -> Vec<(u64, Vec<VersionShare>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetDeployment { write, split, .. } => Some((*write, split.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn notices(actions: &[Action]) -> Vec<&Notice> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn percents(split: &[VersionShare]) -> Vec<(&str, f64)> {
    split
        .iter()
        .map(|v| (v.version_id.as_str(), v.percent))
        .collect()
}

/// Confirms every write in `actions` at `now`, as a healthy API would.
fn confirm(mut s: RolloutState, actions: &[Action], now: Timestamp) -> (RolloutState, Vec<Action>) {
    let mut all = Vec::new();
    for (write, _) in writes(actions) {
        let outcome = WriteOutcome::Confirmed {
            deployment_id: None,
        };
        let (next, more) = step(s, Input::DeploymentWrite { write, outcome }, now);
        s = next;
        all.extend(more);
    }
    (s, all)
}

/// A rollout whose first split (10%) was confirmed live at T0.
fn ramping(dry_run: bool) -> RolloutState {
    let (s, _) = start(request(dry_run), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    confirm(s, &actions, T0).0
}

/// Ticks every minute in `minutes`, confirming writes at once; returns all actions.
fn run(
    mut s: RolloutState,
    minutes: std::ops::RangeInclusive<i64>,
    traffic: Traffic,
) -> (RolloutState, Vec<Action>) {
    let mut all = Vec::new();
    for m in minutes {
        let live = s.deployment.live.clone();
        let obs = observe(&s, at(m), traffic, &live);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        let (next, more) = confirm(next, &actions, at(m));
        s = next;
        all.extend(actions);
        all.extend(more);
    }
    (s, all)
}

#[test]
fn start_announces_once_and_asks_for_preflight() {
    let (s, actions) = start(request(false), Policy::default(), T0);
    assert_eq!(s.phase, Phase::Preflight);
    assert_eq!(notices(&actions).len(), 1);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::RunPreflight { .. })));
    let (_, again) = step(s, Input::Start, T0);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn preflight_failure_refuses_without_moving_traffic() {
    let fail = Check::Fail {
        reason: "bad".into(),
    };
    let cases: Vec<(&str, PreflightReport)> = vec![
        (
            "version",
            PreflightReport {
                version_exists: fail.clone(),
                ..report()
            },
        ),
        (
            "healthz",
            PreflightReport {
                healthz: fail.clone(),
                ..report()
            },
        ),
        (
            "asset",
            PreflightReport {
                asset: fail.clone(),
                ..report()
            },
        ),
        (
            "bindings",
            PreflightReport {
                bindings: fail.clone(),
                ..report()
            },
        ),
    ];
    for (name, r) in cases {
        let (s, _) = start(request(false), Policy::default(), T0);
        let (s, actions) = step(s, Input::Preflight(r), T0);
        assert!(
            matches!(&s.phase, Phase::Failed { reasons } if reasons[0].starts_with(name)),
            "{name}: {:?}",
            s.phase
        );
        assert!(writes(&actions).is_empty(), "{name}");
        assert_eq!(notices(&actions).len(), 1, "{name}");
    }
}

#[test]
fn preflight_undecided_retries_then_pauses() {
    let unknown = PreflightReport {
        version_exists: Check::Unknown {
            why: "API 503".into(),
        },
        ..report()
    };
    let (mut s, _) = start(request(false), Policy::default(), T0);
    for m in 0..10 {
        let (next, actions) = step(s, Input::Preflight(unknown.clone()), at(m));
        assert_eq!(next.phase, Phase::Preflight, "minute {m}");
        assert!(notices(&actions).is_empty());
        s = next;
    }
    let (s, actions) = step(s, Input::Preflight(unknown), at(10));
    assert!(matches!(
        s.phase,
        Phase::Paused {
            at: Stage::Preflight,
            reason: PauseReason::PreflightUndecided { .. },
            resumable: true
        }
    ));
    assert_eq!(notices(&actions).len(), 1);
    assert!(plan(&s, at(11)).counts.is_none());
}

#[test]
fn preflight_pass_writes_the_first_split_with_a_gate_message() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    assert_eq!(s.phase, Phase::Ramping { step: 0 });
    let ws = writes(&actions);
    assert_eq!(ws.len(), 1);
    assert_eq!(percents(&ws[0].1), vec![("new", 10.0), ("old", 90.0)]);
    let message = actions.iter().find_map(|a| match a {
        Action::SetDeployment { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(message.as_deref(), Some("rollout-gate: new step 1/3 (10%)"));
    assert!(
        s.clock.live_since.is_none(),
        "only intended until confirmed"
    );
}

#[test]
fn promotes_after_dwell_with_evidence() {
    let (s, actions) = run(ramping(false), 1..=9, HEALTHY);
    assert_eq!(
        s.phase,
        Phase::Ramping { step: 0 },
        "dwell not over at 9 min"
    );
    assert!(writes(&actions).is_empty());
    let (s, actions) = run(s, 10..=10, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
    let ws = writes(&actions);
    assert_eq!(ws.len(), 1);
    assert_eq!(percents(&ws[0].1), vec![("new", 50.0), ("old", 50.0)]);
}

#[test]
fn dwell_counts_from_confirmation_not_from_the_write() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (mut s, actions) = step(s, Input::Preflight(report()), T0);
    // The write is confirmed three minutes late; ticks meanwhile see the old split, and the
    // resent write (minute 2) is not answered either.
    for m in 1..=2 {
        let obs = observe(&s, at(m), HEALTHY, &[stable()]);
        s = step(s, Input::Tick(obs), at(m)).0;
    }
    assert!(s.clock.live_since.is_none());
    let (s, _) = confirm(s, &actions, at(3));
    assert_eq!(s.clock.live_since, Some(at(3)));
    let (s, _) = run(s, 4..=12, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 0 }, "only 9 min live");
    let (s, _) = run(s, 13..=13, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
}

#[test]
fn never_promotes_on_missing_data() {
    type Spoil = fn(&mut Observations);
    let cases: Vec<(&str, Spoil)> = vec![
        ("counts query failed", |o| {
            o.counts = Some(Fetched::Failed {
                why: "SQL 500".into(),
            })
        }),
        ("counts not fetched", |o| o.counts = None),
        ("deployment read failed", |o| {
            o.deployment = Some(Fetched::Failed {
                why: "API 502".into(),
            })
        }),
        ("healthz not probed", |o| o.healthz = None),
        ("healthz answered by old", |o| {
            o.healthz = Some(Probe::WrongVersion {
                answered_by: "old".into(),
            })
        }),
        ("no new-version traffic", |o| {
            if let Some(Fetched::Ok(w)) = o.counts.as_mut() {
                for m in &mut w.minutes {
                    m.new = VersionCounts::default();
                }
            }
        }),
        ("empty window", |o| {
            if let Some(Fetched::Ok(w)) = o.counts.as_mut() {
                w.minutes.clear();
            }
        }),
    ];
    for (name, spoil) in cases {
        let (mut s, _) = run(ramping(false), 1..=9, HEALTHY);
        for m in 10..=14 {
            let live = s.deployment.live.clone();
            let mut obs = observe(&s, at(m), HEALTHY, &live);
            spoil(&mut obs);
            let (next, actions) = step(s, Input::Tick(obs), at(m));
            assert!(writes(&actions).is_empty(), "{name}: wrote at minute {m}");
            assert_eq!(next.phase, Phase::Ramping { step: 0 }, "{name}");
            s = next;
        }
    }
}

#[test]
fn same_tick_twice_does_not_double_advance() {
    let (s, _) = run(ramping(false), 1..=9, HEALTHY);
    let live = s.deployment.live.clone();
    let obs = observe(&s, at(10), HEALTHY, &live);
    let (once, first) = step(s, Input::Tick(obs.clone()), at(10));
    assert_eq!(once.phase, Phase::Ramping { step: 1 });
    assert_eq!(writes(&first).len(), 1);
    let (twice, second) = step(once.clone(), Input::Tick(obs), at(10));
    assert!(second.is_empty(), "second delivery emitted {second:?}");
    assert_eq!(twice.signals, once.signals, "nothing counted twice");
    assert_eq!(twice.phase, once.phase);
}

#[test]
fn late_overlapping_window_counts_each_minute_once() {
    let (s, _) = run(ramping(false), 1..=5, HEALTHY);
    let before = s.signals.step_totals.new.requests;
    let next = s.signals.next_minute.expect("counting");
    // A late tick re-reports two already-counted minutes plus one new one.
    let minute = |m: Timestamp| MinuteCounts {
        minute: m,
        new: counts(600.0, 0.01),
        old: counts(5400.0, 0.01),
        sample_interval: 1.0,
    };
    let window = CountsWindow {
        from: next.plus_minutes(-2),
        to: next.plus_minutes(1),
        minutes: (-2..=0).map(|i| minute(next.plus_minutes(i))).collect(),
        new_latency: VersionLatency::default(),
        old_latency: VersionLatency::default(),
    };
    let obs = Observations {
        counts: Some(Fetched::Ok(window)),
        ..Observations::default()
    };
    let (s, _) = step(s, Input::Tick(obs), at(8));
    assert_eq!(s.signals.step_totals.new.requests, before + 600.0);
    assert_eq!(s.signals.next_minute, Some(next.plus_minutes(1)));
}

#[test]
fn plan_queries_from_first_uncounted_minute_to_now_minus_lag() {
    let s = ramping(false);
    let q = plan(&s, at(5).plus_minutes(0)).counts.expect("query");
    assert_eq!((q.from, q.to), (at(0), at(3)));
    assert_eq!(q.latency_from, at(-2));
    assert_eq!(q.slow_above_ms, 250.0);
    assert!(plan(&s, at(2)).counts.is_none(), "nothing complete yet");
    let (done, _) = step(
        s,
        Input::Operator {
            command: Command::Abort,
            by: "ops".into(),
            why: None,
        },
        at(5),
    );
    let (done, _) = confirm(done, &[], at(5));
    assert!(matches!(done.phase, Phase::RollingBack { .. }));
    assert!(plan(&done, at(6)).counts.is_none());
}

#[test]
fn failed_deployment_write_stays_pending_and_retries() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    let (write, _) = writes(&actions)[0].clone();
    let failure = WriteFailure {
        status: Some(503),
        retry_after_secs: None,
        message: "upstream".into(),
        credentials: false,
    };
    let (s, actions) = step(
        s,
        Input::DeploymentWrite {
            write,
            outcome: WriteOutcome::Failed(failure),
        },
        T0,
    );
    assert!(actions.contains(&Action::WakeAt(at(1))));
    assert!(s.deployment.pending.is_some());
    assert!(s.clock.live_since.is_none());
    let (s, actions) = run(s, 1..=1, HEALTHY);
    let retried = writes(&actions);
    assert_eq!(retried.len(), 1, "retried on the next tick");
    assert_eq!(retried[0].0, write, "same write id");
    assert_eq!(s.clock.live_since, Some(at(1)));
}

#[test]
fn rate_limited_write_waits_for_retry_after() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    let (write, _) = writes(&actions)[0].clone();
    let failure = WriteFailure {
        status: Some(429),
        retry_after_secs: Some(180),
        message: "rate limited".into(),
        credentials: false,
    };
    let (mut s, _) = step(
        s,
        Input::DeploymentWrite {
            write,
            outcome: WriteOutcome::Failed(failure),
        },
        T0,
    );
    for m in 1..=2 {
        let obs = observe(&s, at(m), HEALTHY, &[stable()]);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        assert!(writes(&actions).is_empty(), "minute {m}");
        s = next;
    }
    let obs = observe(&s, at(3), HEALTHY, &[stable()]);
    let (_, actions) = step(s, Input::Tick(obs), at(3));
    assert_eq!(writes(&actions).len(), 1);
}

#[test]
fn auth_failure_pauses_with_a_clear_reason_and_resume_retries() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    let (write, _) = writes(&actions)[0].clone();
    let failure = WriteFailure {
        status: Some(403),
        retry_after_secs: None,
        message: "Authentication error".into(),
        credentials: false,
    };
    let (s, actions) = step(
        s,
        Input::DeploymentWrite {
            write,
            outcome: WriteOutcome::Failed(failure),
        },
        T0,
    );
    let Phase::Paused {
        reason,
        resumable: true,
        ..
    } = &s.phase
    else {
        panic!("not paused: {:?}", s.phase);
    };
    assert!(reason.to_string().contains("403"), "{reason}");
    assert_eq!(notices(&actions).len(), 1);
    let (s, actions) = step(
        s,
        Input::Operator {
            command: Command::Resume,
            by: "ops".into(),
            why: None,
        },
        at(5),
    );
    assert_eq!(s.phase, Phase::Ramping { step: 0 });
    assert_eq!(writes(&actions).len(), 1, "the pending write is sent again");
}

#[test]
fn bad_request_write_pauses_and_cannot_be_resumed() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    let (write, _) = writes(&actions)[0].clone();
    let failure = WriteFailure {
        status: Some(400),
        retry_after_secs: None,
        message: "bad percentage".into(),
        credentials: false,
    };
    let (s, _) = step(
        s,
        Input::DeploymentWrite {
            write,
            outcome: WriteOutcome::Failed(failure),
        },
        T0,
    );
    assert!(matches!(
        s.phase,
        Phase::Paused {
            resumable: false,
            ..
        }
    ));
    assert!(matches!(
        check_command(&s, Command::Resume),
        Err(RolloutError::NotResumable { .. })
    ));
    assert_eq!(check_command(&s, Command::Abort), Ok(()));
}

#[test]
fn drift_pauses_and_makes_no_writes() {
    let (s, _) = run(ramping(false), 1..=3, HEALTHY);
    let foreign = vec![
        crate::rollout::deployment::share("new", 30.0),
        crate::rollout::deployment::share("old", 70.0),
    ];
    let obs = observe(&s, at(4), HEALTHY, &foreign);
    let (mut s, actions) = step(s, Input::Tick(obs), at(4));
    assert!(matches!(
        s.phase,
        Phase::Drifted {
            at: Stage::Ramping { step: 0 },
            ..
        }
    ));
    assert_eq!(notices(&actions).len(), 1);
    for m in 5..=40 {
        let obs = observe(&s, at(m), HEALTHY, &foreign);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        assert!(actions.is_empty(), "minute {m}: {actions:?}");
        s = next;
    }
    assert!(plan(&s, at(41)).counts.is_none());
    // Resuming takes over: the intended split is written again.
    let (s, actions) = step(
        s,
        Input::Operator {
            command: Command::Resume,
            by: "ops".into(),
            why: None,
        },
        at(41),
    );
    assert_eq!(s.phase, Phase::Ramping { step: 0 });
    assert_eq!(
        percents(&writes(&actions)[0].1),
        vec![("new", 10.0), ("old", 90.0)]
    );
}

#[test]
fn manual_rollback_supersedes_the_rollout() {
    let (s, _) = run(ramping(false), 1..=3, HEALTHY);
    let manual = LiveDeployment {
        versions: vec![crate::rollout::deployment::share("old", 100.0)],
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

#[test]
fn dry_run_never_sets_deployment() {
    let (s, mut all) = start(request(true), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    all.extend(actions);
    // The real deployment never changes: the stable version keeps 100%. Feed traffic as if
    // the split were real so the decisions are exercised.
    let mut s = s;
    for m in 1..=45 {
        let intended = s.deployment.intended.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &intended);
        obs.deployment = Some(Fetched::Ok(LiveDeployment {
            versions: vec![crate::rollout::deployment::share("old", 100.0)],
            ..LiveDeployment::default()
        }));
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        all.extend(actions);
        s = next;
    }
    assert_eq!(s.phase, Phase::Completed, "dry run decides like a real one");
    assert!(writes(&all).is_empty());
    let ns = notices(&all);
    assert!(ns.len() >= 4);
    assert!(ns
        .iter()
        .all(|n| n.dry_run && n.headline.starts_with("[dry run]")));
}

#[test]
fn healthz_three_failures_roll_back() {
    let (mut s, _) = run(ramping(false), 1..=3, HEALTHY);
    for m in 4..=6 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
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
    let bad = Traffic {
        new_errors: 0.15,
        ..HEALTHY
    };
    let (s, actions) = run(ramping(false), 1..=5, bad);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    let rollback = notices(&actions)
        .into_iter()
        .find(|n| n.kind == EventKind::RollingBack)
        .expect("rollback notice");
    assert!(!rollback.details.is_empty());
    assert!(rollback
        .assessment
        .as_ref()
        .is_some_and(|a| a.errors_test.is_some()));
}

#[test]
fn rollback_is_confirmed_by_a_read_when_the_outcome_is_lost() {
    let (s, _) = run(ramping(false), 1..=2, HEALTHY);
    let (s, _) = step(
        s,
        Input::Operator {
            command: Command::Abort,
            by: "ops".into(),
            why: Some("bad deploy".into()),
        },
        at(3),
    );
    let stable = vec![crate::rollout::deployment::share("old", 100.0)];
    let obs = Observations {
        deployment: Some(Fetched::Ok(LiveDeployment {
            versions: stable,
            ..LiveDeployment::default()
        })),
        ..Observations::default()
    };
    let (s, actions) = step(s, Input::Tick(obs), at(4));
    assert!(matches!(&s.phase, Phase::Aborted { by, .. } if by == "ops"));
    assert_eq!(notices(&actions)[0].kind, EventKind::Aborted);
}

#[test]
fn no_evidence_for_ten_minutes_pauses_and_says_so() {
    let (mut s, _) = run(ramping(false), 1..=3, HEALTHY);
    let mut paused_at = None;
    for m in 4..=20 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
        obs.counts = Some(Fetched::Failed {
            why: "SQL timeout".into(),
        });
        let (next, _) = step(s, Input::Tick(obs), at(m));
        s = next;
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
    let (mut s, _) = run(ramping(false), 1..=3, HEALTHY);
    for m in 4..=14 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
        obs.counts = Some(Fetched::Failed {
            why: "SQL timeout".into(),
        });
        s = step(s, Input::Tick(obs), at(m)).0;
    }
    assert!(matches!(s.phase, Phase::Paused { .. }), "{:?}", s.phase);
    let live = s.deployment.live.clone();
    let obs = observe(&s, at(15), HEALTHY, &live);
    let (s, actions) = step(s, Input::Tick(obs), at(15));
    // The minutes missed during the outage arrive at once, so it may even advance now.
    assert!(matches!(s.phase, Phase::Ramping { .. }), "{:?}", s.phase);
    assert!(notices(&actions)
        .iter()
        .any(|n| n.kind == EventKind::Resumed));
}

#[test]
fn a_pause_an_operator_asked_for_does_not_lift_itself() {
    let (s, _) = run(ramping(false), 1..=3, HEALTHY);
    let pause = Input::Operator {
        command: Command::Pause,
        by: "ana".into(),
        why: None,
    };
    let (mut s, _) = step(s, pause, at(4));
    for m in 5..=8 {
        let live = s.deployment.live.clone();
        let obs = observe(&s, at(m), HEALTHY, &live);
        s = step(s, Input::Tick(obs), at(m)).0;
    }
    assert!(matches!(s.phase, Phase::Paused { .. }), "{:?}", s.phase);
}

#[test]
fn step_max_without_evidence_pauses_with_the_reason() {
    // p95 over the ceiling but only 1 or 2 windows in a row: never unhealthy, never healthy.
    let (mut s, _) = run(ramping(false), 1..=3, HEALTHY);
    for m in 4..=31 {
        let live = s.deployment.live.clone();
        let slow = Traffic {
            new_p95_ms: if m % 2 == 0 { 400.0 } else { 120.0 },
            ..HEALTHY
        };
        let mut obs = observe(&s, at(m), slow, &live);
        if m % 2 == 1 {
            obs.healthz = Some(Probe::WrongVersion {
                answered_by: "old".into(),
            });
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
fn holding_notice_is_sent_once_per_step() {
    let (s, _) = run(ramping(false), 1..=9, HEALTHY);
    let mut s = s;
    let mut holding = 0;
    for m in 10..=14 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
        obs.healthz = Some(Probe::WrongVersion {
            answered_by: "old".into(),
        });
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        holding += notices(&actions)
            .iter()
            .filter(|n| matches!(n.kind, EventKind::Holding { .. }))
            .count();
        s = next;
    }
    assert_eq!(holding, 1);
}

#[test]
fn queue_breach_for_k_ticks_pauses() {
    let policy = Policy {
        queue: Some(QueueThresholds::default()),
        ..Policy::default()
    };
    let (s, _) = start(request(false), policy, T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    let (mut s, _) = confirm(s, &actions, T0);
    for m in 1..=3 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
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

#[test]
fn operator_commands_apply_only_in_their_phases() {
    let ramp = ramping(false);
    let paused = step(
        ramp.clone(),
        Input::Operator {
            command: Command::Pause,
            by: "a".into(),
            why: None,
        },
        at(1),
    )
    .0;
    let failed = {
        let (s, _) = start(request(false), Policy::default(), T0);
        let fail = PreflightReport {
            asset: Check::Fail {
                reason: "missing".into(),
            },
            ..report()
        };
        step(s, Input::Preflight(fail), T0).0
    };
    let preflight = start(request(false), Policy::default(), T0).0;
    let cases = [
        (&preflight, [true, false, false, true]),
        (&ramp, [true, false, true, true]),
        (&paused, [false, true, true, true]),
        (&failed, [false, false, false, false]),
    ];
    let commands = [
        Command::Pause,
        Command::Resume,
        Command::Promote,
        Command::Abort,
    ];
    for (state, allowed) in cases {
        for (command, ok) in commands.iter().zip(allowed) {
            assert_eq!(
                check_command(state, *command).is_ok(),
                ok,
                "{command} when {}",
                state.phase.name()
            );
        }
    }
    // A refused command changes nothing.
    let (same, actions) = step(
        failed.clone(),
        Input::Operator {
            command: Command::Abort,
            by: "a".into(),
            why: None,
        },
        at(1),
    );
    assert_eq!((same, actions.len()), (failed, 0));
}

#[test]
fn operator_promote_skips_the_wait() {
    let (s, actions) = step(
        ramping(false),
        Input::Operator {
            command: Command::Promote,
            by: "lead".into(),
            why: Some("hotfix".into()),
        },
        at(1),
    );
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
    assert_eq!(
        percents(&writes(&actions)[0].1),
        vec![("new", 50.0), ("old", 50.0)]
    );
    assert!(notices(&actions)
        .iter()
        .any(|n| n.kind == EventKind::Promoted && n.headline.contains("hotfix")));
}

#[test]
fn abort_in_preflight_stops_without_a_write() {
    let (s, _) = start(request(false), Policy::default(), T0);
    let (s, actions) = step(
        s,
        Input::Operator {
            command: Command::Abort,
            by: "a".into(),
            why: None,
        },
        T0,
    );
    assert!(matches!(s.phase, Phase::Aborted { .. }));
    assert!(writes(&actions).is_empty());
}

#[test]
fn paused_rollout_still_rolls_back_on_unhealthy() {
    let (s, _) = run(ramping(false), 1..=2, HEALTHY);
    let (s, _) = step(
        s,
        Input::Operator {
            command: Command::Pause,
            by: "a".into(),
            why: None,
        },
        at(3),
    );
    let bad = Traffic {
        new_errors: 0.15,
        ..HEALTHY
    };
    let (s, actions) = run(s, 4..=8, bad);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    assert_eq!(percents(&writes(&actions)[0].1), vec![("old", 100.0)]);
}

#[test]
fn state_round_trips_through_json() {
    let (s, _) = run(ramping(false), 1..=4, HEALTHY);
    let json = serde_json::to_string(&s).expect("serializes");
    let back: RolloutState = serde_json::from_str(&json).expect("parses");
    // Floats may move by an ulp through serde_json; the decisions' inputs must not.
    assert_eq!(back.phase, s.phase);
    assert_eq!(back.deployment, s.deployment);
    assert_eq!(back.clock, s.clock);
    assert_eq!(back.signals.next_minute, s.signals.next_minute);
    assert_eq!(back.signals.step_totals, s.signals.step_totals);
}

#[test]
fn tick_input_parses_from_json() {
    let json = r#"{
        "input": "tick",
        "deployment": {"status": "ok", "value": {"versions": [{"version_id": "old", "percent": 100}]}},
        "healthz": {"result": "failed", "status": 503, "error": null},
        "counts": {"status": "failed", "value": {"why": "SQL timeout"}},
        "queue": null
    }"#;
    let input: Input = serde_json::from_str(json).expect("parses");
    let Input::Tick(obs) = input else {
        panic!("not a tick")
    };
    assert!(matches!(obs.counts, Some(Fetched::Failed { .. })));
    assert!(matches!(
        obs.healthz,
        Some(Probe::Failed {
            status: Some(503),
            ..
        })
    ));
}

#[test]
fn looks_follow_the_schedule_and_a_repeated_tick_takes_none() {
    let (s, _) = run(ramping(false), 1..=9, HEALTHY);
    let interim = s
        .signals
        .errors_looks
        .latest()
        .cloned()
        .expect("interim looks");
    assert_eq!(interim.kind, LookKind::Interim { step: 0 });
    // Nine ticks into a 10-minute dwell of step 1 of 2: (0 + ¼·0.9²)/2 of the budget.
    let p = &s.policy;
    let budget = p.alpha * p.alpha_split.errors_split * p.look_share * (1.0 - p.history_share);
    assert!((interim.alpha - budget * 0.25 * 0.81 / 2.0).abs() < 1e-12);
    let (s, _) = run(s, 10..=10, HEALTHY);
    let end = s
        .signals
        .errors_looks
        .latest()
        .cloned()
        .expect("step-end look");
    assert_eq!(end.kind, LookKind::StepEnd { step: 0 });
    assert!((end.alpha - budget / 2.0).abs() < 1e-12 && !end.rejected);
    let count = s.signals.errors_looks.count();
    // The same tick again takes no look.
    let live = s.deployment.live.clone();
    let obs = observe(&s, at(10), HEALTHY, &live);
    let (s, _) = step(s, Input::Tick(obs), at(10));
    assert_eq!(s.signals.errors_looks.count(), count);
    let (s, _) = run(s, 11..=19, HEALTHY);
    let last = s.signals.errors_looks.latest().expect("50% step looks");
    assert_eq!(last.kind, LookKind::Interim { step: 1 });
    assert!(last.alpha > end.alpha && last.alpha < budget);
    let (s, _) = run(s, 20..=22, HEALTHY);
    let closing = s.signals.errors_looks.latest().expect("closing look");
    assert!(closing.closing() && (closing.alpha - budget).abs() < 1e-12);
    assert_eq!(s.phase, Phase::Baking);
}

#[test]
fn closing_look_rolls_back_a_regression_the_anytime_floor_lets_through() {
    // ×1.5 (2% → 3% 5xx) at 10 rps: exactly the e-process's floor rho0 = 1.5, so only the
    // exact looks (null: ratio ≤ 1) can see it; the closing look does, once the whole split
    // is counted (minute 19 is visible at minute 22), after the promotion to 100%.
    let worse = Traffic {
        rps: 10.0,
        new_errors: 0.03,
        old_errors: 0.02,
        new_p95_ms: 120.0,
    };
    let (s, _) = run(ramping(false), 1..=21, worse);
    assert_eq!(
        s.phase,
        Phase::Baking,
        "promoted on schedule, not yet judged"
    );
    assert!(!s.signals.errors.summary().regression);
    let (s, actions) = run(s, 22..=22, worse);
    assert!(rolled_back(&s), "{:?}", s.phase);
    let look = s
        .signals
        .errors_looks
        .rejected()
        .expect("closing look rejected");
    assert!(look.closing() && look.p_value <= look.alpha);
    let rollback = notices(&actions)
        .into_iter()
        .find(|n| n.kind == EventKind::RollingBack)
        .expect("rollback notice");
    let text = format!("{:?}", rollback.details);
    assert!(text.contains("closing look"), "{text}");
}

#[test]
fn first_ticks_at_100_percent_say_the_bake_test_has_not_started() {
    let (s, _) = run(ramping(false), 1..=21, HEALTHY);
    assert_eq!(s.phase, Phase::Baking);
    let a = s.last_assessment.as_ref().expect("assessed");
    let said = a.errors.to_string();
    assert!(
        said.contains("bake test starts with the first whole minute at 100%"),
        "{said}"
    );
    // Minute 21 (the first whole one at 100%) is counted at minute 24.
    let (s, _) = run(s, 22..=24, HEALTHY);
    let a = s.last_assessment.as_ref().expect("assessed");
    assert!(a.errors_test.is_some() && !a.errors.to_string().contains("bake test starts"));
}

#[test]
fn the_baseline_window_before_the_rollout_is_read_once() {
    let s = ramping(false);
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
    let baseline = s.signals.errors_history.baseline().expect("baseline");
    assert_eq!(baseline.minutes, 180);
    assert!((baseline.requests - 180.0 * 6000.0).abs() < 1e-6);
    assert!((baseline.bad - 180.0 * 60.0).abs() < 1e-6);
}

#[test]
fn the_5xx_and_slow_looks_scale_for_bursts_only_where_the_window_ran_at_half_their_limit() {
    // 100 rps before the rollout: 60 5xx and 120 slow requests a minute, over half of 30.
    let (s, _) = run(ramping(false), 1..=1, HEALTHY);
    assert!(s.signals.errors_bursts.is_some() && s.signals.slow_bursts.is_some());
    // Either side of 15 5xx a minute (6,000 requests a minute).
    for (per_minute, scaled) in [(14.0, false), (16.0, true)] {
        let traffic = Traffic {
            new_errors: per_minute / 6000.0,
            old_errors: per_minute / 6000.0,
            ..HEALTHY
        };
        let (s, _) = run(ramping(false), 1..=1, traffic);
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
    let (s, _) = run(ramping(false), 1..=1, quiet);
    assert!(s.signals.errors_bursts.is_none() && s.signals.slow_bursts.is_none());
    assert!(s.signals.approach_bursts.is_some(), "the window was read");
}

#[test]
fn a_window_read_after_split_minutes_were_counted_leaves_the_looks_raw() {
    let mut s = ramping(false);
    let mut m = 3;
    // The window read fails until the looks have counted a split minute.
    while s.signals.split_minutes == 0 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
        if obs.history.is_some() {
            obs.history = Some(Fetched::Failed { why: "503".into() });
        }
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
    let look = s.signals.errors_looks.latest().expect("a look");
    assert!(!look.scaled, "{look:?}");
    assert!(
        matches!(
            look.skipped,
            Some(crate::stats::LookSkipped::TooManyEvents { .. })
        ),
        "{look:?}"
    );
}

#[test]
fn a_failing_baseline_read_is_given_up_after_three_tries_and_holds_nothing() {
    let mut s = ramping(false);
    for m in 1..=4 {
        let live = s.deployment.live.clone();
        let mut obs = observe(&s, at(m), HEALTHY, &live);
        assert_eq!(obs.history.is_some(), m <= 3, "minute {m}");
        if obs.history.is_some() {
            obs.history = Some(Fetched::Failed { why: "503".into() });
        }
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
    assert!(s.signals.errors_history.baseline().is_none());
    assert!(s.signals.approach_bursts.is_none());
    // Everything else goes on: the healthy release is promoted when its dwell ends.
    let (s, _) = run(s, 5..=10, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
}

/// Minute counts for the first step (10%) of a low-traffic world: `new` and `old` 5xx in
/// each minute, 60 and 540 requests.
fn low_traffic_tick(s: RolloutState, m: i64, new: f64, old: f64) -> (RolloutState, Vec<Action>) {
    let live = s.deployment.live.clone();
    let traffic = Traffic {
        rps: 10.0,
        new_errors: 0.0,
        old_errors: 0.0001,
        new_p95_ms: 120.0,
    };
    let mut obs = observe(&s, at(m), traffic, &live);
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
    let mut s = ramping(false);
    for m in 1..=10 {
        let new = if (3..=5).contains(&m) { 1.0 } else { 0.0 };
        let old = if m == 3 { 1.0 } else { 0.0 };
        s = low_traffic_tick(s, m, new, old).0;
    }
    let look = s.signals.errors_looks.latest().expect("step-end look");
    assert!(
        !look.rejected,
        "the concurrent looks alone do not reject: {look:?}"
    );
    let history = s
        .signals
        .errors_history
        .rejected()
        .expect("history look rejected");
    assert_eq!(history.kind, LookKind::StepEnd { step: 0 });
    assert_eq!(history.new_bad, 3);
    assert!(history.guard_rejected && history.p_value < history.alpha);
    assert!(rolled_back(&s), "{:?}", s.phase);
    let reason = format!("{:?}", s.last_assessment.as_ref().unwrap().errors);
    assert!(reason.contains("before the rollout"), "{reason}");

    // The same counts with the old version as bad during the split as the new one (an
    // incident both share): the old version's own counts show the drift from the
    // baseline, the history look is skipped, and nothing is rolled back.
    let mut s = ramping(false);
    for m in 1..=10 {
        let bad = if (3..=5).contains(&m) { 1.0 } else { 0.0 };
        s = low_traffic_tick(s, m, bad, 9.0 * bad).0;
    }
    let history = s.signals.errors_history.latest().expect("history look");
    assert!(
        matches!(history.skipped, Some(HistorySkipped::Drifted { .. })) && !history.rejected,
        "{history:?}"
    );
    assert!(!rolled_back(&s), "{:?}", s.phase);
}

#[test]
fn the_looks_power_counts_as_promotion_evidence_where_the_e_process_falls_short() {
    // 6 rps at 0.1% 5xx: by the end of the 10% step the new version has served about 290
    // requests. The e-process's exposure rule projects too little power at its α for that;
    // the step-end look (α 0.45% × ½) would have caught a ×10 regression (5% against the
    // 0.5% floor) with probability ≥ 90%, so the step is promoted on time.
    let slow = Traffic {
        rps: 6.0,
        new_errors: 0.001,
        old_errors: 0.001,
        new_p95_ms: 120.0,
    };
    let (s, _) = run(ramping(false), 1..=10, slow);
    assert_eq!(
        s.phase,
        Phase::Ramping { step: 1 },
        "promoted at the dwell's end"
    );
    assert!(
        !s.signals.errors.summary().exposure_met,
        "not by the e-process alone"
    );

    // Without looks the same release holds at 10%.
    let (held, _) = start(
        request(false),
        Policy {
            look_share: 0.0,
            ..Policy::default()
        },
        T0,
    );
    let (held, actions) = step(held, Input::Preflight(report()), T0);
    let held = confirm(held, &actions, T0).0;
    let (held, _) = run(held, 1..=10, slow);
    assert_eq!(
        held.phase,
        Phase::Ramping { step: 0 },
        "holds without the looks"
    );
}

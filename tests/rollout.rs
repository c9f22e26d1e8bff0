//! Scenario tests: whole rollouts driven through `step` with a fake clock and a scripted
//! world (a fake deployments API, traffic per version, `/healthz`), checking what the gate
//! wrote, said and decided.

use rollout_gate::observe::{
    Check, CountsQuery, CountsWindow, Fetched, LiveDeployment, MinuteCounts, ObservationPlan,
    Observations, PreflightReport, Probe, StoredRows, VersionCounts, VersionLatency, VersionShare,
};
use rollout_gate::policy::Policy;
use rollout_gate::rollout::{
    plan, start, step, Action, AuditEvent, EventKind, Input, Notice, Phase, RolloutState,
    StartRequest, WriteOutcome,
};
use rollout_gate::schedule::Schedule;
use rollout_gate::time::Timestamp;

const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000); // 2026-11-27T10:00:00Z

/// How one version behaves.
#[derive(Clone, Copy, Debug)]
struct Behaviour {
    error_rate: f64,
    slow_rate: f64,
    p95_ms: f64,
    healthz_ok: bool,
}

const GOOD: Behaviour = Behaviour {
    error_rate: 0.005,
    slow_rate: 0.02,
    p95_ms: 120.0,
    healthz_ok: true,
};

/// A deterministic world: expected counts (sample-weighted counts need not be integers).
struct World {
    rps: f64,
    old: Behaviour,
    new: Behaviour,
    /// From this minute on, the new version behaves like this instead.
    new_changes: Option<(i64, Behaviour)>,
    /// Minutes (relative to T0) during which the counts query fails.
    counts_down: std::ops::Range<i64>,
    /// Deliver every tick twice.
    duplicate_ticks: bool,
    /// Deployment history: (since, split). The first entry is the stable version at 100%.
    history: Vec<(Timestamp, Vec<VersionShare>)>,
    writes: Vec<Vec<VersionShare>>,
    notices: Vec<Notice>,
    events: Vec<AuditEvent>,
    /// New-version requests that failed while the gate watched.
    bad_new_requests: f64,
}

impl World {
    fn new(rps: f64, new: Behaviour) -> Self {
        World {
            rps,
            old: GOOD,
            new,
            new_changes: None,
            counts_down: 0..0,
            duplicate_ticks: false,
            history: vec![(T0.plus_minutes(-60), vec![share("old", 100.0)])],
            writes: Vec::new(),
            notices: Vec::new(),
            events: Vec::new(),
            bad_new_requests: 0.0,
        }
    }

    fn live_at(&self, t: Timestamp) -> &[VersionShare] {
        self.history
            .iter()
            .rev()
            .find(|(since, _)| *since <= t)
            .map_or(&[][..], |(_, split)| split.as_slice())
    }

    fn new_share_at(&self, t: Timestamp) -> f64 {
        self.live_at(t)
            .iter()
            .find(|v| v.version_id == "new")
            .map_or(0.0, |v| v.percent / 100.0)
    }

    fn new_behaviour(&self, minute: i64) -> Behaviour {
        match self.new_changes {
            Some((from, b)) if minute >= from => b,
            _ => self.new,
        }
    }

    fn counts(&self, q: &CountsQuery) -> CountsWindow {
        let per_minute = self.rps * 60.0;
        let n = q.to.minute_index() - q.from.minute_index();
        let minutes = (0..n)
            .map(|i| {
                let t = q.from.plus_minutes(i);
                let share = self.new_share_at(t);
                let b = self.new_behaviour(minutes_since_t0(t));
                MinuteCounts {
                    minute: t,
                    new: version_counts(per_minute * share, b),
                    old: version_counts(per_minute * (1.0 - share), self.old),
                    sample_interval: 1.0,
                }
            })
            .collect();
        let share = self.new_share_at(q.to.plus_minutes(-1));
        let window = f64::from(Policy::default().window_minutes) * per_minute;
        let b = self.new_behaviour(minutes_since_t0(q.to.plus_minutes(-1)));
        CountsWindow {
            from: q.from,
            to: q.to,
            minutes,
            new_latency: latency(window * share, b.p95_ms),
            old_latency: latency(window * (1.0 - share), self.old.p95_ms),
        }
    }

    fn observe(&self, p: &ObservationPlan, now: Timestamp) -> Observations {
        let m = minutes_since_t0(now);
        let counts = p.counts.as_ref().map(|q| {
            if self.counts_down.contains(&m) {
                Fetched::Failed {
                    why: "Analytics Engine SQL timed out".into(),
                }
            } else {
                Fetched::Ok(self.counts(q))
            }
        });
        let healthz = p.probe_healthz.then(|| {
            if self.new_behaviour(m).healthz_ok {
                Probe::Ok
            } else {
                Probe::Failed {
                    status: Some(503),
                    error: None,
                }
            }
        });
        let deployment = p.read_deployment.then(|| {
            Fetched::Ok(LiveDeployment {
                versions: self.live_at(now).to_vec(),
                message: Some("rollout-gate: scenario".into()),
                ..LiveDeployment::default()
            })
        });
        Observations {
            deployment,
            healthz,
            counts,
            queue: None,
            history: None,
        }
    }

    /// Carries out actions like the shell would (reads show the world's split, writes succeed
    /// at once), feeding outcomes back into `step`.
    fn carry_out(
        &mut self,
        mut s: RolloutState,
        actions: Vec<Action>,
        now: Timestamp,
    ) -> RolloutState {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let input = match action {
                Action::SetDeployment { write, split, .. } => {
                    self.history.push((now, split.clone()));
                    self.writes.push(split);
                    Input::DeploymentWrite {
                        write,
                        outcome: WriteOutcome::Confirmed {
                            deployment_id: None,
                        },
                    }
                }
                Action::ReadDeployment { .. } => Input::LiveRead(Fetched::Ok(LiveDeployment {
                    versions: self.live_at(now).to_vec(),
                    message: Some("rollout-gate: scenario".into()),
                    ..LiveDeployment::default()
                })),
                Action::RunPreflight { .. } => Input::Preflight(passing_preflight()),
                Action::Notify(n) => {
                    self.notices.push(n);
                    continue;
                }
                Action::RecordEvent(e) => {
                    self.events.push(e);
                    continue;
                }
                Action::WakeAt(_) => continue,
            };
            let (next, more) = step(s, input, now);
            s = next;
            queue.extend(more);
        }
        s
    }

    /// Starts a rollout at T0 and ticks every minute until it ends or `minutes` pass.
    fn run(&mut self, request: StartRequest, minutes: i64) -> RolloutState {
        let (s, actions) = start(request, Policy::default(), T0);
        let mut s = self.carry_out(s, actions, T0);
        for m in 1..=minutes {
            let now = T0.plus_minutes(m);
            let per_minute = self.rps * 60.0;
            self.bad_new_requests +=
                per_minute * self.new_share_at(now) * self.new_behaviour(m).error_rate;
            let deliveries = if self.duplicate_ticks { 2 } else { 1 };
            for _ in 0..deliveries {
                let obs = self.observe(&plan(&s, now), now);
                let (next, actions) = step(s, Input::Tick(obs), now);
                s = self.carry_out(next, actions, now);
            }
            if s.phase.is_terminal() {
                break;
            }
        }
        s
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.notices.iter().map(|n| n.kind.clone()).collect()
    }

    fn new_percents(&self) -> Vec<f64> {
        self.writes
            .iter()
            .map(|split| {
                split
                    .iter()
                    .find(|v| v.version_id == "new")
                    .map_or(0.0, |v| v.percent)
            })
            .collect()
    }
}

fn share(version_id: &str, percent: f64) -> VersionShare {
    VersionShare {
        version_id: version_id.into(),
        percent,
    }
}

fn version_counts(requests: f64, b: Behaviour) -> VersionCounts {
    VersionCounts {
        requests,
        errors: requests * b.error_rate,
        slow: requests * b.slow_rate,
        very_slow: 0.0,
        // Approaching the ceiling: as many as are over it (nothing between).
        approaching: requests * b.slow_rate,
        stored: StoredRows::unsampled(requests, requests * b.error_rate, requests * b.slow_rate),
    }
}

fn latency(requests: f64, p95_ms: f64) -> VersionLatency {
    VersionLatency {
        requests,
        p95_ms: (requests > 0.0).then_some(p95_ms),
    }
}

fn minutes_since_t0(t: Timestamp) -> i64 {
    (t.millis() - T0.millis()).div_euclid(60_000)
}

fn passing_preflight() -> PreflightReport {
    let pass = || Check::Pass {
        detail: "ok".into(),
    };
    PreflightReport {
        version_exists: pass(),
        healthz: pass(),
        asset: Check::Skipped {
            reason: "no asset base configured".into(),
        },
        bindings: pass(),
    }
}

fn request() -> StartRequest {
    StartRequest {
        script: "mauntic-gateway".into(),
        version_id: "new".into(),
        baseline_version_id: "old".into(),
        git_sha: Some("0f3c2a1".into()),
        schedule: Schedule::default(),
        dry_run: false,
        message: Some("deploy from CI".into()),
    }
}

fn completed_at(world: &World) -> Option<i64> {
    world
        .notices
        .iter()
        .find(|n| n.kind == EventKind::Completed)
        .map(|n| minutes_since_t0(n.at))
}

#[test]
fn healthy_release_ramps_bakes_and_completes() {
    let mut world = World::new(100.0, GOOD);
    let s = world.run(request(), 120);
    assert_eq!(s.phase, Phase::Completed);
    assert_eq!(world.new_percents(), vec![10.0, 50.0, 100.0]);
    assert_eq!(
        world.live_at(T0.plus_minutes(999)),
        &[share("new", 100.0)][..]
    );
    let done = completed_at(&world).expect("completed");
    assert!((30..=40).contains(&done), "completed at minute {done}");
    let kinds = world.kinds();
    assert_eq!(kinds.first(), Some(&EventKind::Started));
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(k, EventKind::Holding { .. } | EventKind::Paused)),
        "{kinds:?}"
    );
    // Every tick left an audit event with verdicts and numbers.
    let ticks: Vec<&AuditEvent> = world
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Tick)
        .collect();
    assert!(ticks.len() >= 30);
    assert!(ticks
        .iter()
        .all(|e| e.assessment.is_some() && e.decision.is_some()));
}

#[test]
fn error_regression_rolls_back_during_the_first_step() {
    let bad = Behaviour {
        error_rate: 0.05,
        ..GOOD
    };
    let mut world = World::new(100.0, bad);
    let s = world.run(request(), 60);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    assert_eq!(world.new_percents(), vec![10.0, 0.0]);
    assert_eq!(world.writes.last(), Some(&vec![share("old", 100.0)]));
    let rollback = world
        .notices
        .iter()
        .find(|n| n.kind == EventKind::RollingBack)
        .expect("rollback notice");
    let detected = minutes_since_t0(rollback.at);
    assert!(detected <= 10, "detected at minute {detected}");
    let numbers = rollback
        .assessment
        .as_ref()
        .and_then(|a| a.errors_test.clone())
        .expect("numbers");
    // ×10 at 100 rps: the absolute ceiling (2%) fires on the first counted minute, before
    // the e-process (its bursty 57-event minutes count ×10 at most) has crossed.
    assert!(
        numbers.new_bad > 0.0 && numbers.e_value > 1.0,
        "{numbers:?}"
    );
    assert!(
        rollback
            .details
            .iter()
            .any(|d| d.contains("5xx") && (d.contains("e-value") || d.contains("ceiling"))),
        "{:?}",
        rollback.details
    );
    assert!(
        world.bad_new_requests < 500.0,
        "served {} bad requests",
        world.bad_new_requests
    );
}

#[test]
fn latency_regression_rolls_back() {
    let slow = Behaviour {
        p95_ms: 600.0,
        slow_rate: 0.3,
        ..GOOD
    };
    let mut world = World::new(100.0, slow);
    let s = world.run(request(), 60);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    let Phase::RolledBack { cause } = &s.phase else {
        unreachable!()
    };
    let text = format!("{cause:?}");
    assert!(text.contains("Latency"), "{text}");
}

#[test]
fn regression_that_starts_at_full_traffic_is_caught_in_the_bake() {
    let mut world = World::new(100.0, GOOD);
    world.new_changes = Some((
        22,
        Behaviour {
            error_rate: 0.05,
            ..GOOD
        },
    ));
    let s = world.run(request(), 90);
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    assert_eq!(world.new_percents(), vec![10.0, 50.0, 100.0, 0.0]);
}

#[test]
fn regression_in_the_last_minutes_of_the_bake_is_caught_by_the_bake_onset_looks() {
    // ×5 from minute 24 at 10 rps (15 5xx a minute at 100%): too few minutes for the
    // e-process (it pays for not knowing the reference rate), and diluted in the bake looks'
    // sum by the healthy bake minutes before, but plenty for the newest minutes alone
    // against the split-time reference.
    let mut world = World::new(10.0, GOOD);
    world.new_changes = Some((
        24,
        Behaviour {
            error_rate: 5.0 * GOOD.error_rate,
            ..GOOD
        },
    ));
    let s = world.run(request(), 40);
    let Phase::RolledBack { cause } = &s.phase else {
        panic!("{:?}", s.phase)
    };
    let text = format!("{cause:?}");
    assert!(text.contains("at 100% above 1.5×"), "{text}");
    assert!(text.contains("bake onset look"), "{text}");
    assert_eq!(world.new_percents(), vec![10.0, 50.0, 100.0, 0.0]);
}

#[test]
fn metric_outage_holds_then_the_rollout_continues() {
    let mut world = World::new(100.0, GOOD);
    world.counts_down = 8..14;
    let s = world.run(request(), 120);
    assert_eq!(s.phase, Phase::Completed);
    let step_two = world
        .notices
        .iter()
        .find(|n| {
            n.kind
                == (EventKind::StepStarted {
                    step: 1,
                    percent: 50.0,
                })
        })
        .map(|n| minutes_since_t0(n.at))
        .expect("second step");
    assert!(
        step_two >= 14,
        "promoted during the outage at minute {step_two}"
    );
}

#[test]
fn long_metric_outage_pauses_and_says_so() {
    let mut world = World::new(100.0, GOOD);
    world.counts_down = 5..60;
    let s = world.run(request(), 40);
    let Phase::Paused { reason, .. } = &s.phase else {
        panic!("{:?}", s.phase)
    };
    assert!(reason.to_string().contains("timed out"), "{reason}");
    assert_eq!(
        world.new_percents(),
        vec![10.0],
        "never promoted without evidence"
    );
}

#[test]
fn trickle_traffic_never_promotes_without_evidence() {
    let mut world = World::new(0.05, GOOD);
    let s = world.run(request(), 60);
    assert!(matches!(s.phase, Phase::Paused { .. }), "{:?}", s.phase);
    assert_eq!(world.new_percents(), vec![10.0]);
    let holding = world
        .notices
        .iter()
        .filter(|n| matches!(n.kind, EventKind::Holding { .. }))
        .count();
    assert!(holding <= 1);
}

#[test]
fn duplicated_ticks_change_nothing() {
    let mut once = World::new(100.0, GOOD);
    let a = once.run(request(), 120);
    let mut twice = World::new(100.0, GOOD);
    twice.duplicate_ticks = true;
    let b = twice.run(request(), 120);
    assert_eq!(a.phase, b.phase);
    assert_eq!(once.writes, twice.writes);
    assert_eq!(once.kinds(), twice.kinds());
    assert_eq!(once.events.len(), twice.events.len());
    assert_eq!(completed_at(&once), completed_at(&twice));
}

#[test]
fn dry_run_decides_and_reports_without_writing() {
    let mut world = World::new(100.0, GOOD);
    let s = world.run(
        StartRequest {
            dry_run: true,
            ..request()
        },
        120,
    );
    assert!(world.writes.is_empty());
    assert!(world.notices.iter().all(|n| n.dry_run));
    // Nothing moved, so the new version saw no traffic: the gate pauses for lack of evidence.
    let Phase::Paused { reason, .. } = &s.phase else {
        panic!("{:?}", s.phase)
    };
    assert!(reason.to_string().contains("evidence"), "{reason}");
}

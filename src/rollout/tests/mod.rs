//! Unit tests for `rollout`, driven through `step` over a scripted world: one file per
//! thing under test; this file holds that world and the fixtures the files share.

use super::*;
use crate::observe::{
    Check, CountsWindow, Fetched, MinuteCounts, Probe, StoredRows, VersionCounts, VersionLatency,
};

mod bake;
mod counting;
mod drift;
mod history;
mod json;
mod looks;
mod operator;
mod pauses;
mod promotion;
mod reads;
mod rollback;
mod start;
mod writes;

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
        stored: StoredRows::unsampled(requests, requests * error_rate, requests * 0.02),
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
        deployment: p.read_deployment.then(|| live_read(live)),
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

/// A healthz probe the old version answered: evidence neither way.
fn answered_by_old() -> Probe {
    Probe::WrongVersion {
        answered_by: "old".into(),
    }
}

/// The stable version alone at 100%.
fn stable() -> VersionShare {
    crate::rollout::deployment::share("old", 100.0)
}

/// The deployment writes among `actions`: their ids and splits.
fn writes(actions: &[Action]) -> Vec<(u64, Vec<VersionShare>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetDeployment { write, split, .. } => Some((*write, split.clone())),
            _ => None,
        })
        .collect()
}

/// The Slack notices among `actions`.
pub(super) fn notices(actions: &[Action]) -> Vec<&Notice> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// The notice among `actions` that says the rollout is rolling back.
fn rollback_notice(actions: &[Action]) -> &Notice {
    notices(actions)
        .into_iter()
        .find(|n| n.kind == EventKind::RollingBack)
        .expect("rollback notice")
}

/// Each version's percent in `split`.
fn percents(split: &[VersionShare]) -> Vec<(&str, f64)> {
    split
        .iter()
        .map(|v| (v.version_id.as_str(), v.percent))
        .collect()
}

/// The live deployment a read shows when `live` is deployed by the gate.
pub(super) fn live_read(live: &[VersionShare]) -> Fetched<LiveDeployment> {
    Fetched::Ok(LiveDeployment {
        versions: live.to_vec(),
        message: Some(format!("{MESSAGE_PREFIX} test")),
        ..LiveDeployment::default()
    })
}

/// Answers every `ReadDeployment` in `actions` at `now` with `read`. Returns the state and
/// the reads' own actions.
pub(super) fn answer_reads(
    mut s: RolloutState,
    actions: &[Action],
    read: &Fetched<LiveDeployment>,
    now: Timestamp,
) -> (RolloutState, Vec<Action>) {
    let mut all = Vec::new();
    for action in actions {
        if let Action::ReadDeployment { .. } = action {
            let (next, more) = step(s, Input::LiveRead(read.clone()), now);
            s = next;
            all.extend(more);
        }
    }
    (s, all)
}

/// Carries out `actions` at `now` as a healthy API would: a read before a write shows the
/// split the gate last confirmed, and every write is confirmed; the follow-ups too. Returns
/// the state and the actions that followed.
fn confirm(mut s: RolloutState, actions: &[Action], now: Timestamp) -> (RolloutState, Vec<Action>) {
    let mut all = Vec::new();
    let mut batch = actions.to_vec();
    while !batch.is_empty() {
        let mut next_batch = Vec::new();
        for action in &batch {
            let input = match action {
                Action::ReadDeployment { .. } => Input::LiveRead(live_read(&s.deployment.live)),
                Action::SetDeployment { write, .. } => Input::DeploymentWrite {
                    write: *write,
                    outcome: WriteOutcome::Confirmed {
                        deployment_id: None,
                    },
                },
                _ => continue,
            };
            let (next, more) = step(s, input, now);
            s = next;
            next_batch.extend(more);
        }
        all.extend(next_batch.iter().cloned());
        batch = next_batch;
    }
    (s, all)
}

/// A rollout of `new` over `old` under `policy`, started at T0 and waiting for its
/// pre-flight. Returns the state and the start's actions.
fn started(policy: Policy) -> (RolloutState, Vec<Action>) {
    start(request(false), policy, T0)
}

/// A rollout under `policy` whose pre-flight passed at T0: the live deployment was read (the
/// stable version alone) and the first split (10%) written, not yet confirmed. Returns the
/// state and the actions of the pre-flight step and of the read.
fn first_split_written(policy: Policy) -> (RolloutState, Vec<Action>) {
    let (s, _) = started(policy);
    let (s, mut actions) = step(s, Input::Preflight(report()), T0);
    let (s, more) = answer_reads(s, &actions, &live_read(&[stable()]), T0);
    actions.extend(more);
    (s, actions)
}

/// A rollout whose first split (10%) was confirmed live at T0.
fn ramping() -> RolloutState {
    let (s, actions) = first_split_written(Policy::default());
    confirm(s, &actions, T0).0
}

/// An operator's `command`, as the API hands it to `step`.
fn operator(command: Command, by: &str, why: Option<&str>) -> Input {
    Input::Operator {
        command,
        by: by.into(),
        why: why.map(Into::into),
    }
}

/// Ticks every minute in `minutes`, confirming writes at once; returns all actions.
fn run(
    mut s: RolloutState,
    minutes: std::ops::RangeInclusive<i64>,
    traffic: Traffic,
) -> (RolloutState, Vec<Action>) {
    let mut all = Vec::new();
    for m in minutes {
        let obs = observe(&s, at(m), traffic, &s.deployment.live);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        let (next, more) = confirm(next, &actions, at(m));
        s = next;
        all.extend(actions);
        all.extend(more);
    }
    (s, all)
}

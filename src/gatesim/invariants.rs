//! What must hold after every step of a gate-sim run, whatever the world did: the split
//! Cloudflare serves, no forward write after a rollback and the stable version back at 100%
//! soon after Cloudflare answers again, no write while paused or drifted, no write without
//! a fresh read, every Slack message once, the audit log complete and in order, and stored
//! state bounded.

use super::faults::FaultClass;
use super::world::{World, NEW, OLD};
use crate::controller::StoredRollout;
use crate::rollout::{AuditEvent, EventKind, Phase};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Minutes within which the stable version must serve 100% after a rollback decision,
/// counted from the later of the decision and the last fault that touched the gate's calls.
/// The deployment write backs off at most 8 minutes (rollout/deployment.rs).
pub const ROLLBACK_BOUND_MINUTES: i64 = 10;

/// Largest encoded rollout the object may store (bytes). Measured runs stay far below it
/// (docs/reliability.md gives the figure and the command).
pub const STATE_BOUND_BYTES: usize = 256 * 1024;

/// One invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// Cloudflare serves what the state says, or a write is pending, or the rollout is
    /// paused as drifted; never more than two versions.
    SplitMatchesState,
    /// After a rollback decision no forward write; the stable version reaches 100% within
    /// the bound once Cloudflare answers again.
    RollbackCompletes,
    /// While drifted, paused or finished, the gate writes nothing.
    NoWriteWhileStopped,
    /// Every deployment write follows, in the same object call, a successful read of the
    /// deployments made after any earlier write (the API has no compare-and-swap).
    WriteAfterRead,
    /// Every committed Slack message reaches Slack once (a repeat only where Slack's answer
    /// to an applied post was lost), none lost once Slack is reachable, none uncommitted.
    SlackOnce,
    /// The audit log holds every transition once, in order.
    AuditComplete,
    /// No panic; stored state within `STATE_BOUND_BYTES`.
    Bounded,
}

impl Invariant {
    pub const ALL: [Invariant; 7] = [
        Invariant::SplitMatchesState,
        Invariant::RollbackCompletes,
        Invariant::NoWriteWhileStopped,
        Invariant::WriteAfterRead,
        Invariant::SlackOnce,
        Invariant::AuditComplete,
        Invariant::Bounded,
    ];
}

/// A broken invariant, with where it broke.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub seed: u64,
    /// The object call (step) after which it was seen, counted from 1.
    pub step: u32,
    pub minute: i64,
    pub invariant: Invariant,
    pub detail: String,
}

/// A phase as the checks compare it: its name, and the step while ramping.
pub fn phase_label(phase: &Phase) -> String {
    match phase {
        Phase::Ramping { step } => format!("ramping {step}"),
        Phase::Paused { .. } => "paused".into(),
        other => other.name().to_string(),
    }
}

fn is_stopped(label: &str) -> bool {
    [
        "paused",
        "drifted",
        "superseded",
        "failed",
        "completed",
        "rolled back",
    ]
    .contains(&label)
}

fn is_rollback(phase: &Phase) -> bool {
    matches!(phase, Phase::RollingBack { .. } | Phase::RolledBack { .. })
        || matches!(phase, Phase::Aborted { .. })
}

fn share_of(split: &[(String, f64)], version: &str) -> f64 {
    split
        .iter()
        .find(|(v, _)| v == version)
        .map_or(0.0, |(_, p)| *p)
}

/// What the checker remembers between steps.
#[derive(Default)]
pub struct Checker {
    pub seed: u64,
    pub violations: Vec<Violation>,
    /// Phases the stored rollout has shown after a step, consecutive repeats dropped.
    saved_phases: Vec<String>,
    /// Writes already checked.
    writes_seen: usize,
    /// Slack posts already checked.
    posts_seen: usize,
    /// Posts whose delivery the gate could not have recorded (the object died after it).
    unconfirmed_posts: BTreeMap<String, u32>,
    /// Minute and write count when a rollback was first stored.
    rollback_since: Option<(i64, usize)>,
    /// The minute a human last deployed by hand.
    pub manual_minute: Option<i64>,
    /// The last minute a fault touched the gate's calls.
    pub last_disturbance: Option<i64>,
    pub max_state_bytes: usize,
    pub checks: BTreeMap<Invariant, u64>,
    /// Checks made right after a step in which a fault class fired: what each class
    /// exercised.
    pub exercised: BTreeMap<(FaultClass, Invariant), u64>,
    /// The classes that fired in the step being checked.
    step_classes: Vec<FaultClass>,
    /// Audit events already checked, their encodings, and their phases (repeats dropped).
    events_seen: usize,
    event_keys: BTreeSet<String>,
    logged_phases: Vec<String>,
}

impl Checker {
    pub fn new(seed: u64) -> Self {
        Checker {
            seed,
            ..Checker::default()
        }
    }

    fn fail(&mut self, step: u32, minute: i64, invariant: Invariant, detail: String) {
        // One report per invariant and detail is enough to replay it.
        if self
            .violations
            .iter()
            .any(|v| v.invariant == invariant && v.detail == detail)
        {
            return;
        }
        self.violations.push(Violation {
            seed: self.seed,
            step,
            minute,
            invariant,
            detail,
        });
    }

    fn checked(&mut self, invariant: Invariant) {
        *self.checks.entry(invariant).or_insert(0) += 1;
        for class in &self.step_classes {
            *self.exercised.entry((*class, invariant)).or_insert(0) += 1;
        }
    }

    /// Checks every invariant after object call `step`; `unconfirmed` when the call died or
    /// failed, so that the outcome of a Slack post it made may never have been stored.
    pub fn after_step(&mut self, world: &World, step: u32, unconfirmed: bool) {
        let minute = world.minute.get();
        self.step_classes = world.fired_this_step.take().into_iter().collect();
        let text = world.disk.borrow().rollout.clone();
        let Some(text) = text else { return };
        self.max_state_bytes = self.max_state_bytes.max(text.len());
        self.checked(Invariant::Bounded);
        if text.len() > STATE_BOUND_BYTES {
            let detail = format!("stored rollout is {} bytes", text.len());
            self.fail(step, minute, Invariant::Bounded, detail);
        }
        let stored: StoredRollout = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                let detail = format!("stored rollout does not decode: {e}");
                return self.fail(step, minute, Invariant::Bounded, detail);
            }
        };
        let label = phase_label(&stored.state.phase);
        if self.saved_phases.last() != Some(&label) {
            self.saved_phases.push(label.clone());
        }
        if self.rollback_since.is_some() && stored.state.phase == Phase::Completed {
            let detail = "completed after a rollback was decided".to_string();
            self.fail(step, minute, Invariant::RollbackCompletes, detail);
        }
        if is_rollback(&stored.state.phase) && self.rollback_since.is_none() {
            self.rollback_since = Some((minute, world.writes.borrow().len()));
        }
        self.check_split(world, step, &stored);
        self.check_writes(world, step);
        self.check_rollback(world, step, &stored);
        self.check_slack(world, step, unconfirmed);
        self.check_audit(world, step);
    }

    fn check_split(&mut self, world: &World, step: u32, stored: &StoredRollout) {
        let minute = world.minute.get();
        let live = world.live();
        self.checked(Invariant::SplitMatchesState);
        if live.len() > 2 {
            let detail = format!("Cloudflare serves {} versions", live.len());
            self.fail(step, minute, Invariant::SplitMatchesState, detail);
        }
        let state = &stored.state;
        let label = phase_label(&state.phase);
        let human_unseen = self.manual_minute.is_some();
        if state.phase.is_terminal()
            || ["paused", "drifted"].contains(&label.as_str())
            || state.dry_run
            || human_unseen
        {
            return;
        }
        let d = &state.deployment;
        let known: Vec<(String, f64)> = d
            .live
            .iter()
            .map(|s| (s.version_id.clone(), s.percent))
            .collect();
        // A version at 0% serves nobody (pre-flight deploys the new version at 0% so that
        // version overrides reach it): compare what each version serves.
        let serving = |split: &[(String, f64)]| -> Vec<(String, f64)> {
            let mut s: Vec<_> = split.iter().filter(|(_, p)| *p > 0.0).cloned().collect();
            s.sort_by(|a, b| a.0.cmp(&b.0));
            s
        };
        let (a, b) = (serving(&known), serving(&live));
        let same = a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 0.001);
        if d.pending.is_none() && !same {
            let detail = format!(
                "{label}: Cloudflare serves {live:?}, the state says {known:?} with no write pending"
            );
            self.fail(step, minute, Invariant::SplitMatchesState, detail);
        }
    }

    fn check_writes(&mut self, world: &World, step: u32) {
        let writes = world.writes.borrow();
        for w in writes.iter().skip(self.writes_seen) {
            self.checked(Invariant::NoWriteWhileStopped);
            let phase = w.saved_phase.clone().unwrap_or_default();
            if w.forced && world.plan.pause_refused_rollbacks {
                let detail = format!(
                    "forced {:?} although refused rollbacks are set to pause",
                    w.split
                );
                self.fail(step, w.minute, Invariant::RollbackCompletes, detail);
            }
            if w.forced && share_of(&w.split, NEW) > 0.0 {
                let detail = format!("forced a write that moves traffic forward: {:?}", w.split);
                self.fail(step, w.minute, Invariant::RollbackCompletes, detail);
            }
            if is_stopped(&phase) {
                let detail = format!("wrote {:?} while the stored phase was {phase}", w.split);
                self.fail(step, w.minute, Invariant::NoWriteWhileStopped, detail);
            }
            self.checked(Invariant::WriteAfterRead);
            if !w.read_first {
                let detail = format!(
                    "wrote {:?} without a successful read of the deployments before it in the \
                     same call",
                    w.split
                );
                self.fail(step, w.minute, Invariant::WriteAfterRead, detail);
            }
        }
        self.writes_seen = writes.len();
    }

    fn check_rollback(&mut self, world: &World, step: u32, stored: &StoredRollout) {
        let Some((since, writes_before)) = self.rollback_since else {
            return;
        };
        self.checked(Invariant::RollbackCompletes);
        let minute = world.minute.get();
        let forward: Vec<_> = world
            .writes
            .borrow()
            .iter()
            .skip(writes_before)
            .filter(|w| share_of(&w.split, NEW) > 0.0)
            .map(|w| (w.minute, w.split.clone()))
            .collect();
        for (at, split) in forward {
            let detail = format!(
                "forward write {split:?} at minute {at} after the rollback decision at {since}"
            );
            self.fail(step, at, Invariant::RollbackCompletes, detail);
        }
        // The gate never fights a human: where a human's deploy serves (made before the
        // gate read it, or after its decision), it must not be overwritten.
        let human_serving = world
            .deployments
            .borrow()
            .last()
            .is_some_and(|d| d.author != super::world::GATE_AUTHOR);
        let human_after = self.manual_minute.is_some_and(|m| m >= since) || human_serving;
        let aborted_before_traffic =
            matches!(stored.state.phase, crate::rollout::Phase::Aborted { .. })
                && world
                    .writes
                    .borrow()
                    .iter()
                    .all(|w| share_of(&w.split, NEW) == 0.0);
        // With `ROLLBACK_WHEN_SECRETS_CHANGED = "pause"`, a refused rollback waits for a
        // human by design: Cloudflare is not failing, it is asking; the bound starts when
        // the human acts (a manual deploy, exempt above).
        let held_by_setting = world.plan.pause_refused_rollbacks
            && world.plan.secret_change_minute.is_some_and(|m| m <= minute);
        if human_after || aborted_before_traffic || held_by_setting {
            return;
        }
        let quiet_since = since.max(self.last_disturbance.map_or(since, |d| d + 1));
        let live = world.live();
        if minute - quiet_since > ROLLBACK_BOUND_MINUTES && share_of(&live, OLD) < 100.0 {
            let detail = format!(
                "rollback decided at minute {since}, quiet since {quiet_since}, Cloudflare still serves {live:?}"
            );
            self.fail(step, minute, Invariant::RollbackCompletes, detail);
        }
    }

    fn check_slack(&mut self, world: &World, step: u32, unconfirmed: bool) {
        let posts = world.slack_posts.borrow();
        self.checked(Invariant::SlackOnce);
        for post in posts.iter().skip(self.posts_seen) {
            if post.answer_lost || unconfirmed {
                *self.unconfirmed_posts.entry(post.body.clone()).or_insert(0) += 1;
            }
        }
        self.posts_seen = posts.len();
        let mut received: BTreeMap<&str, u32> = BTreeMap::new();
        for post in posts.iter() {
            *received.entry(post.body.as_str()).or_insert(0) += 1;
        }
        let mut items: BTreeMap<&str, u32> = BTreeMap::new();
        let committed = world.committed.borrow();
        for body in committed.values() {
            *items.entry(body.as_str()).or_insert(0) += 1;
        }
        let mut found = Vec::new();
        for (body, count) in &received {
            let expected = items.get(body).copied().unwrap_or(0);
            let excused = self.unconfirmed_posts.get(*body).copied().unwrap_or(0);
            if expected == 0 {
                found.push(format!(
                    "Slack got a message no outbox committed: {}",
                    title_of(body)
                ));
            } else if *count > expected + excused {
                found.push(format!(
                    "Slack shows {count}× (committed {expected}×, unconfirmed posts {excused}): {}",
                    title_of(body)
                ));
            }
        }
        for detail in found {
            self.fail(step, world.minute.get(), Invariant::SlackOnce, detail);
        }
    }

    /// At the end of a run: a rollback once decided has finished (rolled back, aborted, or
    /// superseded by a human's deploy).
    pub fn rollback_finished(&mut self, world: &World, step: u32, final_phase: &Phase) {
        if self.rollback_since.is_some() && !final_phase.is_terminal() {
            let detail = format!(
                "a rollback was decided and the run ended {}",
                phase_label(final_phase)
            );
            self.fail(
                step,
                world.minute.get(),
                Invariant::RollbackCompletes,
                detail,
            );
        }
    }

    /// At the end of a run: every transition the audit log holds was queued for Slack
    /// (all but the evidence-only kinds are announced), and with Slack reachable, nothing
    /// queued is missing from Slack.
    pub fn at_end(&mut self, world: &World, step: u32, slack_reachable: bool) {
        let texts: Vec<String> = world
            .committed
            .borrow()
            .values()
            .map(|b| unescape(&title_of(b)))
            .collect();
        let unannounced: Vec<String> = world
            .disk
            .borrow()
            .events
            .iter()
            .filter(|e| !is_evidence_only(&e.kind))
            .filter(|e| {
                let head: String = e.summary.chars().take(60).collect();
                !texts.iter().any(|t| t.contains(&head))
            })
            .map(|e| format!("{:?} at {}: {}", e.kind, e.at, e.summary))
            .collect();
        for detail in unannounced {
            let detail = format!("transition never queued for Slack: {detail}");
            self.fail(step, world.minute.get(), Invariant::SlackOnce, detail);
        }
        if !slack_reachable {
            return;
        }
        let posts = world.slack_posts.borrow();
        let received: BTreeSet<&str> = posts.iter().map(|p| p.body.as_str()).collect();
        let missing: Vec<String> = world
            .committed
            .borrow()
            .values()
            .filter(|b| !received.contains(b.as_str()))
            .map(|b| title_of(b))
            .collect();
        drop(posts);
        for title in missing {
            let detail = format!("never reached Slack: {title}");
            self.fail(step, world.minute.get(), Invariant::SlackOnce, detail);
        }
    }

    fn check_audit(&mut self, world: &World, step: u32) {
        self.checked(Invariant::AuditComplete);
        let disk = world.disk.borrow();
        let events: &[AuditEvent] = &disk.events;
        let mut found = Vec::new();
        for (i, e) in events.iter().enumerate().skip(self.events_seen) {
            if let Some(before) = i.checked_sub(1).map(|j| &events[j]) {
                if e.at < before.at {
                    found.push(format!(
                        "event {:?} at {} follows one at {}",
                        e.kind, e.at, before.at
                    ));
                }
            }
            let key = serde_json::to_string(e).unwrap_or_default();
            if !self.event_keys.insert(key) {
                found.push(format!("event {:?} at {} logged twice", e.kind, e.at));
            }
            let label = phase_label(&e.phase);
            if self.logged_phases.last() != Some(&label) {
                self.logged_phases.push(label);
            }
        }
        self.events_seen = events.len();
        drop(disk);
        let mut it = self.logged_phases.iter();
        let missing = self.saved_phases.iter().find(|p| !it.any(|l| l == *p));
        if let Some(first) = missing {
            found.push(format!(
                "stored phase '{first}' has no audit event (stored {:?}, logged {:?})",
                self.saved_phases, self.logged_phases
            ));
        }
        for detail in found {
            self.fail(step, world.minute.get(), Invariant::AuditComplete, detail);
        }
    }
}

/// Audit events that record evidence or retries and are never announced in Slack.
fn is_evidence_only(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Tick
            | EventKind::StepLive { .. }
            | EventKind::WriteFailed
            | EventKind::PreflightUndecided
    )
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A Slack body's title, for reports.
fn title_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["text"]
        .as_str()
        .unwrap_or(body)
        .chars()
        .take(400)
        .collect()
}

#[cfg(test)]
mod tests;

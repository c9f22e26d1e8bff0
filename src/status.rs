//! What operators read: a compact view of one rollout (phase, step, live versus intended
//! split, time on step, the last verdicts with their numbers, Slack delivery), built from
//! the stored rollout. Served by the status API and the status page.

use crate::controller::StoredRollout;
use crate::observe::VersionShare;
use crate::rollout::{Decision, Phase};
use crate::signals::Assessment;
use crate::time::{Timestamp, MINUTE_MS};
use serde::Serialize;

/// One rollout as the status API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RolloutView {
    pub script: String,
    pub version_id: String,
    pub baseline_version_id: String,
    pub git_sha: Option<String>,
    pub dry_run: bool,
    pub message: Option<String>,
    /// Short phase name (`ramping`, `paused`, ...).
    pub phase_name: &'static str,
    /// The phase with its data (reason of a pause, cause of a rollback, ...).
    pub phase: Phase,
    pub terminal: bool,
    /// Current step (1-based) and the number of steps, while ramping or baking.
    pub step: Option<StepView>,
    /// The split the API last confirmed.
    pub live_split: Vec<VersionShare>,
    /// The split the gate is trying to set (equal to `live_split` when nothing is pending).
    pub intended_split: Vec<VersionShare>,
    pub write_pending: bool,
    pub started_at: Timestamp,
    /// Minutes since the current stage began.
    pub minutes_on_step: i64,
    pub last_assessment: Option<Assessment>,
    pub last_decision: Option<Decision>,
    pub slack: SlackView,
}

/// Position in the schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepView {
    pub number: usize,
    pub of: usize,
    pub percent: f64,
    pub dwell_minutes: u32,
}

/// Slack delivery as the outbox sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlackView {
    pub pending: usize,
    pub delivered: u64,
    pub dropped: u64,
    /// Slack's code when the webhook is dead (no more sends until it is fixed).
    pub dead_webhook: Option<String>,
}

impl RolloutView {
    /// The view of `stored` at `now`.
    pub fn of(stored: &StoredRollout, now: Timestamp) -> RolloutView {
        let s = &stored.state;
        let index = match &s.phase {
            Phase::Ramping { step } => Some(*step),
            Phase::Baking => Some(s.schedule.last_index()),
            Phase::Paused { at, .. } | Phase::Drifted { at, .. } => match at {
                crate::rollout::Stage::Ramping { step } => Some(*step),
                crate::rollout::Stage::Baking => Some(s.schedule.last_index()),
                crate::rollout::Stage::Preflight => None,
            },
            _ => None,
        };
        let step = index.and_then(|i| {
            s.schedule.step(i).map(|st| StepView {
                number: i + 1,
                of: s.schedule.steps().len(),
                percent: st.percent.as_f64(),
                dwell_minutes: st.dwell_minutes,
            })
        });
        RolloutView {
            script: s.script.clone(),
            version_id: s.version_id.clone(),
            baseline_version_id: s.baseline_version_id.clone(),
            git_sha: s.git_sha.clone(),
            dry_run: s.dry_run,
            message: s.message.clone(),
            phase_name: s.phase.name(),
            phase: s.phase.clone(),
            terminal: s.phase.is_terminal(),
            step,
            live_split: s.deployment.live.clone(),
            intended_split: s.deployment.intended.clone(),
            write_pending: s.deployment.pending.is_some(),
            started_at: s.started_at,
            minutes_on_step: now.millis_since(s.clock.entered_at).max(0) / MINUTE_MS,
            last_assessment: s.last_assessment.clone(),
            last_decision: s.last_decision.clone(),
            slack: SlackView {
                pending: stored.outbox.items.len(),
                delivered: stored.outbox.delivered,
                dropped: stored.outbox.dropped,
                dead_webhook: stored.outbox.dead_webhook.clone(),
            },
        }
    }
}

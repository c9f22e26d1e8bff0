//! What the rollout tells the world: audit events (every tick's evidence and every
//! transition) and notices for Slack (one per transition, never one per tick). Both carry the
//! numbers behind the decision so Slack, the audit log and the status page can show why.

use super::{PauseReason, Phase, RolloutState, Stage};
use crate::json::tagged::internally_tagged;
use crate::policy::Reason;
use crate::signals::{Assessment, TickFacts};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

internally_tagged! {
    tag = "kind";
    /// What happened.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum EventKind {
        /// The rollout was accepted; pre-flight is next.
        Started,
        /// Every pre-flight check passed or was skipped.
        PreflightPassed,
        /// A pre-flight check failed: no traffic moves.
        PreflightFailed,
        /// A pre-flight check could not decide; it is retried.
        PreflightUndecided,
        /// Traffic is moving to step `step` (0-based) at `percent` (new version's share).
        StepStarted { step: usize, percent: f64 },
        /// The step's split was confirmed live by the API.
        StepLive { step: usize, percent: f64 },
        /// The dwell is over but the evidence is not there yet (once per step).
        Holding { step: usize },
        /// The rollout paused.
        Paused,
        /// An operator resumed the rollout.
        Resumed,
        /// An operator promoted the step without waiting for evidence.
        Promoted,
        /// Traffic is going back to the stable version.
        RollingBack,
        /// The stable version serves 100% again after an unhealthy verdict.
        RolledBack,
        /// The stable version serves 100% again after an operator abort.
        Aborted,
        /// The new version serves 100% and baked healthy.
        Completed,
        /// Someone else changed the deployment; the gate stopped writing.
        Drifted,
        /// The new version no longer serves: someone else deployed.
        Superseded,
        /// A deployment write failed and will be retried (or needs a human).
        WriteFailed,
        /// One tick's evidence (audit only).
        Tick,
    }
}

impl EventKind {
    /// The kind's stored tag (`started`, `step_started`, ...), as serde writes it.
    pub fn tag(&self) -> String {
        crate::json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}

internally_tagged! {
    tag = "decision";
    /// What one tick decided.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Decision {
        /// Move to the next stage.
        Advance { to: Stage },
        /// The bake is over with evidence: done.
        Complete,
        /// Not yet: the dwell is not over, or the evidence is missing (`gaps`, empty when
        /// only the dwell is left).
        Hold {
            dwell_left_minutes: i64,
            gaps: Vec<String>,
        },
        /// An unhealthy verdict: roll back.
        RollBack { reasons: Vec<Reason> },
        /// Pause and tell a human.
        Pause { reason: PauseReason },
        /// Nothing to decide (paused, or waiting for a deployment write).
        Wait { why: String },
    }
}

/// One audit-log entry. `phase` is the phase after the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When (the `now` of the step).
    pub at: Timestamp,
    /// The script.
    pub script: String,
    /// The new version.
    pub version_id: String,
    /// Dry-run rollouts never write deployments.
    pub dry_run: bool,
    /// What happened.
    pub kind: EventKind,
    /// The phase after the event (for `Tick`, the phase the tick was judged in; a
    /// transition it caused follows as its own event).
    pub phase: Phase,
    /// One line for humans.
    pub summary: String,
    /// Further lines (reasons, gaps, numbers).
    pub details: Vec<String>,
    /// Per-signal verdicts with the test numbers, when evidence was assessed.
    pub assessment: Option<Assessment>,
    /// What this tick added (minutes counted, totals, checks).
    pub facts: Option<TickFacts>,
    /// What the tick decided.
    pub decision: Option<Decision>,
}

/// A message for Slack (the shell's outbox formats and retries it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// When.
    pub at: Timestamp,
    /// The script.
    pub script: String,
    /// The new version.
    pub version_id: String,
    /// The stable version (what a rollback restores).
    pub baseline_version_id: String,
    /// When the rollout started (with the script and version, it names the rollout on
    /// Slack's buttons).
    #[serde(default = "unknown_start")]
    pub started_at: Timestamp,
    /// Git commit of the new version, when known.
    pub git_sha: Option<String>,
    /// Marked so Slack can say "dry run".
    pub dry_run: bool,
    /// What happened.
    pub kind: EventKind,
    /// The phase after the event.
    pub phase: Phase,
    /// The headline.
    pub headline: String,
    /// Reasons, gaps, numbers, one per line.
    pub details: Vec<String>,
    /// The verdicts and numbers behind the decision, when there are any.
    pub assessment: Option<Assessment>,
    /// `wrangler tail` command for the script.
    pub tail_command: String,
}

/// A transition about to be announced.
pub(super) struct Announcement {
    pub kind: EventKind,
    pub headline: String,
    pub details: Vec<String>,
    pub assessment: Option<Assessment>,
}

/// A notice stored before `started_at` existed: no button can name its rollout.
fn unknown_start() -> Timestamp {
    Timestamp::from_millis(0)
}

impl Announcement {
    /// An announcement without details.
    pub fn new(kind: EventKind, headline: String) -> Self {
        Announcement {
            kind,
            headline,
            details: Vec::new(),
            assessment: None,
        }
    }

    /// With these detail lines.
    pub fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// With the assessment behind it.
    pub fn assessment(mut self, assessment: Option<Assessment>) -> Self {
        self.assessment = assessment;
        self
    }
}

impl RolloutState {
    /// An audit event stamped with this rollout's identity and current phase.
    pub(super) fn event(&self, now: Timestamp, kind: EventKind, summary: String) -> AuditEvent {
        AuditEvent {
            at: now,
            script: self.script.clone(),
            version_id: self.version_id.clone(),
            dry_run: self.dry_run,
            kind,
            phase: self.phase.clone(),
            summary,
            details: Vec::new(),
            assessment: None,
            facts: None,
            decision: None,
        }
    }

    /// The event and notice for a transition (call after updating the phase).
    pub(super) fn announce(&self, now: Timestamp, a: Announcement) -> [super::Action; 2] {
        let headline = if self.dry_run {
            format!("[dry run] {}", a.headline)
        } else {
            a.headline
        };
        let mut event = self.event(now, a.kind.clone(), headline.clone());
        event.details = a.details.clone();
        event.assessment = a.assessment.clone();
        let notice = Notice {
            at: now,
            script: self.script.clone(),
            version_id: self.version_id.clone(),
            baseline_version_id: self.baseline_version_id.clone(),
            started_at: self.started_at,
            git_sha: self.git_sha.clone(),
            dry_run: self.dry_run,
            kind: a.kind,
            phase: self.phase.clone(),
            headline,
            details: a.details,
            assessment: a.assessment,
            tail_command: format!("wrangler tail {} --format pretty", self.script),
        };
        [
            super::Action::RecordEvent(event),
            super::Action::Notify(notice),
        ]
    }
}

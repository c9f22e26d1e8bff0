//! The rollout state machine: `RolloutState`, `Phase`, `Input`, `Action` and the one pure
//! function `step(state, input, now) -> (state, actions)`, plus `plan` (what to observe next).
//! Sync, no I/O, no clock; idempotent under repeated or late inputs.

mod deployment;
mod events;
mod forcing;
mod reads;
pub mod schema;
mod tick;
mod transitions;

pub use deployment::{
    moves_back_to, DeploymentState, PendingWrite, WhenSecretsChanged, WriteFailure, MESSAGE_PREFIX,
};
pub use events::{AuditEvent, Decision, EventKind, Notice};
pub use reads::{drift_read_due, DRIFT_READ_MINUTES};

use crate::json::tagged::internally_tagged;
use crate::observe::{
    CountsQuery, Fetched, LiveDeployment, ObservationPlan, Observations, PreflightReport,
    VersionShare,
};
use crate::policy::{Policy, Reason};
use crate::schedule::{Percent, Schedule};
use crate::signals::{Assessment, SignalState};
use crate::time::{Timestamp, MINUTE_MS};
use deployment::share;
use serde::{Deserialize, Serialize};
use std::fmt;
use transitions::{on_command, on_preflight, on_start, on_write};

/// A validated request to start a rollout (the shell validated the strings; the schedule
/// is already a `Schedule`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Worker script name.
    pub script: String,
    /// The new version.
    pub version_id: String,
    /// The stable version serving 100% when the hook arrived.
    pub baseline_version_id: String,
    /// Git commit of the new version (asset check, reports).
    pub git_sha: Option<String>,
    /// The steps.
    pub schedule: Schedule,
    /// Decide and report but never write a deployment.
    pub dry_run: bool,
    /// Free text from CI.
    pub message: Option<String>,
}

internally_tagged! {
    tag = "stage";
    /// Where a rollout is (or was, when paused or drifted) in its schedule.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum Stage {
        /// Pre-flight checks.
        Preflight,
        /// Split at schedule step `step` (0-based; never the last step).
        Ramping { step: usize },
        /// The last step: 100%, baking.
        Baking,
    }
}

internally_tagged! {
    tag = "phase";
    /// The rollout's phase.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Phase {
        /// Waiting for pre-flight checks; no traffic has moved.
        Preflight,
        /// New version at step `step`'s share.
        Ramping { step: usize },
        /// New version at 100%, baking.
        Baking,
        /// Done: the new version serves 100% and baked healthy. Terminal.
        Completed,
        /// Writing the stable version back to 100%.
        RollingBack { cause: RollbackCause },
        /// The stable version serves 100% again after an unhealthy verdict. Terminal.
        RolledBack { cause: RollbackCause },
        /// Stopped at `at` until an operator resumes (when `resumable`), promotes or aborts.
        /// Still observing: an unhealthy verdict still rolls back.
        Paused {
            at: Stage,
            reason: PauseReason,
            resumable: bool,
        },
        /// Stopped by an operator abort (rolled back if traffic had moved). Terminal.
        Aborted { by: String, why: Option<String> },
        /// Someone else changed the split while our version still serves: no writes until an
        /// operator resumes (taking over) or aborts.
        Drifted { at: Stage, observed: LiveDeployment },
        /// Someone else deployed and our version no longer serves. Terminal.
        Superseded { observed: LiveDeployment },
        /// Pre-flight refused the version; no traffic moved. Terminal.
        Failed { reasons: Vec<String> },
    }
}

internally_tagged! {
    tag = "cause";
    /// Why a rollback started.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum RollbackCause {
        /// A signal was unhealthy.
        Unhealthy { reasons: Vec<Reason> },
        /// An operator aborted.
        Operator { by: String, why: Option<String> },
    }
}

internally_tagged! {
    tag = "pause";
    /// Why a rollout paused.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum PauseReason {
        /// An operator asked.
        Operator { by: String, why: Option<String> },
        /// No usable evidence for too long (sources failing or no new-version traffic).
        NoEvidence { minutes: i64, gaps: Vec<String> },
        /// The step's maximum passed without enough evidence to promote.
        StepMaxReached {
            step: usize,
            minutes: i64,
            gaps: Vec<String>,
        },
        /// The deployments API refused a write (401/403: token; other 4xx: request).
        WriteRefused {
            status: Option<u16>,
            message: String,
        },
        /// A deployment write stayed unconfirmed too long.
        WriteStuck {
            attempts: u32,
            minutes: i64,
            last_failure: Option<String>,
        },
        /// Queue depth or retries over threshold (not attributable to a version).
        Queue { reasons: Vec<Reason> },
        /// Pre-flight could not decide for too long.
        PreflightUndecided { minutes: i64, why: Vec<String> },
        /// The rollout was stored in a schema this gate cannot carry on from (see `schema`):
        /// its evidence restarted, and an operator decides whether to go on.
        GateUpgraded { stored_schema: u32, schema: u32 },
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseReason::Operator { by, why } => {
                write!(f, "paused by {by}")?;
                why.as_ref().map_or(Ok(()), |w| write!(f, ": {w}"))
            }
            PauseReason::NoEvidence { minutes, gaps } => write!(
                f,
                "no usable evidence for {minutes} min: {}",
                gaps.join("; ")
            ),
            PauseReason::StepMaxReached {
                step,
                minutes,
                gaps,
            } => write!(
                f,
                "step {} still lacks evidence after {minutes} min: {}",
                step + 1,
                gaps.join("; ")
            ),
            PauseReason::WriteRefused { status, message } => {
                let status = status.map_or("no status".to_string(), |s| s.to_string());
                write!(f, "the deployments API refused the write ({status}): {message}")
            }
            PauseReason::WriteStuck {
                attempts,
                minutes,
                last_failure,
            } => write!(
                f,
                "deployment write unconfirmed after {attempts} attempts over {minutes} min (last: {})",
                last_failure.as_deref().unwrap_or("no answer")
            ),
            PauseReason::Queue { reasons } => {
                let details: Vec<&str> = reasons.iter().map(|r| r.detail.as_str()).collect();
                write!(f, "queue unhealthy: {}", details.join("; "))
            }
            PauseReason::PreflightUndecided { minutes, why } => write!(
                f,
                "pre-flight undecided after {minutes} min: {}",
                why.join("; ")
            ),
            PauseReason::GateUpgraded {
                stored_schema,
                schema,
            } => write!(
                f,
                "gate upgraded mid-rollout: resume or abort (stored in schema {stored_schema}, \
                 which this gate, writing {schema}, cannot carry on from; resuming restarts \
                 the evidence)"
            ),
        }
    }
}

/// Timing of the current stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepClock {
    /// When the stage began (the write was asked for).
    pub entered_at: Timestamp,
    /// When its split was confirmed live (dwell counts from here); `None` while pending.
    pub live_since: Option<Timestamp>,
    /// Restart point of the step maximum after a resume.
    pub max_from: Option<Timestamp>,
    /// The once-per-step holding notice was sent.
    pub holding_notified: bool,
}

impl StepClock {
    fn new(now: Timestamp) -> Self {
        StepClock {
            entered_at: now,
            live_since: None,
            max_from: None,
            holding_notified: false,
        }
    }
}

/// One rollout's whole state; lives in the Durable Object. Change it only through `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Worker script name.
    pub script: String,
    /// The new version.
    pub version_id: String,
    /// The stable version (rollback target).
    pub baseline_version_id: String,
    /// Git commit of the new version.
    pub git_sha: Option<String>,
    /// CI's message.
    pub message: Option<String>,
    /// Never write deployments.
    pub dry_run: bool,
    /// The schedule.
    pub schedule: Schedule,
    /// The thresholds this rollout runs under.
    pub policy: Policy,
    /// Where it is.
    pub phase: Phase,
    /// When it was created.
    pub started_at: Timestamp,
    /// Started was announced (makes `Input::Start` idempotent).
    pub announced: bool,
    /// Live versus intended deployment.
    pub deployment: DeploymentState,
    /// Timing of the current stage.
    pub clock: StepClock,
    /// Running evidence.
    pub signals: SignalState,
    /// The latest verdicts (status page).
    pub last_assessment: Option<Assessment>,
    /// The latest tick decision (status page).
    pub last_decision: Option<Decision>,
    /// Minute index of the last recorded tick event (one per minute).
    pub last_recorded_minute: Option<i64>,
}

/// An operator command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Stop advancing (observation and rollback on unhealthy continue).
    Pause,
    /// Continue a resumable pause, or take over after drift.
    Resume,
    /// Advance one stage now, without waiting for evidence (at the bake: complete).
    Promote,
    /// Roll back (or stop, if no traffic moved yet).
    Abort,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::Abort => "abort",
        };
        f.write_str(name)
    }
}

internally_tagged! {
    tag = "outcome";
    /// The outcome of a `SetDeployment`.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum WriteOutcome {
        /// The API created the deployment.
        Confirmed { deployment_id: Option<String> },
        /// It did not.
        Failed(WriteFailure),
        /// Cloudflare refused it because secrets changed since a version in the split was
        /// deployed (code 10220); only `?force=true` gets past that. The core forces only a
        /// write back to the stable version, and only when `setting` says so.
        SecretsChanged {
            /// HTTP status of the refusal (400 in wrangler's captured answer).
            status: u16,
            /// The secret names Cloudflare listed.
            secrets: Vec<String>,
            /// Cloudflare's message.
            message: String,
            /// The refused request carried `?force=true`.
            sent_forced: bool,
            /// `ROLLBACK_WHEN_SECRETS_CHANGED` as configured when the refusal came back.
            setting: WhenSecretsChanged,
        },
    }
}

internally_tagged! {
    tag = "input";
    /// A fact for `step`.
    // One input per tick, built once and moved into `step`: boxing the tick's observations
    // would only add an allocation.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Input {
        /// The rollout was created (announce it and ask for pre-flight).
        Start,
        /// Pre-flight results.
        Preflight(PreflightReport),
        /// A cron tick with what the shell observed per `plan`.
        Tick(Observations),
        /// An operator command (validated with `check_command` first for a 409).
        Operator {
            command: Command,
            by: String,
            why: Option<String>,
        },
        /// The outcome of `SetDeployment { write, .. }`.
        DeploymentWrite { write: u64, outcome: WriteOutcome },
        /// The live deployment as read after `Action::ReadDeployment`: applied as a tick's read
        /// (confirmation, drift, superseded), then the pending write is sent if still wanted.
        LiveRead(Fetched<LiveDeployment>),
        /// The rollout was stored in schema `stored_schema`, which this gate cannot carry on
        /// from, and its evidence was set aside (`schema::decode`): restart it and pause.
        GateUpgraded { stored_schema: u32 },
    }
}

internally_tagged! {
    tag = "action";
    /// An intention for the shell.
    // A step emits a handful of actions; boxing the large event variants would only make the
    // shell's matches noisier.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Action {
        /// Run the pre-flight checks and send `Input::Preflight`.
        RunPreflight {
            version_id: String,
            git_sha: Option<String>,
        },
        /// `POST .../deployments` with this full split and `workers/message` (and
        /// `?force=true` when `force`, which is only ever set on a write that puts the stable
        /// version back at 100%); report the outcome as `Input::DeploymentWrite { write, .. }`.
        /// Never emitted in dry-run.
        SetDeployment {
            write: u64,
            split: Vec<VersionShare>,
            message: String,
            force: bool,
        },
        /// Read the live deployment (`GET .../deployments`, the newest) and report it as
        /// `Input::LiveRead`. Asked for instead of `SetDeployment` by a step that has not read
        /// the deployment itself: pending write `write` waits for the read (`reads::send`).
        ReadDeployment { write: u64 },
        /// Post to Slack.
        Notify(Notice),
        /// Append to the audit log.
        RecordEvent(AuditEvent),
        /// Run a tick no later than this (e.g. a write retry between cron ticks).
        WakeAt(Timestamp),
    }
}

/// A command that does not apply now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// The command does not apply in this phase.
    #[error("cannot {command} a rollout that is {phase}")]
    NotAllowed {
        command: Command,
        phase: &'static str,
    },
    /// This pause can only be aborted.
    #[error("this pause cannot be resumed ({reason}); abort instead")]
    NotResumable { reason: String },
}

impl Phase {
    /// A short name for messages (`ramping`, `paused`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Preflight => "in pre-flight",
            Phase::Ramping { .. } => "ramping",
            Phase::Baking => "baking",
            Phase::Completed => "completed",
            Phase::RollingBack { .. } => "rolling back",
            Phase::RolledBack { .. } => "rolled back",
            Phase::Paused { .. } => "paused",
            Phase::Aborted { .. } => "aborted",
            Phase::Drifted { .. } => "drifted",
            Phase::Superseded { .. } => "superseded",
            Phase::Failed { .. } => "failed",
        }
    }

    /// The phase's stored tag (`preflight`, `rolled_back`, ...): what the API's `phase`
    /// field and its `?phase=` filter read.
    pub fn tag(&self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Ramping { .. } => "ramping",
            Phase::Baking => "baking",
            Phase::Completed => "completed",
            Phase::RollingBack { .. } => "rolling_back",
            Phase::RolledBack { .. } => "rolled_back",
            Phase::Paused { .. } => "paused",
            Phase::Aborted { .. } => "aborted",
            Phase::Drifted { .. } => "drifted",
            Phase::Superseded { .. } => "superseded",
            Phase::Failed { .. } => "failed",
        }
    }

    /// No further input changes a terminal rollout.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Phase::Completed
                | Phase::RolledBack { .. }
                | Phase::Aborted { .. }
                | Phase::Superseded { .. }
                | Phase::Failed { .. }
        )
    }

    /// The schedule position, for phases that have one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Phase::Preflight => Some(Stage::Preflight),
            Phase::Ramping { step } => Some(Stage::Ramping { step: *step }),
            Phase::Baking => Some(Stage::Baking),
            Phase::Paused { at, .. } | Phase::Drifted { at, .. } => Some(*at),
            _ => None,
        }
    }
}

impl RolloutState {
    /// A new rollout in pre-flight; nothing announced yet (send `Input::Start`, or use `start`).
    /// The shell validates `policy` first (`Policy::validate`); the schedule is valid by type.
    pub fn new(request: StartRequest, policy: Policy, now: Timestamp) -> Self {
        let signals = SignalState::new(&policy, now);
        RolloutState {
            deployment: DeploymentState::new(&request.baseline_version_id),
            script: request.script,
            version_id: request.version_id,
            baseline_version_id: request.baseline_version_id,
            git_sha: request.git_sha,
            message: request.message,
            dry_run: request.dry_run,
            schedule: request.schedule,
            policy,
            phase: Phase::Preflight,
            started_at: now,
            announced: false,
            clock: StepClock::new(now),
            signals,
            last_assessment: None,
            last_decision: None,
            last_recorded_minute: None,
        }
    }

    /// The schedule index of a stage (`Baking` is the last step).
    fn step_index(&self, stage: Stage) -> Option<usize> {
        match stage {
            Stage::Preflight => None,
            Stage::Ramping { step } => Some(step),
            Stage::Baking => Some(self.schedule.last_index()),
        }
    }

    /// The split for schedule step `percent`: new at `percent`, stable at the rest.
    fn split_at(&self, percent: Percent) -> Vec<VersionShare> {
        let mut split = vec![share(&self.version_id, percent.as_f64())];
        let rest = percent.complement();
        if rest.hundredths() > 0 {
            split.push(share(&self.baseline_version_id, rest.as_f64()));
        }
        split
    }
}

/// Creates a rollout and announces it: `RolloutState::new` then `step(.., Input::Start, ..)`.
pub fn start(request: StartRequest, policy: Policy, now: Timestamp) -> (RolloutState, Vec<Action>) {
    step(RolloutState::new(request, policy, now), Input::Start, now)
}

/// Applies one input at `now`. Pure and idempotent: the same input twice changes nothing the
/// second time (minutes are counted once, transitions happen once, notices are not repeated).
pub fn step(state: RolloutState, input: Input, now: Timestamp) -> (RolloutState, Vec<Action>) {
    let mut s = state;
    let mut out = Vec::new();
    s.deployment.step_read = reads::StepRead::of(&input);
    match input {
        Input::Start => on_start(&mut s, now, &mut out),
        Input::Preflight(report) => on_preflight(&mut s, &report, now, &mut out),
        Input::Tick(obs) => tick::on_tick(&mut s, &obs, now, &mut out),
        Input::Operator { command, by, why } => {
            if check_command(&s, command).is_ok() {
                on_command(&mut s, command, by, why, now, &mut out);
            }
        }
        Input::DeploymentWrite { write, outcome } => {
            on_write(&mut s, write, outcome, now, &mut out)
        }
        Input::LiveRead(read) => tick::on_live_read(&mut s, &read, now, &mut out),
        Input::GateUpgraded { stored_schema } => {
            schema::on_gate_upgraded(&mut s, stored_schema, now, &mut out)
        }
    }
    s.deployment.step_read = reads::StepRead::None;
    (s, out)
}

/// Whether `command` applies now (for a 409 before calling `step`, which ignores it otherwise).
///
/// # Errors
/// `NotAllowed` for the wrong phase; `NotResumable` for a pause only an abort can end.
pub fn check_command(state: &RolloutState, command: Command) -> Result<(), RolloutError> {
    let phase = &state.phase;
    let allowed = match command {
        Command::Pause => matches!(
            phase,
            Phase::Preflight | Phase::Ramping { .. } | Phase::Baking
        ),
        Command::Resume => match phase {
            Phase::Paused {
                resumable: false,
                reason,
                ..
            } => {
                return Err(RolloutError::NotResumable {
                    reason: reason.to_string(),
                })
            }
            Phase::Paused { .. } | Phase::Drifted { .. } => true,
            _ => false,
        },
        Command::Promote => {
            matches!(phase.stage(), Some(Stage::Ramping { .. } | Stage::Baking))
                && !matches!(phase, Phase::Drifted { .. })
        }
        Command::Abort => phase.stage().is_some(),
    };
    if allowed {
        Ok(())
    } else {
        Err(RolloutError::NotAllowed {
            command,
            phase: phase.name(),
        })
    }
}

/// What to fetch before the next tick at `now`. Terminal rollouts observe nothing. The live
/// deployment is read every minute while anything can change and every
/// `DRIFT_READ_MINUTES` on a quiet rollout (`reads::reads_deployment`).
pub fn plan(state: &RolloutState, now: Timestamp) -> ObservationPlan {
    let read = ObservationPlan {
        read_deployment: reads::reads_deployment(state, now),
        ..ObservationPlan::default()
    };
    match &state.phase {
        Phase::Preflight => ObservationPlan {
            preflight: true,
            ..read
        },
        Phase::RollingBack { .. } | Phase::Drifted { .. } => read,
        Phase::Ramping { .. } | Phase::Baking | Phase::Paused { .. } => {
            if state.phase.stage() == Some(Stage::Preflight) {
                return read;
            }
            ObservationPlan {
                probe_healthz: true,
                counts: counts_query(state, now),
                queue: state.policy.queue.is_some(),
                history: history_query(state),
                ..read
            }
        }
        _ => ObservationPlan::default(),
    }
}

fn counts_query(state: &RolloutState, now: Timestamp) -> Option<CountsQuery> {
    let from = state.signals.next_minute?;
    let lag = i64::from(state.policy.ingestion_lag_minutes);
    let to = now.plus_minutes(-lag).floor_minute();
    if to <= from {
        return None;
    }
    Some(CountsQuery {
        new_version: state.version_id.clone(),
        old_version: state.baseline_version_id.clone(),
        from,
        to,
        latency_from: to.plus_minutes(-i64::from(state.policy.window_minutes)),
        slow_above_ms: state.policy.latency_p95_ceiling_ms,
        very_slow_above_ms: state.policy.very_slow_ms(),
        approach_above_ms: state.policy.approach_ms(),
    })
}

/// The baseline window of the history and approach looks: the old version's
/// `history_minutes` before the rollout started (ending `ingestion_lag_minutes` before it,
/// so every minute has arrived), until it has been read (or failed too often).
fn history_query(state: &RolloutState) -> Option<CountsQuery> {
    let minutes = i64::from(state.policy.history_minutes);
    let wanted = state.policy.history_share > 0.0 || state.policy.approach_share > 0.0;
    if minutes == 0 || !wanted || !state.signals.history_wanted() {
        return None;
    }
    let lag = i64::from(state.policy.ingestion_lag_minutes);
    let to = state.started_at.floor_minute().plus_minutes(-lag);
    Some(CountsQuery {
        new_version: state.version_id.clone(),
        old_version: state.baseline_version_id.clone(),
        from: to.plus_minutes(-minutes),
        to,
        latency_from: to,
        slow_above_ms: state.policy.latency_p95_ceiling_ms,
        very_slow_above_ms: state.policy.very_slow_ms(),
        approach_above_ms: state.policy.approach_ms(),
    })
}

/// Whole minutes from `earlier` to `later` (floor).
fn minutes_between(earlier: Timestamp, later: Timestamp) -> i64 {
    later.millis_since(earlier).div_euclid(MINUTE_MS)
}

#[cfg(test)]
mod tests;

//! Transitions: start, pre-flight, operator commands, write outcomes (a refusal until
//! forced goes to `forcing`), and the moves every path shares (enter a step, pause, roll
//! back, complete), each announced once.

use super::deployment::{share, OutcomeEffect, WriteFailure};
use super::events::Announcement;
use super::reads::send;
use super::{
    minutes_between, tick, Action, Command, EventKind, PauseReason, Phase, RollbackCause,
    RolloutState, Stage, StepClock, WriteOutcome, MESSAGE_PREFIX,
};
use crate::observe::{Check, PreflightReport};
use crate::signals::Assessment;
use crate::time::Timestamp;

/// `Input::Start`: announce once and ask for pre-flight.
pub(super) fn on_start(s: &mut RolloutState, now: Timestamp, out: &mut Vec<Action>) {
    if s.announced || s.phase != Phase::Preflight {
        return;
    }
    s.announced = true;
    let steps: Vec<String> = s
        .schedule
        .steps()
        .iter()
        .map(|st| format!("{} for {} min", st.percent, st.dwell_minutes))
        .collect();
    let headline = format!(
        "Rollout of {} on {} started: pre-flight, then {}",
        s.version_id,
        s.script,
        steps.join(" → ")
    );
    let details = s.message.iter().cloned().collect();
    out.extend(s.announce(
        now,
        Announcement::new(EventKind::Started, headline).details(details),
    ));
    out.push(Action::RunPreflight {
        version_id: s.version_id.clone(),
        git_sha: s.git_sha.clone(),
    });
}

/// `Input::Preflight`: a clear failure refuses; undecided checks retry (then pause); all
/// passed or skipped moves to the first step.
pub(super) fn on_preflight(
    s: &mut RolloutState,
    report: &PreflightReport,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    if s.phase != Phase::Preflight {
        return;
    }
    let lines = |pick: fn(&Check) -> Option<&String>| -> Vec<String> {
        report
            .checks()
            .iter()
            .filter_map(|(name, check)| pick(check).map(|text| format!("{name}: {text}")))
            .collect()
    };
    let failed = lines(|c| match c {
        Check::Fail { reason } => Some(reason),
        _ => None,
    });
    let unknown = lines(|c| match c {
        Check::Unknown { why } => Some(why),
        _ => None,
    });
    if !failed.is_empty() {
        s.phase = Phase::Failed {
            reasons: failed.clone(),
        };
        let headline = format!(
            "Pre-flight refused {} on {}: no traffic moved",
            s.version_id, s.script
        );
        out.extend(s.announce(
            now,
            Announcement::new(EventKind::PreflightFailed, headline).details(failed),
        ));
        return;
    }
    if !unknown.is_empty() {
        let since = s.clock.max_from.unwrap_or(s.clock.entered_at);
        let minutes = minutes_between(since, now);
        if minutes >= i64::from(s.policy.max_minutes_without_evidence) {
            let reason = PauseReason::PreflightUndecided {
                minutes,
                why: unknown,
            };
            pause(s, Stage::Preflight, reason, true, now, out);
        } else if s
            .last_recorded_minute
            .is_none_or(|m| now.minute_index() > m)
        {
            s.last_recorded_minute = Some(now.minute_index());
            let mut event = s.event(
                now,
                EventKind::PreflightUndecided,
                "pre-flight undecided; retrying".into(),
            );
            event.details = unknown;
            out.push(Action::RecordEvent(event));
        }
        return;
    }
    let passed = lines(|c| match c {
        Check::Pass { detail } => Some(detail),
        Check::Skipped { reason } => Some(reason),
        _ => None,
    });
    let headline = format!("Pre-flight passed for {} on {}", s.version_id, s.script);
    out.extend(s.announce(
        now,
        Announcement::new(EventKind::PreflightPassed, headline).details(passed),
    ));
    enter_step(s, 0, now, out);
}

/// Moves to schedule step `index`: asks for its split (or, in dry-run, takes it as live).
pub(super) fn enter_step(
    s: &mut RolloutState,
    index: usize,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let Some(step) = s.schedule.step(index).copied() else {
        return;
    };
    let last = index >= s.schedule.last_index();
    s.phase = if last {
        Phase::Baking
    } else {
        Phase::Ramping { step: index }
    };
    s.clock = StepClock::new(now);
    s.signals.begin_step(now);
    s.signals.start_counting(now);
    let total = s.schedule.steps().len();
    let message = format!(
        "{MESSAGE_PREFIX} {} step {}/{} ({})",
        s.version_id,
        index + 1,
        total,
        step.percent
    );
    let split = s.split_at(step.percent);
    let headline = format!(
        "{}: moving {} to {} (step {}/{}{})",
        s.script,
        s.version_id,
        step.percent,
        index + 1,
        total,
        if last { ", then bake" } else { "" }
    );
    let kind = EventKind::StepStarted {
        step: index,
        percent: step.percent.as_f64(),
    };
    let write = s.deployment.request(split, message, now, s.dry_run);
    out.extend(s.announce(now, Announcement::new(kind, headline)));
    match write {
        Some(w) => send(s, w, now, out),
        None => mark_live(s, now),
    }
}

/// The current stage's split is live from `now`: the dwell starts.
pub(super) fn mark_live(s: &mut RolloutState, now: Timestamp) {
    if s.clock.live_since.is_none() {
        s.clock.live_since = Some(now);
        if s.phase.stage() == Some(Stage::Baking) {
            let horizon = s.schedule.steps().last().map_or(0, |step| step.max_minutes);
            s.signals.begin_bake(now, horizon);
        }
    }
}

/// The pending write is confirmed live (by outcome or read).
pub(super) fn on_live(s: &mut RolloutState, now: Timestamp, out: &mut Vec<Action>) {
    match s.phase.clone() {
        Phase::RollingBack { cause } => finish_rollback(s, cause, now, out),
        phase => {
            let Some(stage) = phase.stage() else { return };
            let Some(index) = s.step_index(stage) else {
                return;
            };
            if s.clock.live_since.is_some() {
                return;
            }
            mark_live(s, now);
            let percent = s.schedule.step(index).map_or(0.0, |st| st.percent.as_f64());
            let kind = EventKind::StepLive {
                step: index,
                percent,
            };
            let summary = format!(
                "{}: {percent}% of traffic on {} is live",
                s.script, s.version_id
            );
            out.push(Action::RecordEvent(s.event(now, kind, summary)));
        }
    }
}

/// `Input::DeploymentWrite`: confirm, schedule a retry, force a refused rollback, or
/// pause on a refusal.
pub(super) fn on_write(
    s: &mut RolloutState,
    write: u64,
    outcome: WriteOutcome,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let failure = match outcome {
        WriteOutcome::Confirmed { .. } => {
            if s.deployment.on_confirmed(write) == OutcomeEffect::Confirmed {
                on_live(s, now, out);
            }
            return;
        }
        WriteOutcome::Failed(failure) => failure,
        WriteOutcome::SecretsChanged {
            status,
            secrets,
            message,
            sent_forced,
            setting,
        } => {
            let refusal = super::forcing::SecretsRefusal {
                write,
                status,
                secrets,
                message,
                sent_forced,
                setting,
            };
            return super::forcing::on_secrets_changed(s, refusal, now, out);
        }
    };
    let first_failure = s
        .deployment
        .pending
        .as_ref()
        .is_some_and(|p| p.write == write && p.last_failure.is_none());
    let effect = s.deployment.on_failed(write, failure.clone(), now);
    match effect {
        OutcomeEffect::Ignored | OutcomeEffect::Confirmed => {}
        OutcomeEffect::Retry { at } => {
            let mut event = s.event(
                now,
                EventKind::WriteFailed,
                failure_summary(write, &failure),
            );
            event.details = vec![format!("retrying at {at}")];
            out.push(Action::RecordEvent(event));
            out.push(Action::WakeAt(at));
        }
        OutcomeEffect::Refused { resumable } => {
            on_refused(s, write, failure, resumable, first_failure, now, out)
        }
    }
}

fn failure_summary(write: u64, failure: &WriteFailure) -> String {
    let status = failure
        .status
        .map_or("transport error".to_string(), |c| c.to_string());
    format!(
        "deployment write {write} failed ({status}): {}",
        failure.message
    )
}

/// A write the API refused: a rollback keeps trying and tells a human once; a step pauses.
pub(super) fn on_refused(
    s: &mut RolloutState,
    write: u64,
    failure: WriteFailure,
    resumable: bool,
    first_failure: bool,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let summary = failure_summary(write, &failure);
    match s.phase.stage() {
        // A rollback is the safe direction: keep trying, tell a human once.
        None if matches!(s.phase, Phase::RollingBack { .. }) => {
            if first_failure {
                let headline = format!(
                    "Rollback of {} on {} is blocked: {summary}",
                    s.version_id, s.script
                );
                out.extend(s.announce(now, Announcement::new(EventKind::WriteFailed, headline)));
            } else {
                out.push(Action::RecordEvent(s.event(
                    now,
                    EventKind::WriteFailed,
                    summary,
                )));
            }
        }
        Some(stage) if !matches!(s.phase, Phase::Paused { .. }) => {
            let reason = PauseReason::WriteRefused {
                status: failure.status,
                message: failure.message,
            };
            pause(s, stage, reason, resumable, now, out);
        }
        _ => out.push(Action::RecordEvent(s.event(
            now,
            EventKind::WriteFailed,
            summary,
        ))),
    }
}

/// `Input::Operator` (already checked by `check_command`).
pub(super) fn on_command(
    s: &mut RolloutState,
    command: Command,
    by: String,
    why: Option<String>,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let Some(stage) = s.phase.stage() else { return };
    let said = why.as_ref().map_or(String::new(), |w| format!(": {w}"));
    match command {
        Command::Pause => {
            let reason = PauseReason::Operator { by, why };
            pause(s, stage, reason, true, now, out);
        }
        Command::Resume => resume(s, stage, &by, &said, now, out),
        Command::Promote => {
            let headline = format!(
                "{by} promoted {} on {} without waiting{said}",
                s.version_id, s.script
            );
            advance(s, stage, now, out);
            out.extend(s.announce(now, Announcement::new(EventKind::Promoted, headline)));
        }
        Command::Abort => {
            let cause = RollbackCause::Operator { by, why };
            if stage == Stage::Preflight {
                finish_rollback(s, cause, now, out);
            } else {
                start_rollback(s, cause, None, now, out);
            }
        }
    }
}

/// Back to `stage` from a pause or drift; after drift, takes over and re-asserts the split.
pub(super) fn resume(
    s: &mut RolloutState,
    stage: Stage,
    by: &str,
    said: &str,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let drifted = match &s.phase {
        Phase::Drifted { observed, .. } => Some(observed.clone()),
        _ => None,
    };
    s.phase = match stage {
        Stage::Preflight => Phase::Preflight,
        Stage::Ramping { step } => Phase::Ramping { step },
        Stage::Baking => Phase::Baking,
    };
    s.clock.max_from = Some(now);
    s.clock.holding_notified = false;
    s.signals.last_evidence_at = now;
    s.signals.queue_breaches = 0;
    let headline = format!("{by} resumed {} on {}{said}", s.version_id, s.script);
    out.extend(s.announce(now, Announcement::new(EventKind::Resumed, headline)));
    if let Some(observed) = drifted {
        // Taking over: what is live now is the baseline for drift; re-assert our split.
        s.deployment.adopt(&observed);
        if let Some(index) = s.step_index(stage) {
            enter_step(s, index, now, out);
        }
        return;
    }
    match stage {
        Stage::Preflight => out.push(Action::RunPreflight {
            version_id: s.version_id.clone(),
            git_sha: s.git_sha.clone(),
        }),
        _ => {
            s.deployment.make_due(now);
            if let Some(w) = s.deployment.retry_due(now) {
                send(s, w, now, out);
            }
        }
    }
}

/// Moves past `stage`: to the next step, or from the bake to completed.
pub(super) fn advance(s: &mut RolloutState, stage: Stage, now: Timestamp, out: &mut Vec<Action>) {
    match stage {
        Stage::Preflight => {}
        Stage::Ramping { step } => enter_step(s, step + 1, now, out),
        Stage::Baking => {
            s.phase = Phase::Completed;
            let headline = format!(
                "{} on {} is at 100% and baked healthy: done",
                s.version_id, s.script
            );
            let details = s
                .last_assessment
                .as_ref()
                .map(tick::verdict_lines)
                .unwrap_or_default();
            let a = Announcement::new(EventKind::Completed, headline)
                .details(details)
                .assessment(s.last_assessment.clone());
            out.extend(s.announce(now, a));
        }
    }
}

/// Pauses at `at` and announces why.
pub(super) fn pause(
    s: &mut RolloutState,
    at: Stage,
    reason: PauseReason,
    resumable: bool,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let headline = format!("{} on {} paused: {reason}", s.version_id, s.script);
    s.phase = Phase::Paused {
        at,
        reason,
        resumable,
    };
    let a = Announcement::new(EventKind::Paused, headline).assessment(s.last_assessment.clone());
    out.extend(s.announce(now, a));
}

/// Writes the stable version back to 100% (in dry-run: done at once).
pub(super) fn start_rollback(
    s: &mut RolloutState,
    cause: RollbackCause,
    assessment: Option<Assessment>,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let (headline, details) = match &cause {
        RollbackCause::Unhealthy { reasons } => (
            format!("Rolling back {} on {}: unhealthy", s.version_id, s.script),
            reasons.iter().map(|r| r.detail.clone()).collect(),
        ),
        RollbackCause::Operator { by, why } => (
            format!(
                "{by} aborted {} on {}: rolling back",
                s.version_id, s.script
            ),
            why.iter().cloned().collect(),
        ),
    };
    s.phase = Phase::RollingBack {
        cause: cause.clone(),
    };
    let split = vec![share(&s.baseline_version_id, 100.0)];
    let message = format!("{MESSAGE_PREFIX} rollback of {}", s.version_id);
    let write = s.deployment.request(split, message, now, s.dry_run);
    let a = Announcement::new(EventKind::RollingBack, headline)
        .details(details)
        .assessment(assessment);
    out.extend(s.announce(now, a));
    match write {
        Some(w) => send(s, w, now, out),
        None => finish_rollback(s, cause, now, out),
    }
}

/// The stable version serves 100% again: rolled back, or aborted by an operator.
pub(super) fn finish_rollback(
    s: &mut RolloutState,
    cause: RollbackCause,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let (kind, headline) = match &cause {
        RollbackCause::Unhealthy { .. } => (
            EventKind::RolledBack,
            format!(
                "Rolled back {} on {}: {} serves 100%",
                s.version_id, s.script, s.baseline_version_id
            ),
        ),
        RollbackCause::Operator { by, .. } => (
            EventKind::Aborted,
            format!(
                "{by} aborted {} on {}; {} serves 100%",
                s.version_id, s.script, s.baseline_version_id
            ),
        ),
    };
    s.phase = match cause {
        RollbackCause::Unhealthy { .. } => Phase::RolledBack { cause },
        RollbackCause::Operator { by, why } => Phase::Aborted { by, why },
    };
    out.extend(s.announce(now, Announcement::new(kind, headline)));
}

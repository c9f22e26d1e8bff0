//! Transitions: start, pre-flight, operator commands, write outcomes (including a rollback
//! Cloudflare refuses until forced), and the moves every path shares (enter a step, pause,
//! roll back, complete), each announced once.

use super::deployment::{
    moves_back_to, share, ForceEffect, OutcomeEffect, UntilForced, WhenSecretsChanged, WriteFailure,
};
use super::events::Announcement;
use super::{
    minutes_between, tick, Action, Command, EventKind, PauseReason, PendingWrite, Phase,
    RollbackCause, RolloutState, Stage, StepClock, WriteOutcome, MESSAGE_PREFIX,
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
        Some(w) => {
            out.push(Action::WakeAt(w.next_attempt_at));
            out.push(set_deployment(&w));
        }
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

/// The `SetDeployment` action for a pending write.
pub(super) fn set_deployment(w: &PendingWrite) -> Action {
    Action::SetDeployment {
        write: w.write,
        split: w.split.clone(),
        message: w.message.clone(),
        force: w.force,
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
            let refusal = SecretsRefusal {
                write,
                status,
                secrets,
                message,
                sent_forced,
                setting,
            };
            return on_secrets_changed(s, refusal, now, out);
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
fn on_refused(
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

/// Cloudflare's refusal of a write until forced (code 10220), as reported by the shell.
struct SecretsRefusal {
    write: u64,
    status: u16,
    secrets: Vec<String>,
    message: String,
    sent_forced: bool,
    setting: WhenSecretsChanged,
}

/// A write refused until forced: a rollback (the stable version back at 100%) is re-sent
/// with force, or held when the setting says pause; anything else is refused and never
/// forced. Each path says which secrets changed, in the audit log and in Slack.
fn on_secrets_changed(
    s: &mut RolloutState,
    r: SecretsRefusal,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let failure = WriteFailure {
        status: Some(r.status),
        retry_after_secs: None,
        message: r.message.clone(),
        credentials: false,
    };
    let first_failure = s
        .deployment
        .pending
        .as_ref()
        .is_some_and(|p| p.write == r.write && p.last_failure.is_none());
    let stable = s.baseline_version_id.clone();
    let until_forced = UntilForced {
        failure: failure.clone(),
        secrets: r.secrets.clone(),
        sent_forced: r.sent_forced,
    };
    let effect = s
        .deployment
        .on_secrets_changed(r.write, until_forced, &stable, r.setting, now);
    let named = if r.secrets.is_empty() {
        "Cloudflare did not name them".to_string()
    } else {
        r.secrets.join(", ")
    };
    let var = WhenSecretsChanged::VAR;
    let cloudflare = format!("Cloudflare: {}", r.message);
    match effect {
        ForceEffect::Ignored => {}
        ForceEffect::Forced { write } => {
            let headline = format!(
                "Cloudflare refused the rollback of {} on {} until forced: secrets changed \
                 since {stable} was deployed ({named}); re-sending it with force",
                s.version_id, s.script
            );
            let details = vec![
                format!("changed secrets: {named}"),
                format!(
                    "forcing brings back the secret values {stable} was deployed with; if one \
                     was rotated because it leaked, rotate it again"
                ),
                format!("{var} = \"force\"; set it to \"pause\" to be alerted instead"),
                cloudflare,
            ];
            let a = Announcement::new(EventKind::WriteFailed, headline).details(details);
            out.extend(s.announce(now, a));
            out.push(Action::WakeAt(write.next_attempt_at));
            out.push(set_deployment(&write));
        }
        ForceEffect::Held { first, retry_at } => {
            if first {
                let headline = format!(
                    "Rollback of {} on {} paused: Cloudflare refuses to move traffic back to \
                     {stable} unless forced, because secrets changed since it was deployed \
                     ({named})",
                    s.version_id, s.script
                );
                let details = vec![
                    format!("changed secrets: {named}"),
                    format!(
                        "{var} = \"pause\": the gate does not force it (forcing brings back \
                         the secret values {stable} was deployed with)"
                    ),
                    format!(
                        "to finish: roll back to {stable} by hand (wrangler rollback, confirming \
                         the secrets) or set {var} = \"force\"; the gate asks again without \
                         force every 5 min and completes the rollback once {stable} serves 100%"
                    ),
                    cloudflare,
                ];
                let a = Announcement::new(EventKind::WriteFailed, headline).details(details);
                out.extend(s.announce(now, a));
            } else {
                let mut event = s.event(
                    now,
                    EventKind::WriteFailed,
                    format!(
                        "rollback still refused until forced (changed secrets: {named}); \
                         {var} = \"pause\", not forcing"
                    ),
                );
                event.details = vec![cloudflare, format!("asking again at {retry_at}")];
                out.push(Action::RecordEvent(event));
            }
            out.push(Action::WakeAt(retry_at));
        }
        ForceEffect::Refused => {
            let backward = s
                .deployment
                .pending
                .as_ref()
                .is_some_and(|p| p.write == r.write && moves_back_to(&p.split, &stable));
            let why = if backward {
                "refused even with force"
            } else {
                "the gate never forces a step toward the new version"
            };
            let failure = WriteFailure {
                message: format!("{} (changed secrets: {named}); {why}", r.message),
                ..failure
            };
            on_refused(s, r.write, failure, false, first_failure, now, out);
        }
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
                out.push(Action::WakeAt(w.next_attempt_at));
                out.push(set_deployment(&w));
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
        Some(w) => {
            out.push(Action::WakeAt(w.next_attempt_at));
            out.push(set_deployment(&w));
        }
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

#[cfg(test)]
mod tests {
    //! A rollback Cloudflare refuses until forced (code 10220), driven through `step`.
    use super::super::deployment::share;
    use super::super::{
        start, step, Command, Input, Notice, StartRequest, WhenSecretsChanged, WriteOutcome,
    };
    use super::*;
    use crate::observe::{Fetched, LiveDeployment, Observations, VersionShare};
    use crate::policy::{Policy, Reason};
    use crate::schedule::Schedule;

    const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000);
    const SECRETS: [&str; 2] = ["SECRET", "SECRET_TWO"];

    fn pass() -> Check {
        Check::Pass {
            detail: "ok".into(),
        }
    }

    /// Ramping at step 1 with the 10% split confirmed live.
    fn ramping() -> RolloutState {
        let request = StartRequest {
            script: "mauntic-gateway".into(),
            version_id: "new".into(),
            baseline_version_id: "old".into(),
            git_sha: None,
            schedule: Schedule::default(),
            dry_run: false,
            message: None,
        };
        let (s, _) = start(request, Policy::default(), T0);
        let report = PreflightReport {
            version_exists: pass(),
            healthz: pass(),
            asset: pass(),
            bindings: pass(),
        };
        let (s, actions) = step(s, Input::Preflight(report), T0);
        let (write, _, _) = writes(&actions)[0].clone();
        let confirmed = WriteOutcome::Confirmed {
            deployment_id: None,
        };
        let (s, _) = step(s, written(write, confirmed), T0);
        assert_eq!(s.phase, Phase::Ramping { step: 0 });
        s
    }

    fn written(write: u64, outcome: WriteOutcome) -> Input {
        Input::DeploymentWrite { write, outcome }
    }

    fn refusal(setting: WhenSecretsChanged) -> WriteOutcome {
        WriteOutcome::SecretsChanged {
            status: 400,
            secrets: SECRETS.iter().map(|s| s.to_string()).collect(),
            message: "A secret has changed since this version was active. If you are sure \
                      this is ok, add a ?force=true query parameter to allow the rollback. \
                      The following secrets have changed: SECRET, SECRET_TWO"
                .into(),
            sent_forced: false,
            setting,
        }
    }

    fn abort(s: RolloutState, now: Timestamp) -> (RolloutState, u64) {
        let (s, actions) = step(
            s,
            Input::Operator {
                command: Command::Abort,
                by: "ops".into(),
                why: None,
            },
            now,
        );
        let (write, split, force) = writes(&actions)[0].clone();
        assert_eq!(split, vec![share("old", 100.0)]);
        assert!(!force, "a rollback is first sent without force");
        (s, write)
    }

    fn writes(actions: &[Action]) -> Vec<(u64, Vec<VersionShare>, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::SetDeployment {
                    write,
                    split,
                    force,
                    ..
                } => Some((*write, split.clone(), *force)),
                _ => None,
            })
            .collect()
    }

    fn notices(actions: &[Action]) -> Vec<&Notice> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Notify(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    fn events(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::RecordEvent(e) => Some(format!("{} {}", e.summary, e.details.join(" "))),
                _ => None,
            })
            .collect()
    }

    fn names_the_secrets(text: &str) -> bool {
        text.contains("SECRET, SECRET_TWO")
    }

    #[test]
    fn a_refused_abort_is_forced_and_the_secrets_are_named_in_slack_and_the_audit_log() {
        let (s, write) = abort(ramping(), T0.plus_minutes(3));
        let now = T0.plus_minutes(3);
        let (s, actions) = step(s, written(write, refusal(WhenSecretsChanged::Force)), now);
        assert_eq!(
            writes(&actions),
            vec![(write, vec![share("old", 100.0)], true)],
            "the same rollback, re-sent at once with force"
        );
        let notice = notices(&actions);
        assert_eq!(notice.len(), 1);
        assert!(
            names_the_secrets(&notice[0].headline),
            "{}",
            notice[0].headline
        );
        assert!(notice[0].headline.contains("force"));
        assert!(notice[0]
            .details
            .iter()
            .any(|d| d.contains("brings back the secret values old was deployed with")));
        assert!(events(&actions).iter().any(|e| names_the_secrets(e)));
        let confirmed = WriteOutcome::Confirmed {
            deployment_id: None,
        };
        let (s, _) = step(s, written(write, confirmed), now);
        assert!(matches!(s.phase, Phase::Aborted { .. }), "{:?}", s.phase);
    }

    #[test]
    fn a_refused_rollback_after_an_unhealthy_verdict_is_forced_too() {
        let mut s = ramping();
        let mut out = Vec::new();
        let cause = RollbackCause::Unhealthy {
            reasons: Vec::<Reason>::new(),
        };
        let now = T0.plus_minutes(4);
        start_rollback(&mut s, cause, None, now, &mut out);
        let (write, _, _) = writes(&out)[0].clone();
        let (s, actions) = step(s, written(write, refusal(WhenSecretsChanged::Force)), now);
        assert_eq!(writes(&actions).len(), 1);
        assert!(writes(&actions)[0].2, "forced");
        assert!(matches!(s.phase, Phase::RollingBack { .. }));
    }

    #[test]
    fn a_refused_step_toward_the_new_version_is_never_forced_it_pauses() {
        for setting in [WhenSecretsChanged::Force, WhenSecretsChanged::Pause] {
            let s = ramping();
            let pending = {
                let mut s = s.clone();
                let mut out = Vec::new();
                advance(
                    &mut s,
                    Stage::Ramping { step: 0 },
                    T0.plus_minutes(10),
                    &mut out,
                );
                (s, writes(&out)[0].clone())
            };
            let (s, (write, split, force)) = pending;
            assert!(!force && !moves_back_to(&split, "old"));
            let (s, actions) = step(s, written(write, refusal(setting)), T0.plus_minutes(10));
            assert!(writes(&actions).is_empty(), "{setting:?}: nothing re-sent");
            assert!(s.deployment.pending.as_ref().is_some_and(|p| !p.force));
            let Phase::Paused {
                reason,
                resumable: false,
                ..
            } = &s.phase
            else {
                panic!("{setting:?}: not paused: {:?}", s.phase);
            };
            let said = reason.to_string();
            assert!(names_the_secrets(&said), "{said}");
            assert!(
                said.contains("never forces a step toward the new version"),
                "{said}"
            );
            assert_eq!(notices(&actions).len(), 1, "Slack hears it once");
        }
    }

    #[test]
    fn the_pause_setting_alerts_once_and_never_forces_until_the_stable_version_is_back() {
        let (s, write) = abort(ramping(), T0.plus_minutes(3));
        let refused_at = T0.plus_minutes(3);
        let (s, actions) = step(
            s,
            written(write, refusal(WhenSecretsChanged::Pause)),
            refused_at,
        );
        assert!(writes(&actions).is_empty(), "not forced");
        let notice = notices(&actions);
        assert_eq!(notice.len(), 1);
        assert!(
            notice[0].headline.contains("paused"),
            "{}",
            notice[0].headline
        );
        assert!(names_the_secrets(&notice[0].headline));
        assert!(notice[0]
            .details
            .iter()
            .any(|d| d.contains(WhenSecretsChanged::VAR)));
        assert!(matches!(s.phase, Phase::RollingBack { .. }));
        // The next ask comes 5 minutes later, without force; a second refusal is audited only.
        let tick = |s: RolloutState, minute: i64, live: Vec<VersionShare>| {
            let obs = Observations {
                deployment: Some(Fetched::Ok(LiveDeployment {
                    versions: live,
                    ..LiveDeployment::default()
                })),
                ..Observations::default()
            };
            step(s, Input::Tick(obs), T0.plus_minutes(minute))
        };
        let ten = vec![share("new", 10.0), share("old", 90.0)];
        let (s, actions) = tick(s, 4, ten.clone());
        assert!(writes(&actions).is_empty(), "not before the retry time");
        let (s, actions) = tick(s, 8, ten);
        assert_eq!(
            writes(&actions),
            vec![(write, vec![share("old", 100.0)], false)]
        );
        let (s, actions) = step(
            s,
            written(write, refusal(WhenSecretsChanged::Pause)),
            T0.plus_minutes(8),
        );
        assert!(notices(&actions).is_empty(), "announced once");
        assert!(events(&actions).iter().any(|e| names_the_secrets(e)));
        // A human rolls back by hand (confirming the secrets): the gate sees it and finishes.
        let (s, actions) = tick(s, 9, vec![share("old", 100.0)]);
        assert!(matches!(s.phase, Phase::Aborted { .. }), "{:?}", s.phase);
        assert!(writes(&actions).is_empty());
    }

    #[test]
    fn a_live_read_that_gains_cohorts_is_drift_and_the_notice_names_them() {
        use crate::observe::CohortSplit;
        let s = ramping();
        let live = LiveDeployment {
            versions: vec![share("new", 10.0), share("old", 90.0)],
            message: Some(format!("{MESSAGE_PREFIX} step")),
            cohorts: vec![CohortSplit {
                name: "employee".into(),
                versions: vec![share("new", 100.0)],
            }],
            ..LiveDeployment::default()
        };
        let obs = Observations {
            deployment: Some(Fetched::Ok(live)),
            ..Observations::default()
        };
        let (s, actions) = step(s, Input::Tick(obs), T0.plus_minutes(2));
        assert!(matches!(s.phase, Phase::Drifted { .. }), "{:?}", s.phase);
        assert!(writes(&actions).is_empty(), "the gate stops writing");
        let notice = notices(&actions);
        assert_eq!(notice.len(), 1);
        assert!(
            notice[0]
                .details
                .iter()
                .any(|d| d.contains("\"employee\"") && d.contains("erases them")),
            "{:?}",
            notice[0].details
        );
    }
}

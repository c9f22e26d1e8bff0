//! The status page in words: what a phase, a decision, an event or a test's numbers mean,
//! as plain sentences (escaped by the caller). No HTML here except where a name says so.

use crate::observe::LiveDeployment;
use crate::policy::{describe_needed, format_e_value};
use crate::rollout::{Decision, EventKind, Phase, RollbackCause, Stage};
use crate::stats::RatioSummary;
use crate::status::RolloutView;

use super::html::{count, rate, share};

/// The colour family of a phase or an event: `ok`, `warn`, `bad` or `info`.
pub fn phase_tone(phase: &Phase) -> &'static str {
    match phase {
        Phase::Completed => "ok",
        Phase::Preflight | Phase::Ramping { .. } | Phase::Baking => "info",
        Phase::Paused { .. } | Phase::Drifted { .. } => "warn",
        Phase::RollingBack { .. }
        | Phase::RolledBack { .. }
        | Phase::Aborted { .. }
        | Phase::Superseded { .. }
        | Phase::Failed { .. } => "bad",
    }
}

/// See `phase_tone`.
pub fn event_tone(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Completed | EventKind::PreflightPassed => "ok",
        EventKind::Holding { .. } | EventKind::Paused | EventKind::PreflightUndecided => "warn",
        EventKind::PreflightFailed
        | EventKind::RollingBack
        | EventKind::RolledBack
        | EventKind::Aborted
        | EventKind::Drifted
        | EventKind::Superseded
        | EventKind::WriteFailed => "bad",
        EventKind::Started
        | EventKind::StepStarted { .. }
        | EventKind::StepLive { .. }
        | EventKind::Resumed
        | EventKind::Promoted
        | EventKind::Tick => "info",
    }
}

/// A stage as words: `pre-flight`, `step 2`, `the bake`.
pub fn stage(stage: &Stage) -> String {
    match stage {
        Stage::Preflight => "pre-flight".to_string(),
        Stage::Ramping { step } => format!("step {}", step + 1),
        Stage::Baking => "the bake at 100%".to_string(),
    }
}

/// What happened, short: `step started (50%)`, `rolled back`.
pub fn event_name(kind: &EventKind) -> String {
    match kind {
        EventKind::Started => "started".into(),
        EventKind::PreflightPassed => "pre-flight passed".into(),
        EventKind::PreflightFailed => "pre-flight failed".into(),
        EventKind::PreflightUndecided => "pre-flight undecided".into(),
        EventKind::StepStarted { step, percent } => {
            format!("step {} started ({})", step + 1, share(*percent))
        }
        EventKind::StepLive { step, percent } => {
            format!("step {} live ({})", step + 1, share(*percent))
        }
        EventKind::Holding { step } => format!("holding at step {}", step + 1),
        EventKind::Paused => "paused".into(),
        EventKind::Resumed => "resumed".into(),
        EventKind::Promoted => "promoted by hand".into(),
        EventKind::RollingBack => "rolling back".into(),
        EventKind::RolledBack => "rolled back".into(),
        EventKind::Aborted => "aborted".into(),
        EventKind::Completed => "completed".into(),
        EventKind::Drifted => "drift".into(),
        EventKind::Superseded => "superseded".into(),
        EventKind::WriteFailed => "deployment write failed".into(),
        EventKind::Tick => "tick".into(),
    }
}

/// The headline sentence of a rollout's phase and the lines that explain it (reasons,
/// what someone else deployed, what an operator can do).
pub fn phase_story(view: &RolloutView) -> (String, Vec<String>) {
    let at_step = view.step.as_ref().map_or(String::new(), |s| {
        format!(" (step {} of {})", s.number, s.of)
    });
    match &view.phase {
        Phase::Preflight => (
            "Pre-flight checks are running; no traffic has moved.".into(),
            Vec::new(),
        ),
        Phase::Ramping { .. } => {
            let percent = view.step.as_ref().map_or(0.0, |s| s.percent);
            (
                format!("The new version is ramping to {}{at_step}.", share(percent)),
                Vec::new(),
            )
        }
        Phase::Baking => (
            format!("The new version serves 100% and is baking{at_step}."),
            Vec::new(),
        ),
        Phase::Completed => (
            "Completed: the new version serves 100% and baked healthy.".into(),
            Vec::new(),
        ),
        Phase::RollingBack { cause } => (
            "Rolling back: the stable version is being set back to 100%.".into(),
            cause_lines(cause),
        ),
        Phase::RolledBack { cause } => (
            "Rolled back: the stable version serves 100% again.".into(),
            cause_lines(cause),
        ),
        Phase::Paused {
            at,
            reason,
            resumable,
        } => {
            let next = if *resumable {
                "Resume, promote or abort it (see below)."
            } else {
                "This pause cannot be resumed: promote or abort it."
            };
            (
                format!("Paused at {}: {reason}.", stage(at)),
                vec![next.to_string()],
            )
        }
        Phase::Aborted { by, why } => (
            format!(
                "Aborted by {by}{}; the stable version serves.",
                why.as_ref().map_or(String::new(), |w| format!(": {w}"))
            ),
            Vec::new(),
        ),
        Phase::Drifted { at, observed } => {
            let mut lines = deployment_lines(observed);
            lines.push(
                "The gate never fights a human: resume to take over again, or abort to restore the stable version."
                    .into(),
            );
            (
                format!(
                    "Drift at {}: someone else changed the deployment, so the gate stopped writing.",
                    stage(at)
                ),
                lines,
            )
        }
        Phase::Superseded { observed } => (
            "Superseded: someone else deployed and this version no longer serves.".into(),
            deployment_lines(observed),
        ),
        Phase::Failed { reasons } => (
            "Pre-flight refused the version; no traffic moved.".into(),
            reasons.clone(),
        ),
    }
}

fn cause_lines(cause: &RollbackCause) -> Vec<String> {
    match cause {
        RollbackCause::Unhealthy { reasons } => reasons
            .iter()
            .map(|r| format!("{}: {}", r.signal, r.detail))
            .collect(),
        RollbackCause::Operator { by, why } => vec![format!(
            "aborted by {by}{}",
            why.as_ref().map_or(String::new(), |w| format!(": {w}"))
        )],
    }
}

/// A deployment someone else made, line by line.
pub fn deployment_lines(read: &LiveDeployment) -> Vec<String> {
    let split: Vec<String> = read
        .versions
        .iter()
        .map(|v| format!("{} at {}", v.version_id, share(v.percent)))
        .collect();
    let mut lines = vec![format!("live now: {}", split.join(", "))];
    for (key, value) in [
        ("by", &read.author_email),
        ("message", &read.message),
        ("triggered by", &read.triggered_by),
        ("created", &read.created_on),
    ] {
        if let Some(value) = value {
            lines.push(format!("{key}: {value}"));
        }
    }
    lines
}

/// A tick's decision in words, and the lines behind it (gaps, reasons).
pub fn decision(decision: &Decision) -> (String, Vec<String>) {
    match decision {
        Decision::Advance { to } => (format!("advance to {}", stage(to)), Vec::new()),
        Decision::Complete => (
            "complete: the bake is over with evidence".into(),
            Vec::new(),
        ),
        Decision::Hold {
            dwell_left_minutes,
            gaps,
        } => {
            let head = if *dwell_left_minutes > 0 {
                format!("hold: {dwell_left_minutes} min of dwell left")
            } else {
                "hold: the dwell is over, the evidence is not".to_string()
            };
            (head, gaps.clone())
        }
        Decision::RollBack { reasons } => (
            "roll back".into(),
            reasons
                .iter()
                .map(|r| format!("{}: {}", r.signal, r.detail))
                .collect(),
        ),
        Decision::Pause { reason } => (format!("pause: {reason}"), Vec::new()),
        Decision::Wait { why } => (format!("wait: {why}"), Vec::new()),
    }
}

/// A sequential test's numbers: counts and rates per version, the e-value against its
/// threshold, the anytime-valid ratio bound, and what promotion still needs.
pub fn test_numbers(t: &RatioSummary) -> String {
    let bound = if t.upper_bound.is_finite() {
        format!("ratio ≤ {:.2}", t.upper_bound)
    } else {
        "ratio not bounded yet".to_string()
    };
    let exposure = if t.exposure_met {
        "exposure met".to_string()
    } else {
        describe_needed(t.new_requests_needed)
    };
    format!(
        "new {}/{} ({}) · old {}/{} ({}) · e-value {} of {} · {bound} · {exposure}",
        count(t.new_bad),
        count(t.new_total),
        rate(t.new_bad, t.new_total),
        count(t.old_bad),
        count(t.old_total),
        rate(t.old_bad, t.old_total),
        format_e_value(t.e_value),
        format_e_value(t.threshold),
    )
}

//! One cron tick: classify the live read (confirmation, drift), fold in the evidence, and
//! decide advance / hold / pause / roll back, explaining the decision with its numbers; and
//! the live read a write waits for (`Input::LiveRead`), classified the same way.

use super::events::Announcement;
use super::reads::send;
use super::transitions::{advance, on_live, pause, start_rollback};
use super::{
    minutes_between, Action, Decision, EventKind, PauseReason, Phase, RollbackCause, RolloutState,
    Stage,
};
use crate::observe::{Fetched, LiveDeployment, Observations};
use crate::policy::{
    describe_needed, format_e_value, Gap, Reason, SchedulePoint, Signal, Spend, Verdict,
};
use crate::rollout::deployment::ReadEffect;
use crate::signals::{Assessment, TickFacts, MAX_HISTORY_FAILURES};
use crate::time::Timestamp;

/// Handles `Input::Tick`.
pub(super) fn on_tick(
    s: &mut RolloutState,
    obs: &Observations,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    if s.phase.is_terminal() {
        return;
    }
    if let Some(Fetched::Ok(read)) = &obs.deployment {
        if !apply_read(s, read, now, out) {
            return;
        }
    }
    // Only a read that failed is a gap: a tick `plan` did not ask to read (a quiet
    // rollout between its read minutes) lacks nothing.
    let read_failed = matches!(obs.deployment, Some(Fetched::Failed { .. }));
    match s.phase.stage() {
        Some(Stage::Ramping { .. } | Stage::Baking)
            if !matches!(s.phase, Phase::Drifted { .. }) =>
        {
            evaluate(s, obs, read_failed, now, out)
        }
        _ if matches!(s.phase, Phase::RollingBack { .. }) => {
            if let Some(w) = s.deployment.retry_due(now) {
                send(s, w, now, out);
            }
        }
        _ => {}
    }
}

/// Handles `Input::LiveRead`: the read a step without one asked for before a write
/// (`Action::ReadDeployment`). Applied exactly as a tick's read (confirmation, drift,
/// superseded, cohorts during a rollback); then the pending write, if still wanted, is sent.
/// A failed read leaves it pending for the next tick, which reads and sends it.
pub(super) fn on_live_read(
    s: &mut RolloutState,
    read: &Fetched<LiveDeployment>,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    if s.phase.is_terminal() {
        return;
    }
    let read = match read {
        Fetched::Ok(read) => read,
        Fetched::Failed { why } => {
            if let Some(p) = &s.deployment.pending {
                let summary = format!(
                    "deployment write {} not sent yet: reading the live deployment before it \
                     failed",
                    p.write
                );
                // The attempts tell two such failures of one write in one minute apart (a
                // refusal until forced between them re-sends the write after a new read).
                let sent = format!(
                    "sent {} time(s) so far{}",
                    p.attempts,
                    if p.force { "; next with force" } else { "" }
                );
                let mut event = s.event(now, EventKind::WriteFailed, summary);
                event.details = vec![
                    why.clone(),
                    sent,
                    "the next tick reads the deployment again and sends the write".into(),
                ];
                out.push(Action::RecordEvent(event));
            }
            return;
        }
    };
    if !apply_read(s, read, now, out) {
        return;
    }
    // As on a tick: a paused or drifted rollout does not push its write.
    let sends = matches!(
        s.phase,
        Phase::Ramping { .. } | Phase::Baking | Phase::RollingBack { .. }
    );
    if sends {
        if let Some(w) = s.deployment.retry_due(now) {
            send(s, w, now, out);
        }
    }
}

/// Applies a live read. Returns false when the rollout stopped (drift, superseded, or the
/// rollback finished) and the tick should go no further.
fn apply_read(
    s: &mut RolloutState,
    read: &LiveDeployment,
    now: Timestamp,
    out: &mut Vec<Action>,
) -> bool {
    if matches!(s.phase, Phase::Drifted { .. }) {
        return false;
    }
    let rolling_back = matches!(s.phase, Phase::RollingBack { .. });
    match s.deployment.on_read(read, &s.version_id) {
        ReadEffect::Confirmed => {
            on_live(s, now, out);
            !s.phase.is_terminal()
        }
        ReadEffect::Unchanged | ReadEffect::Stale => true,
        // Someone set cohorts while we roll back: the rollback's write would erase them, and
        // the gate never erases what it does not manage. It stops, and says the rollback is
        // a human's to finish.
        ReadEffect::Drifted | ReadEffect::Superseded
            if rolling_back && !read.cohorts.is_empty() =>
        {
            s.deployment.abandon();
            s.phase = Phase::Superseded {
                observed: read.clone(),
            };
            let headline = format!(
                "{}: someone set cohorts on the deployment while the gate rolled back {}; the \
                 gate stopped so as not to erase them: finish the rollback by hand",
                s.script, s.version_id
            );
            let a = Announcement::new(EventKind::Superseded, headline).details(describe_read(read));
            out.extend(s.announce(now, a));
            false
        }
        // Someone changed the split while we roll back: keep restoring the stable version.
        ReadEffect::Drifted if rolling_back => true,
        ReadEffect::Drifted => {
            let Some(at) = s.phase.stage() else {
                return false;
            };
            s.deployment.abandon();
            s.phase = Phase::Drifted {
                at,
                observed: read.clone(),
            };
            let headline = format!(
                "{}: someone else changed the deployment; the gate stopped writing",
                s.script
            );
            let a = Announcement::new(EventKind::Drifted, headline).details(describe_read(read));
            out.extend(s.announce(now, a));
            false
        }
        ReadEffect::Superseded => {
            s.deployment.abandon();
            s.phase = Phase::Superseded {
                observed: read.clone(),
            };
            let headline = format!(
                "{}: {} no longer serves (someone else deployed); the gate stopped",
                s.script, s.version_id
            );
            let a = Announcement::new(EventKind::Superseded, headline).details(describe_read(read));
            out.extend(s.announce(now, a));
            false
        }
    }
}

fn describe_read(read: &LiveDeployment) -> Vec<String> {
    let split: Vec<String> = read
        .versions
        .iter()
        .map(|v| format!("{} at {}%", v.version_id, v.percent))
        .collect();
    let mut lines = vec![format!("live: {}", split.join(", "))];
    let extras = [
        ("by", &read.author_email),
        ("message", &read.message),
        ("triggered by", &read.triggered_by),
        ("created", &read.created_on),
    ];
    lines.extend(
        extras
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}"))),
    );
    if !read.cohorts.is_empty() {
        let cohorts: Vec<String> = read
            .cohorts
            .iter()
            .map(|c| {
                let split: Vec<String> = c
                    .versions
                    .iter()
                    .map(|v| format!("{} at {}%", v.version_id, v.percent))
                    .collect();
                format!("{:?} ({})", c.name, split.join(", "))
            })
            .collect();
        lines.push(format!(
            "cohorts: {}; the gate writes none, so a resume or abort replaces this \
             deployment and erases them",
            cohorts.join("; ")
        ));
    }
    lines
}

/// Ramping, baking, or paused at one of them: ingest, assess, decide, act, record.
fn evaluate(
    s: &mut RolloutState,
    obs: &Observations,
    read_failed: bool,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    let Some(stage) = s.phase.stage() else { return };
    let facts = s.signals.ingest(&s.policy, obs, now);
    if let Phase::Paused {
        reason: PauseReason::NoEvidence { .. },
        at,
        ..
    } = &s.phase
    {
        if s.signals.last_evidence_at == now {
            // A pause for missing evidence lifts itself once evidence flows again; pauses
            // that a human, a breach or a refused write caused wait for a human.
            let at = *at;
            super::transitions::resume(
                s,
                at,
                "rollout-gate",
                ": evidence is flowing again",
                now,
                out,
            );
        }
    }
    take_look(s, stage, &facts, now);
    let assessment = s.signals.assess(&s.policy, &facts, stage == Stage::Baking);
    let decision = decide(s, stage, &assessment, read_failed, now);
    s.last_assessment = Some(assessment.clone());
    s.last_decision = Some(decision.clone());
    if s.last_recorded_minute
        .is_none_or(|m| now.minute_index() > m)
    {
        s.last_recorded_minute = Some(now.minute_index());
        let mut event = s.event(now, EventKind::Tick, summarize(&decision));
        event.details = verdict_lines(&assessment);
        if let Some(why) = &facts.history_failed {
            event.details.push(format!(
                "5xx history and approach looks: reading the old version's window before the \
                 rollout failed ({} of {MAX_HISTORY_FAILURES} tries): {why}",
                s.signals.history_failures
            ));
        }
        event.assessment = Some(assessment.clone());
        event.facts = Some(facts);
        event.decision = Some(decision.clone());
        out.push(Action::RecordEvent(event));
    }
    act(s, stage, decision, assessment, now, out);
}

/// The exact looks of this tick, on a tick that counted fresh minutes (a failed query
/// postpones them): the scheduled looks while ramping, the bake looks while baking, each
/// at the allowance of the spending schedule (`Policy::spending`). The times come from the
/// clock, the schedule and the promotions, not from the looks' counts (docs/statistics.md,
/// "Scheduled looks", says where promotions read them).
fn take_look(s: &mut RolloutState, stage: Stage, facts: &TickFacts, now: Timestamp) {
    let (Some(index), Some(live_since)) = (s.step_index(stage), s.clock.live_since) else {
        return;
    };
    let Some(dwell) = s.schedule.step(index).map(|st| st.dwell_minutes) else {
        return;
    };
    if facts.minutes_counted == 0 || facts.counts_gap.is_some() {
        return;
    }
    let step = match stage {
        Stage::Ramping { step } => Some(step),
        _ => None,
    };
    let at = SchedulePoint {
        step,
        split_steps: s.schedule.last_index(),
        elapsed_minutes: minutes_between(live_since, now) as f64,
        dwell_minutes: dwell,
        step_end_due: step.is_some_and(|step| s.signals.step_end_due(step)),
    };
    match s.policy.spending(at) {
        Some(Spend::Split { kind, allowance }) => s.signals.look(kind, allowance),
        Some(Spend::Bake { allowance }) => s.signals.bake_look(allowance),
        None => {}
    }
}

fn decide(
    s: &RolloutState,
    stage: Stage,
    a: &Assessment,
    read_failed: bool,
    now: Timestamp,
) -> Decision {
    let reasons: Vec<Reason> = a
        .version_verdicts()
        .iter()
        .flat_map(|v| v.reasons().iter().cloned())
        .collect();
    if !reasons.is_empty() {
        return Decision::RollBack { reasons };
    }
    if let Phase::Paused { reason, .. } = &s.phase {
        return Decision::Wait {
            why: format!("paused: {reason}"),
        };
    }
    if let Some(Verdict::Unhealthy { reasons }) = &a.queue {
        return Decision::Pause {
            reason: PauseReason::Queue {
                reasons: reasons.clone(),
            },
        };
    }
    let max_silence = i64::from(s.policy.max_minutes_without_evidence);
    if let Some(p) = &s.deployment.pending {
        let minutes = minutes_between(p.first_attempt_at, now);
        if minutes >= max_silence {
            return Decision::Pause {
                reason: PauseReason::WriteStuck {
                    attempts: p.attempts,
                    minutes,
                    last_failure: p.last_failure.as_ref().map(|f| f.message.clone()),
                },
            };
        }
        let why = if p.attempts == 0 {
            "waiting to read the live deployment before sending the write".to_string()
        } else {
            format!(
                "waiting for the deployment write to be confirmed (attempt {})",
                p.attempts
            )
        };
        return Decision::Wait { why };
    }
    let Some(live_since) = s.clock.live_since else {
        return Decision::Wait {
            why: "waiting for the split to be confirmed live".into(),
        };
    };
    let gaps = gaps(a, read_failed);
    let silent = minutes_between(s.signals.last_evidence_at, now);
    if silent >= max_silence {
        return Decision::Pause {
            reason: PauseReason::NoEvidence {
                minutes: silent,
                gaps,
            },
        };
    }
    let Some(index) = s.step_index(stage) else {
        return Decision::Wait {
            why: "no step".into(),
        };
    };
    let Some(step) = s.schedule.step(index) else {
        return Decision::Wait {
            why: "no step".into(),
        };
    };
    let dwelt = minutes_between(live_since, now);
    if dwelt >= i64::from(step.dwell_minutes) && gaps.is_empty() {
        return match stage {
            Stage::Baking => Decision::Complete,
            Stage::Ramping { step } => Decision::Advance {
                to: if step + 1 >= s.schedule.last_index() {
                    Stage::Baking
                } else {
                    Stage::Ramping { step: step + 1 }
                },
            },
            Stage::Preflight => Decision::Wait {
                why: "pre-flight".into(),
            },
        };
    }
    let held = minutes_between(s.clock.max_from.unwrap_or(live_since), now);
    if held >= i64::from(step.max_minutes) {
        return Decision::Pause {
            reason: PauseReason::StepMaxReached {
                step: index,
                minutes: held,
                gaps,
            },
        };
    }
    Decision::Hold {
        dwell_left_minutes: (i64::from(step.dwell_minutes) - dwelt).max(0),
        gaps,
    }
}

/// Everything standing between this tick and a promotion (empty = promotable). A failed
/// read of the live deployment is one; a read `plan` did not ask for is not.
fn gaps(a: &Assessment, read_failed: bool) -> Vec<String> {
    let mut gaps: Vec<String> = [
        Some(&a.healthz),
        Some(&a.errors),
        Some(&a.latency),
        a.queue.as_ref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|v| match v {
        Verdict::Healthy => None,
        Verdict::Inconclusive { why } => Some(why.to_string()),
        unhealthy => Some(unhealthy.to_string()),
    })
    .collect();
    if read_failed {
        gaps.push(
            Gap::NotObserved {
                signal: Signal::Deployment,
            }
            .to_string(),
        );
    }
    gaps
}

fn act(
    s: &mut RolloutState,
    stage: Stage,
    decision: Decision,
    a: Assessment,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    match decision {
        Decision::RollBack { reasons } => {
            start_rollback(s, RollbackCause::Unhealthy { reasons }, Some(a), now, out)
        }
        Decision::Advance { .. } | Decision::Complete => advance(s, stage, now, out),
        Decision::Pause { reason } => pause(s, stage, reason, true, now, out),
        Decision::Wait { .. } => {
            // Paused rollouts do not push their forward write; a rollback would replace it.
            if !matches!(s.phase, Phase::Paused { .. }) {
                if let Some(w) = s.deployment.retry_due(now) {
                    send(s, w, now, out);
                }
            }
        }
        Decision::Hold {
            dwell_left_minutes,
            gaps,
        } => {
            if dwell_left_minutes == 0 && !gaps.is_empty() && !s.clock.holding_notified {
                s.clock.holding_notified = true;
                let index = s.step_index(stage).unwrap_or(0);
                let percent = s.schedule.step(index).map_or(0.0, |st| st.percent.as_f64());
                let headline = format!(
                    "{}: holding {} at {percent}%: dwell is over, evidence is not yet{}",
                    s.script,
                    s.version_id,
                    needed_requests(&a)
                        .map_or(String::new(), |n| format!(" ({})", describe_needed(n))),
                );
                let ann = Announcement::new(EventKind::Holding { step: index }, headline)
                    .details(gaps)
                    .assessment(Some(a));
                out.extend(s.announce(now, ann));
            }
        }
    }
}

/// The most new-version requests any test still needs, if any test reported it.
fn needed_requests(a: &Assessment) -> Option<f64> {
    [&a.errors, &a.latency]
        .iter()
        .filter_map(|v| match v {
            Verdict::Inconclusive {
                why:
                    Gap::NotEnoughEvidence {
                        new_requests_needed,
                        ..
                    },
            } => Some(*new_requests_needed),
            _ => None,
        })
        .reduce(f64::max)
}

/// One line per signal with its verdict (and the test numbers where there are some).
pub(super) fn verdict_lines(a: &Assessment) -> Vec<String> {
    let mut lines = vec![format!("healthz: {}", a.healthz)];
    for (name, verdict, test) in [
        ("5xx", &a.errors, &a.errors_test),
        ("latency", &a.latency, &a.slow_test),
    ] {
        let numbers = test.as_ref().map_or(String::new(), |t| {
            format!(
                " [new {:.0}/{:.0}, old {:.0}/{:.0}, e-value {} / {:.0}, ratio ≤ {:.2}]",
                t.new_bad,
                t.new_total,
                t.old_bad,
                t.old_total,
                format_e_value(t.e_value),
                t.threshold,
                t.upper_bound
            )
        });
        lines.push(format!("{name}: {verdict}{numbers}"));
    }
    for (row, look) in &a.looks {
        lines.push(format!("{}: {look}", row.parts().1.label()));
    }
    if let Some(queue) = &a.queue {
        lines.push(format!("queue: {queue}"));
    }
    lines
}

fn summarize(decision: &Decision) -> String {
    match decision {
        Decision::Advance { to } => format!("advance to {to:?}"),
        Decision::Complete => "complete".into(),
        Decision::Hold {
            dwell_left_minutes,
            gaps,
        } => match (dwell_left_minutes, gaps.is_empty()) {
            (0, _) => format!("hold: {}", gaps.join("; ")),
            (left, true) => format!("hold: {left} min of dwell left"),
            (left, false) => format!("hold: {left} min of dwell left; {}", gaps.join("; ")),
        },
        Decision::RollBack { reasons } => {
            let details: Vec<&str> = reasons.iter().map(|r| r.detail.as_str()).collect();
            format!("roll back: {}", details.join("; "))
        }
        Decision::Pause { reason } => format!("pause: {reason}"),
        Decision::Wait { why } => format!("wait: {why}"),
    }
}

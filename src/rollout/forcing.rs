//! A deployment write Cloudflare refuses until forced (code 10220: secrets changed since a
//! version in the split was deployed). Only a rollback or abort, a write that puts the
//! stable version alone back at 100%, is ever re-sent with `?force=true`, and only when
//! `ROLLBACK_WHEN_SECRETS_CHANGED` says force; each path names the changed secrets in the
//! audit log and in Slack. wrangler's `rollback` does the same after a human confirms
//! (cloudflare/workers-sdk `packages/wrangler/src/versions/api.ts`, `createDeployment`).

use super::deployment::{
    moves_back_to, ForceEffect, UntilForced, WhenSecretsChanged, WriteFailure,
};
use super::events::Announcement;
use super::reads::send;
use super::transitions::on_refused;
use super::{Action, EventKind, RolloutState};
use crate::time::Timestamp;

/// Cloudflare's refusal of a write until forced (code 10220), as reported by the shell.
pub(super) struct SecretsRefusal {
    pub write: u64,
    pub status: u16,
    pub secrets: Vec<String>,
    pub message: String,
    pub sent_forced: bool,
    pub setting: WhenSecretsChanged,
}

/// A write refused until forced: a rollback (the stable version back at 100%) is re-sent
/// with force, or held when the setting says pause; anything else is refused and never
/// forced. Each path says which secrets changed, in the audit log and in Slack.
pub(super) fn on_secrets_changed(
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
            send(s, write, now, out);
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

#[cfg(test)]
mod tests {
    //! A rollback Cloudflare refuses until forced (code 10220), driven through `step`.
    use super::super::deployment::share;
    use super::super::transitions::{advance, start_rollback};
    use super::super::{
        start, step, Command, Input, Phase, RollbackCause, Stage, StartRequest, WriteOutcome,
        MESSAGE_PREFIX,
    };
    use super::*;
    use crate::observe::{Check, PreflightReport};
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
        let (s, actions) = read_before_write(s, &actions, T0);
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
        assert!(writes(&actions).is_empty(), "no write before a fresh read");
        let (s, actions) = read_before_write(s, &actions, now);
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

    use super::super::tests::{answer_reads, live_read, notices};

    /// Answers the step's `ReadDeployment` with the split the gate last confirmed, as the
    /// shell would; returns the state and the read's actions (the write it waited for).
    fn read_before_write(
        s: RolloutState,
        actions: &[Action],
        now: Timestamp,
    ) -> (RolloutState, Vec<Action>) {
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::ReadDeployment { .. })),
            "{actions:?}"
        );
        let live = live_read(&s.deployment.live);
        answer_reads(s, actions, &live, now)
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
        let (s, refused) = step(s, written(write, refusal(WhenSecretsChanged::Force)), now);
        assert!(writes(&refused).is_empty(), "not before a fresh read");
        let (s, resent) = read_before_write(s, &refused, now);
        assert_eq!(
            writes(&resent),
            vec![(write, vec![share("old", 100.0)], true)],
            "the same rollback, re-sent with force right after the read"
        );
        let actions = refused;
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
        let (s, out) = read_before_write(s, &out, now);
        let (write, _, _) = writes(&out)[0].clone();
        let (s, actions) = step(s, written(write, refusal(WhenSecretsChanged::Force)), now);
        let (s, actions) = read_before_write(s, &actions, now);
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
                let (s, out) = read_before_write(s, &out, T0.plus_minutes(10));
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
    fn a_rollback_stops_rather_than_erase_cohorts_set_while_it_runs() {
        use crate::observe::CohortSplit;
        let (s, _) = abort(ramping(), T0.plus_minutes(1));
        assert!(
            matches!(s.phase, Phase::RollingBack { .. }),
            "{:?}",
            s.phase
        );
        let live = LiveDeployment {
            versions: vec![share("new", 10.0), share("old", 90.0)],
            cohorts: vec![CohortSplit {
                name: "employee".into(),
                versions: vec![share("old", 100.0)],
            }],
            ..LiveDeployment::default()
        };
        let obs = Observations {
            deployment: Some(Fetched::Ok(live)),
            ..Observations::default()
        };
        let (s, actions) = step(s, Input::Tick(obs), T0.plus_minutes(8));
        assert!(matches!(s.phase, Phase::Superseded { .. }), "{:?}", s.phase);
        assert!(writes(&actions).is_empty(), "no write erases the cohorts");
        assert!(s.deployment.pending.is_none());
        let notice = notices(&actions);
        assert_eq!(notice.len(), 1);
        assert!(notice[0].headline.contains("finish the rollback by hand"));
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

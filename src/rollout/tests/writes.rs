//! Deployment write outcomes: a failed write stays pending and is retried, a rate limit is
//! waited out, 403 and 400 pause (only the first resumable); a dry run never writes.

use super::*;

/// The first split's write, sent when the pre-flight passed at T0, fails with `status`.
/// Returns the state, the actions of the step that took the failure, and the write's id.
fn first_write_fails(
    status: u16,
    retry_after_secs: Option<u32>,
    message: &str,
) -> (RolloutState, Vec<Action>, u64) {
    let (s, actions) = first_split_written(Policy::default());
    let (write, _) = writes(&actions)[0].clone();
    let failure = WriteFailure {
        status: Some(status),
        retry_after_secs,
        message: message.into(),
        credentials: false,
    };
    let outcome = WriteOutcome::Failed(failure);
    let (s, actions) = step(s, Input::DeploymentWrite { write, outcome }, T0);
    (s, actions, write)
}

#[test]
fn failed_deployment_write_stays_pending_and_retries() {
    let (s, actions, write) = first_write_fails(503, None, "upstream");
    assert!(actions.contains(&Action::WakeAt(at(1))));
    assert!(s.deployment.pending.is_some());
    assert!(s.clock.live_since.is_none());
    let (s, actions) = run(s, 1..=1, HEALTHY);
    let retried = writes(&actions);
    assert_eq!(retried.len(), 1, "retried on the next tick");
    assert_eq!(retried[0].0, write, "same write id");
    assert_eq!(s.clock.live_since, Some(at(1)));
}

#[test]
fn rate_limited_write_waits_for_retry_after() {
    let (mut s, _, _) = first_write_fails(429, Some(180), "rate limited");
    for m in 1..=2 {
        let obs = observe(&s, at(m), HEALTHY, &[stable()]);
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        assert!(writes(&actions).is_empty(), "minute {m}");
        s = next;
    }
    let obs = observe(&s, at(3), HEALTHY, &[stable()]);
    let (_, actions) = step(s, Input::Tick(obs), at(3));
    assert_eq!(writes(&actions).len(), 1);
}

#[test]
fn auth_failure_pauses_with_a_clear_reason_and_resume_retries() {
    let (s, actions, _) = first_write_fails(403, None, "Authentication error");
    let Phase::Paused {
        reason,
        resumable: true,
        ..
    } = &s.phase
    else {
        panic!("not paused: {:?}", s.phase);
    };
    assert!(reason.to_string().contains("403"), "{reason}");
    assert_eq!(notices(&actions).len(), 1);
    let (s, actions) = step(s, operator(Command::Resume, "ops", None), at(5));
    assert_eq!(s.phase, Phase::Ramping { step: 0 });
    let (_, sent) = answer_reads(s, &actions, &live_read(&[stable()]), at(5));
    assert_eq!(
        writes(&sent).len(),
        1,
        "the pending write is sent again, after a read"
    );
}

#[test]
fn bad_request_write_pauses_and_cannot_be_resumed() {
    let (s, _, _) = first_write_fails(400, None, "bad percentage");
    assert!(matches!(
        s.phase,
        Phase::Paused {
            resumable: false,
            ..
        }
    ));
    assert!(matches!(
        check_command(&s, Command::Resume),
        Err(RolloutError::NotResumable { .. })
    ));
    assert_eq!(check_command(&s, Command::Abort), Ok(()));
}

#[test]
fn dry_run_never_sets_deployment() {
    let (s, mut all) = start(request(true), Policy::default(), T0);
    let (s, actions) = step(s, Input::Preflight(report()), T0);
    all.extend(actions);
    // The real deployment never changes: the stable version keeps 100%. Feed traffic as if
    // the split were real so the decisions are exercised.
    let mut s = s;
    for m in 1..=45 {
        let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.intended);
        obs.deployment = Some(Fetched::Ok(LiveDeployment {
            versions: vec![stable()],
            ..LiveDeployment::default()
        }));
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        all.extend(actions);
        s = next;
    }
    assert_eq!(s.phase, Phase::Completed, "dry run decides like a real one");
    assert!(writes(&all).is_empty());
    let ns = notices(&all);
    assert!(ns.len() >= 4);
    assert!(ns
        .iter()
        .all(|n| n.dry_run && n.headline.starts_with("[dry run]")));
}

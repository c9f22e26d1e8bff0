//! gate-sim's checker must be able to fail: each test builds a world that breaks one
//! invariant and expects the checker to name it.

use super::*;
use crate::gatesim::faults::FaultPlan;
use crate::gatesim::world::{AppliedWrite, SlackPost};
use crate::rollout::{self, StartRequest};
use crate::time::Timestamp;

fn world_with(phase: Phase) -> (World, StoredRollout) {
    let world = World::new(1, FaultPlan::calm(), false, false);
    let request = StartRequest {
        script: super::super::world::SCRIPT.into(),
        version_id: NEW.into(),
        baseline_version_id: OLD.into(),
        git_sha: None,
        schedule: Default::default(),
        dry_run: false,
        message: None,
    };
    let (mut state, _) = rollout::start(request, Default::default(), Timestamp::from_millis(0));
    state.phase = phase;
    let stored = StoredRollout {
        schema: rollout::schema::CURRENT,
        state,
        outbox: Default::default(),
        budget: crate::clients::cloudflare::ApiBudget::new(10),
        last_now: Timestamp::from_millis(0),
        upgraded_from: None,
    };
    store(&world, &stored);
    (world, stored)
}

fn store(world: &World, stored: &StoredRollout) {
    world.disk.borrow_mut().rollout = Some(serde_json::to_string(stored).expect("encodes"));
}

fn broken(checker: &Checker) -> Vec<Invariant> {
    checker.violations.iter().map(|v| v.invariant).collect()
}

/// Rolling back after an operator's abort.
fn rolling_back() -> Phase {
    Phase::RollingBack {
        cause: rollout::RollbackCause::Operator {
            by: "op".into(),
            why: None,
        },
    }
}

fn paused() -> Phase {
    Phase::Paused {
        at: rollout::Stage::Ramping { step: 0 },
        reason: rollout::PauseReason::Operator {
            by: "op".into(),
            why: None,
        },
        resumable: true,
    }
}

#[test]
fn a_write_while_paused_is_caught() {
    let (world, _) = world_with(paused());
    world.writes.borrow_mut().push(AppliedWrite {
        minute: 3,
        split: vec![(NEW.into(), 50.0), (OLD.into(), 50.0)],
        saved_phase: Some("paused".into()),
        answer_lost: false,
        forced: false,
        read_first: true,
    });
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    assert!(broken(&checker).contains(&Invariant::NoWriteWhileStopped));
}

#[test]
fn a_forward_write_after_a_rollback_decision_is_caught() {
    let (world, _) = world_with(rolling_back());
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    world.writes.borrow_mut().push(AppliedWrite {
        minute: 1,
        split: vec![(NEW.into(), 10.0), (OLD.into(), 90.0)],
        saved_phase: Some("rolling back".into()),
        answer_lost: false,
        forced: true,
        read_first: true,
    });
    checker.after_step(&world, 2, false);
    assert!(broken(&checker).contains(&Invariant::RollbackCompletes));
}

#[test]
fn a_rollback_that_never_reaches_cloudflare_is_caught() {
    let (world, _) = world_with(rolling_back());
    // The gate's own 50% step still serves (no human's deploy to leave alone).
    world
        .deployments
        .borrow_mut()
        .last_mut()
        .expect("one")
        .split = vec![(NEW.into(), 50.0), (OLD.into(), 50.0)];
    world.writes.borrow_mut().push(AppliedWrite {
        minute: 0,
        split: vec![(NEW.into(), 50.0), (OLD.into(), 50.0)],
        saved_phase: Some("ramping 1".into()),
        answer_lost: false,
        forced: false,
        read_first: true,
    });
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    world.minute.set(ROLLBACK_BOUND_MINUTES + 5);
    checker.after_step(&world, 2, false);
    assert!(broken(&checker).contains(&Invariant::RollbackCompletes));
}

#[test]
fn a_slack_repeat_without_a_lost_answer_is_caught_and_one_with_it_is_not() {
    let (world, _) = world_with(Phase::Baking);
    world
        .committed
        .borrow_mut()
        .insert(1, r#"{"text":"hello"}"#.into());
    let post = |lost| SlackPost {
        minute: 0,
        body: r#"{"text":"hello"}"#.into(),
        answer_lost: lost,
    };
    world
        .slack_posts
        .borrow_mut()
        .extend([post(true), post(false)]);
    let mut excused = Checker::new(1);
    excused.after_step(&world, 1, false);
    assert!(!broken(&excused).contains(&Invariant::SlackOnce));
    world.slack_posts.borrow_mut().push(post(false));
    excused.after_step(&world, 2, false);
    assert!(broken(&excused).contains(&Invariant::SlackOnce));
}

#[test]
fn a_stored_transition_without_its_audit_event_is_caught() {
    let (world, mut stored) = world_with(Phase::Ramping { step: 0 });
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    stored.state.phase = paused();
    store(&world, &stored);
    checker.after_step(&world, 2, false);
    assert!(broken(&checker).contains(&Invariant::AuditComplete));
}

#[test]
fn a_rollback_may_leave_a_humans_deploy_serving() {
    let (world, _) = world_with(rolling_back());
    world.deploy_by_hand(vec![(super::super::world::HUMAN.into(), 100.0)]);
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    world.minute.set(ROLLBACK_BOUND_MINUTES + 5);
    checker.after_step(&world, 2, false);
    assert!(
        !broken(&checker).contains(&Invariant::RollbackCompletes),
        "{:?}",
        checker.violations
    );
}

#[test]
fn a_split_nobody_asked_for_is_caught() {
    let (world, _) = world_with(Phase::Ramping { step: 0 });
    world
        .deployments
        .borrow_mut()
        .last_mut()
        .expect("one")
        .split = vec![(NEW.into(), 50.0), (OLD.into(), 50.0)];
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    assert!(broken(&checker).contains(&Invariant::SplitMatchesState));
}

#[test]
fn a_write_without_a_read_before_it_is_caught() {
    let (world, _) = world_with(Phase::Ramping { step: 0 });
    world.writes.borrow_mut().push(AppliedWrite {
        minute: 10,
        split: vec![(NEW.into(), 50.0), (OLD.into(), 50.0)],
        saved_phase: Some("ramping 1".into()),
        answer_lost: false,
        forced: false,
        read_first: false,
    });
    let mut checker = Checker::new(1);
    checker.after_step(&world, 1, false);
    assert!(broken(&checker).contains(&Invariant::WriteAfterRead));
}

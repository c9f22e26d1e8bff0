//! Rollouts stored by earlier releases (tests/fixtures/stored/: v2 written at a1fb043, the
//! previous release; v1 and v0 at 4c8fa47) read by this one: each reads as it was written and goes on with the decisions that release
//! made on the same inputs; one stored by a gate this one cannot carry on from keeps its
//! place and pauses for an operator.

#[path = "controller/world.rs"]
#[allow(dead_code)] // shared with tests/controller.rs, which uses all of it
mod world;

use rollout_gate::api::parse_deploy_hook;
use rollout_gate::controller::Controller;
use rollout_gate::observe::{Fetched, LiveDeployment, VersionShare};
use rollout_gate::rollout::schema::{self, CURRENT};
use rollout_gate::rollout::{
    self, check_command, Action, Command, Decision, EventKind, Input, PauseReason, Phase,
    RolloutState, Stage,
};
use rollout_gate::time::Timestamp;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;
use world::{block_on, config, minute, secrets, MemStore, World, NEW, OLD, SCRIPT};

/// One stored rollout with the steps that followed (see tests/fixtures/stored/README.md).
struct Fixture {
    name: String,
    stored: Value,
    steps: Vec<Step>,
    read_by_previous_release: Option<Value>,
}

struct Step {
    now: Timestamp,
    input: Input,
    /// What the previous release decided on `input`.
    then: Value,
}

fn fixtures(version: &str) -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stored")
        .join(version);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    paths.sort();
    let fixtures: Vec<Fixture> = paths.iter().map(|path| fixture(path)).collect();
    assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());
    fixtures
}

/// An input as this release's Analytics Engine query reports it: the fixtures' minutes are
/// unsampled (`sample_interval` 1), so every request is one stored row.
fn with_rows(mut input: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                let counts = ["requests", "errors", "slow"].map(|k| fields.get(k).cloned());
                if let (false, [Some(rows), Some(errors), Some(slow)]) =
                    (fields.contains_key("stored"), counts)
                {
                    fields.insert(
                        "stored".into(),
                        json!({"rows": rows, "errors": errors, "slow": slow}),
                    );
                }
                fields.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut input);
    input
}

fn fixture(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).expect("readable");
    let mut file: Value = serde_json::from_str(&text).expect("JSON");
    let steps = file["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| Step {
            now: Timestamp::from_millis(step["now"].as_i64().expect("now")),
            input: serde_json::from_value(with_rows(step["input"].clone())).expect("an input"),
            then: step["then"].clone(),
        })
        .collect();
    Fixture {
        name: path.file_name().expect("a name").to_string_lossy().into(),
        stored: file["stored"].take(),
        steps,
        read_by_previous_release: file.get_mut("read_by_previous_release").map(Value::take),
    }
}

/// `value` written and read back as text, as the previous release's answers were recorded:
/// both sides then hold the numbers the same digits give.
fn as_recorded(value: &impl Serialize) -> Value {
    let text = serde_json::to_string(value).expect("encodes");
    serde_json::from_str(&text).expect("decodes")
}

/// What a step decided, as the fixtures record it: the phase after it, the tick's decision,
/// and each action (audit events and notices by kind, phase and decision; the rest whole).
fn decided(state: &RolloutState, actions: &[Action]) -> Value {
    let actions: Vec<Value> = actions
        .iter()
        .map(|a| match a {
            Action::RecordEvent(e) => json!({
                "record_event": e.kind, "phase": e.phase, "decision": e.decision,
            }),
            Action::Notify(n) => json!({"notify": n.kind, "phase": n.phase}),
            // An internally tagged newtype of an integer does not encode.
            Action::WakeAt(at) => json!({"wake_at": at}),
            other => serde_json::to_value(other).expect("an action encodes"),
        })
        .collect();
    json!({
        "phase": state.phase,
        "decision": state.last_decision,
        "actions": actions,
    })
}

/// What the steps make of what the previous release wrote, as this release's types read it
/// back: nothing the steps keep is lost in decoding.
fn upgraded(written: &Value) -> Value {
    let mut want = as_recorded(written);
    let version = want.get("schema").and_then(Value::as_u64).unwrap_or(0) as u32;
    schema::upgrade(&mut want, version);
    want
}

#[test]
fn every_rollout_the_previous_release_stored_reads_as_it_was_written_after_the_steps() {
    for f in fixtures("v2").into_iter().chain(fixtures("v1")) {
        let read = schema::decode_value(f.stored.clone()).expect(&f.name);
        assert_eq!(read.upgraded_from, None, "{}", f.name);
        assert_eq!(as_recorded(&read), upgraded(&f.stored), "{}", f.name);
        assert_eq!(read.schema, CURRENT);
    }
}

#[test]
fn a_rollout_stored_before_its_fields_existed_reads_as_serde_filled_them() {
    for f in fixtures("v0") {
        let read = schema::decode_value(f.stored.clone()).expect(&f.name);
        let want = upgraded(&f.read_by_previous_release.expect("what it read"));
        assert_eq!(as_recorded(&read), want, "{}", f.name);
    }
}

/// Carries out the `ReadDeployment`s among `actions` with a read that shows the split the
/// rollout last saw live, each replaced by what the read's step did. This release reads the
/// live deployment before a write in a step that has not read it (rollout/reads.rs), where
/// the previous release wrote at once; on that read the write follows, the same write the
/// previous release sent, in the same order.
fn with_reads_answered(
    mut state: RolloutState,
    actions: Vec<Action>,
    now: Timestamp,
) -> (RolloutState, Vec<Action>) {
    let mut out = Vec::new();
    for action in actions {
        if let Action::ReadDeployment { .. } = action {
            let read = Fetched::Ok(LiveDeployment {
                versions: state.deployment.live.clone(),
                ..LiveDeployment::default()
            });
            let (next, more) = rollout::step(state, Input::LiveRead(read), now);
            state = next;
            out.extend(more);
        } else {
            out.push(action);
        }
    }
    (state, out)
}

#[test]
fn rollouts_the_previous_release_stored_go_on_with_its_decisions() {
    let every = [fixtures("v2"), fixtures("v1"), fixtures("v0")];
    for f in every.into_iter().flatten() {
        let mut state = schema::decode_value(f.stored.clone()).expect(&f.name).state;
        for (i, step) in f.steps.into_iter().enumerate() {
            let (next, actions) = rollout::step(state, step.input, step.now);
            let (next, actions) = with_reads_answered(next, actions, step.now);
            let then = as_recorded(&decided(&next, &actions));
            assert_eq!(then, step.then, "{} step {i}", f.name);
            state = next;
        }
    }
}

/// `stored` as a later gate might write it: a later schema, evidence in a form this gate
/// does not know, and policy knobs it does not know.
fn from_a_later_gate(stored: &Value) -> Value {
    // A later gate writes every knob this one does, and more.
    let mut later = upgraded(stored);
    later["schema"] = json!(CURRENT + 1);
    later["state"]["signals"] = json!({"looks": [{"row": "errors_split", "e_value": 3.5}]});
    later["state"]["last_assessment"] = json!({"outcomes": []});
    later["state"]["policy"]["change_point_share"] = json!(0.1);
    later["state"]["policy"]["alpha_split"]["errors_change_point"] = json!(0.05);
    later
}

const LATER: Input = Input::GateUpgraded {
    stored_schema: CURRENT + 1,
};

#[test]
fn a_rollout_from_a_later_gate_keeps_all_but_its_evidence() {
    for f in fixtures("v1") {
        let stored = schema::decode_value(f.stored.clone()).expect(&f.name);
        let read = schema::decode_value(from_a_later_gate(&f.stored)).expect(&f.name);
        assert_eq!(read.upgraded_from, Some(CURRENT + 1), "{}", f.name);
        assert_eq!(read.schema, CURRENT);
        let (was, is) = (&stored.state, &read.state);
        assert_eq!(is.phase, was.phase, "{}", f.name);
        assert_eq!(is.deployment, was.deployment, "{}", f.name);
        assert_eq!(is.clock, was.clock, "{}", f.name);
        assert_eq!(is.policy, was.policy, "{}", f.name);
        assert_eq!(is.schedule, was.schedule, "{}", f.name);
        assert_eq!(
            (&is.version_id, &is.baseline_version_id, is.started_at),
            (&was.version_id, &was.baseline_version_id, was.started_at)
        );
        assert_eq!(
            (&read.outbox, &read.budget, read.last_now),
            (&stored.outbox, &stored.budget, stored.last_now)
        );
        assert_eq!(
            is.signals.next_minute, None,
            "{}: evidence set aside",
            f.name
        );
        assert_eq!(is.last_assessment, None);
    }
}

#[test]
fn a_gate_upgrade_pauses_rollouts_with_traffic_on_the_new_version_and_no_other() {
    let upgraded = PauseReason::GateUpgraded {
        stored_schema: CURRENT + 1,
        schema: CURRENT,
    };
    let mut paused = 0;
    for f in fixtures("v1") {
        let read = schema::decode_value(from_a_later_gate(&f.stored)).expect(&f.name);
        let before = read.state.phase.clone();
        let now = read.last_now.plus_minutes(1);
        let (state, actions) = rollout::step(read.state, LATER, now);
        let want = match before.clone() {
            Phase::Ramping { step } => Some((Stage::Ramping { step }, true)),
            Phase::Baking => Some((Stage::Baking, true)),
            Phase::Paused { at, resumable, .. } => Some((at, resumable)),
            _ => None,
        };
        let Some((at, resumable)) = want else {
            // A rollback, drift and a finished rollout go on as they were.
            assert_eq!(state.phase, before, "{}", f.name);
            assert!(actions.is_empty(), "{}: {actions:?}", f.name);
            continue;
        };
        paused += 1;
        let want = Phase::Paused {
            at,
            reason: upgraded.clone(),
            resumable,
        };
        assert_eq!(state.phase, want, "{}", f.name);
        assert!(
            upgraded
                .to_string()
                .starts_with("gate upgraded mid-rollout: resume or abort"),
            "{upgraded}"
        );
        let said: Vec<&EventKind> = actions
            .iter()
            .filter_map(|a| match a {
                Action::RecordEvent(e) => Some(&e.kind),
                Action::Notify(n) => Some(&n.kind),
                _ => None,
            })
            .collect();
        assert_eq!(said, [&EventKind::Paused, &EventKind::Paused], "{}", f.name);
        assert_eq!(
            state.signals.next_minute,
            Some(now.floor_minute()),
            "{}: counting restarts now",
            f.name
        );
    }
    assert_eq!(paused, 4, "mid-split, baking, paused and queue pause");
}

#[test]
fn after_a_gate_upgrade_resume_counts_afresh_and_abort_rolls_back() {
    let f = fixture(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stored/v1/mid-split.json"
    )));
    let read = schema::decode_value(from_a_later_gate(&f.stored)).expect("reads");
    let at = f.steps[0].now;
    let (paused, _) = rollout::step(read.state, LATER, at);

    assert_eq!(check_command(&paused, Command::Abort), Ok(()));
    let abort = Input::Operator {
        command: Command::Abort,
        by: "oncall".into(),
        why: None,
    };
    let (aborted, actions) = rollout::step(paused.clone(), abort, at);
    assert!(matches!(aborted.phase, Phase::RollingBack { .. }));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::ReadDeployment { .. })),
        "the live deployment is read before the write back"
    );
    let (aborted, actions) = with_reads_answered(aborted, actions, at);
    let back = vec![VersionShare {
        version_id: aborted.baseline_version_id.clone(),
        percent: 100.0,
    }];
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::SetDeployment { split, .. } if *split == back)));

    assert_eq!(check_command(&paused, Command::Resume), Ok(()));
    let resume = Input::Operator {
        command: Command::Resume,
        by: "oncall".into(),
        why: None,
    };
    let (mut state, _) = rollout::step(paused, resume, at);
    assert_eq!(state.phase, Phase::Ramping { step: 1 });
    for step in f.steps {
        if matches!(step.input, Input::Tick(_)) {
            state = rollout::step(state, step.input, step.now).0;
        }
    }
    assert!(
        state.signals.step_totals.new.requests > 0.0,
        "minutes after the resume counted"
    );
    assert!(!matches!(
        state.phase,
        Phase::RollingBack { .. } | Phase::RolledBack { .. }
    ));
}

#[test]
fn after_a_gate_upgrade_at_the_bake_resume_holds_rather_than_complete_without_a_reference() {
    let f = fixture(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stored/v1/baking.json"
    )));
    let read = schema::decode_value(from_a_later_gate(&f.stored)).expect("reads");
    let at = f.steps[0].now;
    let (paused, _) = rollout::step(read.state, LATER, at);
    let resume = Input::Operator {
        command: Command::Resume,
        by: "oncall".into(),
        why: None,
    };
    let (mut state, _) = rollout::step(paused, resume, at);
    // The previous release completed on these ticks, on the split it had compared with.
    let mut ticks = 0;
    for step in f.steps {
        if matches!(&step.input, Input::Tick(obs) if obs.counts.is_some()) {
            state = rollout::step(state, step.input, step.now).0;
            ticks += 1;
        }
    }
    assert!(ticks >= 5, "{ticks}");
    assert_eq!(state.phase, Phase::Baking);
    assert!(
        matches!(state.last_decision, Some(Decision::Hold { .. })),
        "{:?}",
        state.last_decision
    );
}

// ---- the controller: what the Durable Object does with such a rollout ----

#[test]
fn the_controller_pauses_a_rollout_from_a_later_gate_and_stores_it_in_its_own_schema() {
    let (world, store, config, secrets) = (World::new(), MemStore::default(), config(), secrets());
    let ctl = Controller::new(&world, &store, &config, &secrets);
    let body =
        format!(r#"{{"script":"{SCRIPT}","version_id":"{NEW}","baseline_version_id":"{OLD}"}}"#);
    let hook = parse_deploy_hook(Some("application/json"), body.as_bytes()).expect("a hook");
    block_on(ctl.start(hook, minute(0))).expect("started");
    for m in 1..=12 {
        block_on(ctl.tick(minute(m))).expect("tick");
    }
    let stored = store.rollout.borrow().clone().expect("a rollout");
    let Phase::Ramping { step } = stored.state.phase else {
        panic!("{:?}", stored.state.phase)
    };
    let later = from_a_later_gate(&serde_json::to_value(&stored).expect("encodes"));
    *store.rollout.borrow_mut() = Some(schema::decode_value(later).expect("reads"));
    let slack_before = world.slack.borrow().len();

    block_on(ctl.tick(minute(13))).expect("tick");

    let saved = store.rollout.borrow().clone().expect("a rollout");
    assert_eq!((saved.schema, saved.upgraded_from), (CURRENT, None));
    assert!(
        matches!(
            &saved.state.phase,
            Phase::Paused { at, reason: PauseReason::GateUpgraded { .. }, resumable: true }
                if *at == Stage::Ramping { step }
        ),
        "{:?}",
        saved.state.phase
    );
    assert!(store
        .events
        .borrow()
        .iter()
        .any(|e| e.kind == EventKind::Paused && e.summary.contains("gate upgraded mid-rollout")));
    let posted = world.slack.borrow()[slack_before..].to_vec();
    assert!(
        posted
            .iter()
            .any(|m| m.to_string().contains("gate upgraded mid-rollout")),
        "{posted:?}"
    );

    let aborted = block_on(ctl.command(Command::Abort, "oncall".into(), None, minute(14)))
        .expect("abort applies");
    assert!(matches!(aborted.state.phase, Phase::Aborted { .. }));
    assert_eq!(*world.live.borrow(), [(OLD.to_string(), 100.0)]);
}

#[test]
fn an_audit_row_with_the_previous_releases_looks_reads_with_them_keyed_by_budget_row() {
    let f = fixtures("v1")
        .into_iter()
        .find(|f| f.name.contains("mid-split"))
        .expect("the mid-split fixture");
    let old = f.stored["state"]["last_assessment"].clone();
    let state = schema::decode_value(f.stored.clone()).expect("reads").state;
    let step = f.steps.into_iter().next().expect("a step");
    let (_, actions) = rollout::step(state, step.input, step.now);
    let event = actions
        .iter()
        .find_map(|a| match a {
            Action::RecordEvent(e) if e.assessment.is_some() => Some(e),
            _ => None,
        })
        .expect("a tick's audit event");
    let mut row = serde_json::to_value(event).expect("encodes");
    row["assessment"] = old.clone();
    let read = schema::decode_event(&row.to_string()).expect("an old row reads");
    let looks = read.assessment.expect("its assessment").looks;
    let rows: Vec<String> = looks.keys().map(|r| r.to_string()).collect();
    assert_eq!(
        rows,
        [
            "errors_split_looks",
            "errors_split_history",
            "slow_split_looks",
            "very_slow_split_looks",
            "approaching_split_looks"
        ]
    );
    let p = |v: &Value| v["p_value"].as_f64();
    assert_eq!(
        looks.values().map(|l| Some(l.p_value)).collect::<Vec<_>>(),
        [
            p(&old["errors_look"]),
            p(&old["errors_history"]),
            p(&old["latency_look"]),
            p(&old["very_slow_look"]),
            p(&old["approach_look"]),
        ]
    );
}

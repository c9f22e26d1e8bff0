use super::*;
use crate::notify::Outbox;
use crate::rollout::StartRequest;
use crate::schedule::Schedule;
use serde_json::json;

fn stored() -> StoredRollout {
    let request = StartRequest {
        script: "shop".into(),
        version_id: "new".into(),
        baseline_version_id: "old".into(),
        git_sha: None,
        schedule: Schedule::default(),
        dry_run: false,
        message: None,
    };
    let now = Timestamp::from_millis(1_795_773_600_000);
    StoredRollout {
        schema: CURRENT,
        state: RolloutState::new(request, Policy::default(), now),
        outbox: Outbox::default(),
        budget: ApiBudget::new(API_CALLS_PER_5_MIN),
        last_now: now,
        upgraded_from: None,
    }
}

#[test]
fn what_this_gate_writes_reads_back_as_serde_reads_it() {
    let text = serde_json::to_string(&stored()).expect("encodes");
    assert!(
        text.starts_with(&format!(r#"{{"schema":{CURRENT},"#)),
        "{text}"
    );
    let plain: StoredRollout = serde_json::from_str(&text).expect("decodes");
    assert_eq!(decode(&text), Ok(plain));
}

#[test]
fn a_schema_that_is_not_a_version_number_is_an_error_not_a_guess() {
    for schema in [json!("2"), json!(-1), json!(1.5), json!(u64::MAX)] {
        let mut value = json!(stored());
        value["schema"] = schema.clone();
        assert_eq!(
            decode_value(value),
            Err(SchemaError::NotAVersion(schema.to_string()))
        );
    }
}

#[test]
fn a_later_gate_s_phase_cannot_be_paused_and_the_error_says_which_schema() {
    let mut value = json!(stored());
    value["schema"] = json!(CURRENT + 1);
    value["state"]["phase"] = json!({"phase": "canary_analysis", "step": 1});
    let err = decode_value(value).expect_err("no phase to pause at");
    assert!(
        matches!(&err, SchemaError::Undecodable { schema, why }
            if *schema == CURRENT + 1 && why.contains("canary_analysis")),
        "{err}"
    );
}

#[test]
fn a_later_gate_s_policy_knobs_are_dropped_and_those_it_lacks_take_defaults() {
    let mut policy = json!(Policy::default());
    policy["alpha"] = json!(0.02);
    policy["change_point_share"] = json!(0.1);
    policy["alpha_split"]["errors_change_point"] = json!(0.05);
    policy["queue"] = json!({"max_depth": 50.0, "max_age_secs": 60});
    policy.as_object_mut().expect("an object").remove("rho0");
    let read = known_knobs(&policy).expect("reads");
    assert_eq!(read.alpha, 0.02);
    assert_eq!(read.rho0, Policy::default().rho0);
    let queue = read.queue.expect("a queue");
    assert_eq!(queue.max_depth, 50.0);
    assert_eq!(queue.consecutive, QueueThresholds::default().consecutive);
}

#[test]
fn a_rollout_in_pre_flight_goes_on_after_an_upgrade_with_fresh_evidence() {
    let mut value = json!(stored());
    value["schema"] = json!(CURRENT + 1);
    let read = decode_value(value).expect("reads");
    assert_eq!(read.upgraded_from, Some(CURRENT + 1));
    let mut state = read.state;
    let mut out = Vec::new();
    let now = read.last_now.plus_minutes(2);
    on_gate_upgraded(&mut state, CURRENT + 1, now, &mut out);
    assert_eq!(state.phase, Phase::Preflight);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(state.signals.last_evidence_at, now);
}

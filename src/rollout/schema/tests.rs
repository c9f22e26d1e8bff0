use super::*;
use crate::notify::Outbox;
use crate::rollout::StartRequest;
use crate::schedule::Schedule;
use crate::stats::{BakeLooks, HistoryLooks, LookKind, LookOutcome};
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

/// History looks as the release at 4c8fa47 stored them (a step end at allowance 0.4, then
/// three minutes) read back after step 1 → 2 and write out as read, and their closing look
/// spends and decides what it did there.
#[test]
fn history_looks_stored_by_4c8fa47_carry_over_and_spend_alike() {
    const STORED: &str = r#"{"alpha":0.0005,"margin":1.5,"max_events_per_minute":30.0,"baseline":{"minutes":180,"requests":1080000.0,"bad":1079.0},"guard":{"alpha":0.002,"rho0":1.0,"max_events_per_minute":30.0,"minutes":13,"events":106,"minutes_at_last_look":10,"groups":[{"segment":0,"p0":0.1,"events":7,"new_bad":2},{"segment":1,"p0":0.1,"events":7,"new_bad":2},{"segment":2,"p0":0.1,"events":7,"new_bad":2},{"segment":3,"p0":0.1,"events":7,"new_bad":2},{"segment":4,"p0":0.1,"events":7,"new_bad":2},{"segment":5,"p0":0.1,"events":7,"new_bad":2},{"segment":6,"p0":0.1,"events":7,"new_bad":2},{"segment":7,"p0":0.1,"events":7,"new_bad":2},{"segment":8,"p0":0.1,"events":7,"new_bad":2},{"segment":9,"p0":0.1,"events":7,"new_bad":2},{"segment":10,"p0":0.5,"events":12,"new_bad":9},{"segment":10,"p0":0.5,"events":12,"new_bad":9},{"segment":10,"p0":0.5,"events":12,"new_bad":9}],"boundaries":[6,8,10,11,13,14,16,19,20,22],"latest":{"kind":{"at":"interim","step":0},"number":10,"events":70,"new_bad":20,"null_mean":7.000000000000001,"critical":22,"p_value":0.00010647632207761453,"alpha":0.0001,"rho0":1.0,"rejected":false,"skipped":null,"robust":null,"scaled":false,"divisor":null},"exact_allowance":0.05,"z_minutes":3,"z_sum":0.232379000772445,"z_sum_sq":0.018000000000000002,"z_events":36.0,"z_requests":18000.0,"scaled":false,"new_requests":15000.0,"old_requests":63000.0,"raw_requests":0.0},"new_requests":15000.0,"new_bad":47,"old_requests":63000.0,"old_bad":59,"minutes":13,"spent":0.4,"latest":{"kind":{"at":"step_end","step":0},"new_bad":20,"new_requests":6000.0,"baseline":{"minutes":180,"requests":1080000.0,"bad":1079.0},"margin":1.5,"null_mean":8.991666666666667,"p_value":0.0011139605905225764,"alpha":0.0002,"guard_alpha":0.002,"guard_rejected":false,"rejected":false,"skipped":null}}"#;
    const CLOSING: &str = r#"{"kind":{"at":"closing"},"new_bad":47,"new_requests":15000.0,"baseline":{"minutes":180,"requests":1080000.0,"bad":1079.0},"margin":1.5,"null_mean":22.479166666666668,"p_value":5.664905542595236e-6,"alpha":0.0003,"guard_alpha":0.002,"guard_rejected":true,"rejected":true,"skipped":null}"#;
    let mut stored: Value = serde_json::from_str(STORED).unwrap();
    let number = stored["guard"]["latest"]["number"].clone();
    v1::scheduled_look(&mut stored["guard"]["latest"]);
    v1::history_look(&mut stored["latest"], number);
    let mut looks: HistoryLooks = serde_json::from_value(stored.clone()).expect("reads");
    assert_eq!(serde_json::to_value(&looks).unwrap(), stored);
    let closing = looks.look(LookKind::Closing, 0.9).expect("a look").clone();
    same_decision(&closing, CLOSING);
    assert!(closing.guard_rejected());
}

/// Bake looks as the release at 4c8fa47 stored them (looks at allowances 0.1, 0.3 and NaN)
/// read back after steps 1 → 2 → 3 and write out as read, and their closing look spends and
/// decides what it did there.
#[test]
fn bake_looks_stored_by_4c8fa47_carry_over_and_spend_alike() {
    const STORED: &str = r#"{"alpha":0.000375,"margin":1.5,"max_events_per_minute":30.0,"reference":{"minutes":20,"requests":84139.0,"bad":96.0},"new_requests":18119.0,"new_bad":17,"minutes":3,"minutes_at_last_look":3,"spent":0.3,"latest":{"number":3,"closing":false,"new_bad":17,"new_requests":18119.0,"reference":{"minutes":20,"requests":84139.0,"bad":96.0},"margin":1.5,"null_mean":31.009828973484353,"p_value":0.9945544715435504,"alpha":0.0,"rejected":false,"skipped":null,"scaled":false,"divisor":null},"burst_scaling":null,"reference_minutes":0}"#;
    const CLOSING: &str = r#"{"number":4,"closing":true,"new_bad":44,"new_requests":24080.0,"reference":{"minutes":20,"requests":84139.0,"bad":96.0},"margin":1.5,"null_mean":41.21180427625715,"p_value":0.390227264772548,"alpha":0.0002625,"rejected":false,"skipped":null,"scaled":false,"divisor":null}"#;
    let mut stored: Value = serde_json::from_str(STORED).unwrap();
    v1::bake_look(&mut stored["latest"]);
    v2::bake_looks_of_the_cumulative_form(&mut stored);
    let mut looks: BakeLooks = serde_json::from_value(stored.clone()).expect("reads");
    assert_eq!(serde_json::to_value(&looks).unwrap(), stored);
    looks.observe(5961.0, 27.0);
    let closing = looks.look(1.0).expect("a look").clone();
    same_decision(&closing, CLOSING);
    assert_eq!(closing.kind, LookKind::Bake { closing: true });
}

/// A look of this release decides as version 1's `old` did: same counts, p-value, level
/// and outcome.
fn same_decision(look: &LookOutcome, old: &str) {
    let old: Value = serde_json::from_str(old).unwrap();
    let new = serde_json::to_value(look).unwrap();
    for key in [
        "new_bad",
        "null_mean",
        "p_value",
        "alpha",
        "rejected",
        "skipped",
    ] {
        assert_eq!(new[key], old[key], "{key}");
    }
}

//! The step from version 0 to 1: the fields added before schema versions existed. A rollout
//! stored without them was read with `serde(default)`; this step writes in exactly the values
//! those defaults gave, so that version 1's types need none. Also applied to audit-log rows,
//! which carry no version and hold the same assessments.

use serde_json::{json, Value};

/// `serde(default)` of a `[f64; SPANS]`: `Burstiness::spans` had 19 spans (2..=20 minutes).
const SPANS: usize = 19;

/// Version 0 → 1 of a stored rollout (a no-op on what the release at 4c8fa47 wrote, which
/// had every field).
pub(super) fn fill_fields_added_before_versions(stored: &mut Value) {
    fill(stored, &[("last_now", json!(0))]);
    if let Some(state) = stored.get_mut("state") {
        fill_state(state);
    }
}

/// The same fields in one audit-log row (an `AuditEvent`).
pub(super) fn fill_event_fields_added_before_versions(event: &mut Value) {
    each(event, &["phase"], fill_phase);
    each(event, &["assessment"], fill_assessment);
    each(event, &["facts"], fill_tick_facts);
}

fn fill_state(state: &mut Value) {
    each(state, &["phase"], fill_phase);
    if let Some(pending) = state.pointer_mut("/deployment/pending") {
        fill_pending_write(pending);
    }
    each(state, &["signals"], fill_signals);
    each(state, &["last_assessment"], fill_assessment);
}

/// `Phase::Drifted` and `Phase::Superseded` keep the live deployment they saw.
fn fill_phase(phase: &mut Value) {
    each(phase, &["observed"], |observed| {
        fill(
            observed,
            &[
                ("deployment_id", Value::Null),
                ("author_email", Value::Null),
                ("message", Value::Null),
                ("triggered_by", Value::Null),
                ("created_on", Value::Null),
            ],
        );
    });
}

fn fill_pending_write(pending: &mut Value) {
    fill(
        pending,
        &[("force", json!(false)), ("changed_secrets", Value::Null)],
    );
    each(pending, &["last_failure"], |failure| {
        fill(failure, &[("credentials", json!(false))]);
    });
}

fn fill_signals(signals: &mut Value) {
    fill(
        signals,
        &[
            ("bake_horizon", json!(0)),
            ("errors_bake_looks", bake_looks()),
            ("slow_bake_looks", bake_looks()),
            ("split_minutes", json!(0)),
            ("errors_looks", scheduled_looks()),
            ("slow_looks", scheduled_looks()),
            ("very_slow_looks", scheduled_looks()),
            ("approach_looks", scheduled_looks()),
            ("approach_bursts", Value::Null),
            ("errors_bursts", Value::Null),
            ("slow_bursts", Value::Null),
            ("last_step_look", Value::Null),
            ("errors_history", history_looks()),
            ("history_read", json!(false)),
            ("history_failures", json!(0)),
        ],
    );
    let looks = [
        "errors_looks",
        "slow_looks",
        "very_slow_looks",
        "approach_looks",
    ];
    each(signals, &looks, fill_scheduled_looks);
    each(signals, &["errors_history"], fill_history_looks);
    each(signals, &["errors_bake", "slow_bake"], fill_bake_test);
    each(
        signals,
        &["errors_bake_looks", "slow_bake_looks"],
        fill_bake_looks,
    );
    let bursts = ["approach_bursts", "errors_bursts", "slow_bursts"];
    each(signals, &bursts, |scale| {
        each(scale, &["bursts"], fill_burstiness)
    });
    if let Some(Value::Array(minutes)) = signals.get_mut("recent") {
        for minute in minutes {
            fill(minute, &[("sample_interval", json!(1.0))]);
            each(minute, &["new", "old"], fill_version_counts);
        }
    }
    each(signals, &["step_totals"], fill_pair_totals);
}

fn fill_assessment(assessment: &mut Value) {
    fill(
        assessment,
        &[
            ("errors_look", Value::Null),
            ("latency_look", Value::Null),
            ("very_slow_look", Value::Null),
            ("approach_look", Value::Null),
            ("errors_history", Value::Null),
            ("errors_bake_look", Value::Null),
            ("latency_bake_look", Value::Null),
        ],
    );
    let looks = [
        "errors_look",
        "latency_look",
        "very_slow_look",
        "approach_look",
    ];
    each(assessment, &looks, fill_look);
    each(
        assessment,
        &["errors_bake_look", "latency_bake_look"],
        fill_bake_look,
    );
    each(assessment, &["window"], fill_pair_totals);
}

fn fill_tick_facts(facts: &mut Value) {
    fill(
        facts,
        &[("history_failed", Value::Null), ("p95_ms", Value::Null)],
    );
    each(facts, &["counted"], fill_pair_totals);
}

/// `ScheduledLooks` (the split's looks, and the history looks' guard).
fn fill_scheduled_looks(looks: &mut Value) {
    fill(
        looks,
        &[
            ("exact_allowance", json!(0.0)),
            ("z_minutes", json!(0)),
            ("z_sum", json!(0.0)),
            ("z_sum_sq", json!(0.0)),
            ("z_events", json!(0.0)),
            ("z_requests", json!(0.0)),
            ("scaled", json!(false)),
            ("new_requests", json!(0.0)),
            ("old_requests", json!(0.0)),
            ("raw_requests", json!(0.0)),
        ],
    );
    each(looks, &["latest"], fill_look);
}

/// `Look`: one scheduled look's outcome.
fn fill_look(look: &mut Value) {
    fill(
        look,
        &[
            ("robust", Value::Null),
            ("scaled", json!(false)),
            ("divisor", Value::Null),
        ],
    );
}

fn fill_history_looks(looks: &mut Value) {
    fill(
        looks,
        &[
            ("old_requests", json!(0.0)),
            ("old_bad", json!(0)),
            ("minutes", json!(0)),
        ],
    );
    each(looks, &["guard"], fill_scheduled_looks);
}

/// `BakeTest`: the bake's e-process.
fn fill_bake_test(test: &mut Value) {
    fill(
        test,
        &[
            ("bursty", json!([])),
            ("log_e", json!(0.0)),
            ("burst_divisor", Value::Null),
            ("burst_horizon", Value::Null),
            ("minutes", json!(0)),
        ],
    );
}

/// `BakeLooks`. Its legacy `scaling` key is read by the type itself (`per_minute_scaling`).
fn fill_bake_looks(looks: &mut Value) {
    fill(
        looks,
        &[
            ("burst_scaling", Value::Null),
            ("reference_minutes", json!(0)),
        ],
    );
    each(looks, &["latest"], fill_bake_look);
    each(looks, &["burst_scaling"], |scaling| {
        each(scaling, &["bursts"], fill_burstiness)
    });
}

fn fill_bake_look(look: &mut Value) {
    fill(look, &[("scaled", json!(false)), ("divisor", Value::Null)]);
}

fn fill_burstiness(bursts: &mut Value) {
    fill(
        bursts,
        &[
            ("spans", json!(vec![0.0; SPANS])),
            ("bursty_blocks", json!(false)),
        ],
    );
}

fn fill_pair_totals(totals: &mut Value) {
    each(totals, &["new", "old"], fill_version_counts);
}

fn fill_version_counts(counts: &mut Value) {
    fill(
        counts,
        &[("very_slow", json!(0.0)), ("approaching", json!(0.0))],
    );
}

/// `ScheduledLooks::default()` as version 0 knew it.
fn scheduled_looks() -> Value {
    json!({
        "alpha": 0.0, "rho0": 0.0, "max_events_per_minute": 0.0, "minutes": 0, "events": 0,
        "minutes_at_last_look": 0, "groups": [], "boundaries": [], "latest": null,
        "exact_allowance": 0.0, "z_minutes": 0, "z_sum": 0.0, "z_sum_sq": 0.0, "z_events": 0.0,
        "z_requests": 0.0, "scaled": false, "new_requests": 0.0, "old_requests": 0.0,
        "raw_requests": 0.0
    })
}

/// `BakeLooks::default()` as version 0 knew it.
fn bake_looks() -> Value {
    json!({
        "alpha": 0.0, "margin": 0.0, "max_events_per_minute": 0.0, "reference": null,
        "new_requests": 0.0, "new_bad": 0, "minutes": 0, "minutes_at_last_look": 0,
        "spent": 0.0, "latest": null, "burst_scaling": null, "reference_minutes": 0
    })
}

/// `HistoryLooks::default()` as version 0 knew it.
fn history_looks() -> Value {
    json!({
        "alpha": 0.0, "margin": 0.0, "max_events_per_minute": 0.0, "baseline": null,
        "guard": scheduled_looks(), "new_requests": 0.0, "new_bad": 0, "old_requests": 0.0,
        "old_bad": 0, "minutes": 0, "spent": 0.0, "latest": null
    })
}

/// Adds each `(key, value)` that `object` lacks (nothing when it is not an object: a `None`).
fn fill(object: &mut Value, fields: &[(&str, Value)]) {
    let Value::Object(map) = object else { return };
    for (key, value) in fields {
        if !map.contains_key(*key) {
            map.insert((*key).to_string(), value.clone());
        }
    }
}

/// Applies `fill_one` to each of `keys` that `object` holds as an object.
fn each(object: &mut Value, keys: &[&str], mut fill_one: impl FnMut(&mut Value)) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    for key in keys {
        if let Some(inner @ Value::Object(_)) = map.get_mut(*key) {
            fill_one(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_filled_field_is_never_overwritten() {
        let mut stored = json!({"last_now": 5, "state": {"signals": {"bake_horizon": 40}}});
        fill_fields_added_before_versions(&mut stored);
        assert_eq!(stored["last_now"], 5);
        assert_eq!(stored["state"]["signals"]["bake_horizon"], 40);
        assert_eq!(stored["state"]["signals"]["split_minutes"], 0);
    }

    #[test]
    fn absent_options_stay_absent() {
        let mut event = json!({"phase": {"phase": "baking"}, "assessment": null});
        fill_event_fields_added_before_versions(&mut event);
        assert_eq!(
            event,
            json!({"phase": {"phase": "baking"}, "assessment": null})
        );
    }
}

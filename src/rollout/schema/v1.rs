//! The step from version 1 to 2: one kind of look. Version 1 stored three outcome types
//! (a scheduled `Look`, a `HistoryLook`, a `BakeLook`), one evidence field per exact test
//! and an assessment with one field per look; version 2 stores one `LookOutcome` (what the
//! new version was compared with under `against`), and the exact tests and the assessment's
//! looks keyed by their budget row. One name per concept: the assessment's `latency_test`
//! is `slow_test`, and the policy's `alpha_split.latency_split` and `latency_bake` are
//! `slow_split` and `slow_bake` (a POLICY value may still spell them the old way: serde
//! aliases). Counts gain the Analytics Engine rows behind them, which version 1 did not
//! keep: its minutes have none (`stored_rows_unknown`), and the ceilings' floors count rows
//! (`error_ceiling_min_rows`, `latency_ceiling_min_rows`). The step carries every rollout over. Also applied to audit-log rows,
//! which carry no version: a row's assessment without `looks` is version 1's.

use serde_json::{json, Map, Value};

/// Version 1 → 2 of a stored rollout.
pub(super) fn looks_become_one_kind(stored: &mut Value) {
    let Some(state) = stored.get_mut("state") else {
        return;
    };
    if let Some(Value::Object(shares)) = state.pointer_mut("/policy/alpha_split") {
        rename(
            shares,
            &[
                ("latency_split", "slow_split"),
                ("latency_bake", "slow_bake"),
            ],
        );
    }
    if let Some(Value::Object(policy)) = state.get_mut("policy") {
        // The ceilings' floors count stored rows, no longer sample-weighted requests.
        rename(
            policy,
            &[
                ("error_ceiling_min_requests", "error_ceiling_min_rows"),
                ("latency_min_requests", "latency_ceiling_min_rows"),
            ],
        );
    }
    if let Some(signals) = state.get_mut("signals") {
        stored_rows_unknown(signals);
        for key in [
            "errors_looks",
            "slow_looks",
            "very_slow_looks",
            "approach_looks",
        ] {
            latest(signals, key, scheduled_look);
        }
        if let Some(history) = signals.get_mut("errors_history") {
            latest(history, "guard", scheduled_look);
            let number = history
                .pointer("/guard/latest/number")
                .cloned()
                .unwrap_or(json!(0));
            if let Some(look) = history.get_mut("latest").filter(|l| l.is_object()) {
                history_look(look, number);
            }
        }
        for key in ["errors_bake_looks", "slow_bake_looks"] {
            latest(signals, key, bake_look);
        }
        exact_tests_by_row(signals);
    }
    if let Some(assessment) = state.get_mut("last_assessment") {
        assessment_looks_by_row(assessment);
    }
}

/// Renames each `(old, new)` key that `fields` holds.
fn rename(fields: &mut Map<String, Value>, names: &[(&str, &str)]) {
    for (old, new) in names {
        if let Some(value) = fields.remove(*old) {
            fields.insert((*new).to_string(), value);
        }
    }
}

/// Version 1 counted no stored Analytics Engine rows: its minutes get none (the ceilings,
/// which test rows, find too few until the trailing window holds minutes counted by this
/// release), and no burstiness of rows from the window before the rollout (the bake's
/// ceilings then test unscaled rows).
fn stored_rows_unknown(signals: &mut Value) {
    if let Some(fields) = signals.as_object_mut() {
        fields
            .entry("ceiling_bursts")
            .or_insert(json!({"errors": null, "slow": null}));
    }
    if let Some(Value::Array(minutes)) = signals.get_mut("recent") {
        minutes.iter_mut().for_each(no_rows_in_pair);
    }
    if let Some(totals) = signals.get_mut("step_totals") {
        no_rows_in_pair(totals);
    }
}

/// `stored` rows of none for both versions of a minute or a total.
fn no_rows_in_pair(pair: &mut Value) {
    for side in ["new", "old"] {
        if let Some(Value::Object(counts)) = pair.get_mut(side) {
            counts
                .entry("stored")
                .or_insert(json!({"rows": 0.0, "errors": 0.0, "slow": 0.0}));
        }
    }
}

/// Version 1's evidence fields, one per exact test, with the budget row and kind each
/// becomes.
const EXACT_TESTS: [(&str, &str, &str); 7] = [
    ("errors_looks", "errors_split_looks", "scheduled"),
    ("errors_history", "errors_split_history", "history"),
    ("slow_looks", "slow_split_looks", "scheduled"),
    ("very_slow_looks", "very_slow_split_looks", "scheduled"),
    ("approach_looks", "approaching_split_looks", "scheduled"),
    ("errors_bake_looks", "errors_bake_looks", "bake"),
    ("slow_bake_looks", "slow_bake_looks", "bake"),
];

fn exact_tests_by_row(signals: &mut Value) {
    let Some(fields) = signals.as_object_mut() else {
        return;
    };
    let mut looks = Map::new();
    for (field, row, kind) in EXACT_TESTS {
        if let Some(test) = fields.remove(field) {
            looks.insert(row.to_string(), json!({ kind: test }));
        }
    }
    fields.insert("looks".into(), Value::Object(looks));
}

/// The same step for one audit-log row, when its assessment is version 1's.
pub(super) fn event_looks_become_one_kind(event: &mut Value) {
    if let Some(assessment) = event.get_mut("assessment") {
        if assessment.is_object() && assessment.get("looks").is_none() {
            assessment_looks_by_row(assessment);
        }
    }
    if let Some(counted) = event.pointer_mut("/facts/counted") {
        no_rows_in_pair(counted);
    }
}

/// Applies `convert` to `object[key].latest`, when it holds a look.
fn latest(object: &mut Value, key: &str, convert: Convert) {
    if let Some(look) = object
        .get_mut(key)
        .and_then(|looks| looks.get_mut("latest"))
        .filter(|look| look.is_object())
    {
        convert(look);
    }
}

/// Rewrites one version 1 look in place.
type Convert = fn(&mut Value);

/// Version 1's assessment fields, one per look, and the budget row each becomes.
const ASSESSMENT_LOOKS: [(&str, &str, Convert); 7] = [
    ("errors_look", "errors_split_looks", scheduled_look),
    (
        "errors_history",
        "errors_split_history",
        history_look_unnumbered,
    ),
    ("errors_bake_look", "errors_bake_looks", bake_look),
    ("latency_look", "slow_split_looks", scheduled_look),
    ("very_slow_look", "very_slow_split_looks", scheduled_look),
    ("approach_look", "approaching_split_looks", scheduled_look),
    ("latency_bake_look", "slow_bake_looks", bake_look),
];

/// Version 1's assessment: its looks keyed by budget row, and `latency_test` (the
/// slow-request test's numbers) named `slow_test`.
fn assessment_looks_by_row(assessment: &mut Value) {
    let Some(fields) = assessment.as_object_mut() else {
        return;
    };
    if let Some(test) = fields.remove("latency_test") {
        fields.insert("slow_test".into(), test);
    }
    if let Some(window) = fields.get_mut("window") {
        no_rows_in_pair(window);
    }
    let mut looks = Map::new();
    for (field, row, convert) in ASSESSMENT_LOOKS {
        if let Some(mut look) = fields.remove(field).filter(Value::is_object) {
            convert(&mut look);
            looks.insert(row.to_string(), look);
        }
    }
    fields.insert("looks".into(), Value::Object(looks));
}

/// Moves `keys` of `look` into a new `against` object tagged `tag`.
fn against(look: &mut Value, tag: &str, keys: &[&str]) {
    let Some(fields) = look.as_object_mut() else {
        return;
    };
    let mut against = Map::new();
    against.insert("against".into(), json!(tag));
    for key in keys {
        against.insert(
            (*key).to_string(),
            fields.remove(*key).unwrap_or(Value::Null),
        );
    }
    fields.insert("against".into(), Value::Object(against));
}

/// A scheduled `Look`: its counts of both versions, null and boundary move under `against`.
pub(super) fn scheduled_look(look: &mut Value) {
    against(
        look,
        "old_version",
        &["events", "rho0", "critical", "robust"],
    );
}

/// A `HistoryLook`, numbered as its guard's latest look (the guard takes every look the
/// history looks take).
pub(super) fn history_look(look: &mut Value, number: Value) {
    against(
        look,
        "baseline",
        &[
            "new_requests",
            "baseline",
            "margin",
            "guard_alpha",
            "guard_rejected",
        ],
    );
    if let Some(fields) = look.as_object_mut() {
        fields.insert("number".into(), number);
        fields.insert("scaled".into(), json!(false));
        fields.insert("divisor".into(), Value::Null);
    }
}

/// A `HistoryLook` kept in an assessment, where its guard is not at hand: number 0.
fn history_look_unnumbered(look: &mut Value) {
    history_look(look, json!(0));
}

/// A `BakeLook`: `closing` becomes the look's kind, its reference moves under `against`.
pub(super) fn bake_look(look: &mut Value) {
    let closing = look.get("closing").cloned().unwrap_or(json!(false));
    against(look, "reference", &["new_requests", "reference", "margin"]);
    if let Some(fields) = look.as_object_mut() {
        fields.remove("closing");
        fields.insert("kind".into(), json!({"at": "bake", "closing": closing}));
    }
}

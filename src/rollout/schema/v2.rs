//! The step from version 2 to 3: the onset looks. Version 3's policy has `onset_share`, the
//! share of the 5xx split looks' α the onset looks spend. A rollout stored by version 2
//! keeps the budget it started with: `onset_share` 0, so its scheduled looks keep all the α
//! they were spending, no onset looks are funded, and its rows still sum to its `alpha`. The
//! step carries every rollout over. The split tests (`RatioTest`) store their alternatives
//! and evidence as arrays, not objects, which were a third of the stored state. Bake looks
//! gained the fields of their onset form
//! (`onset`, `recent`, `onset_looks`), which version 2's read as the other form. Audit-log
//! rows hold no policy and no looks' state, and need no step.

use serde_json::{json, Value};

/// Version 2 → 3 of a stored rollout.
pub(super) fn onset_looks_and_rows_as_arrays(stored: &mut Value) {
    if let Some(Value::Object(policy)) = stored.pointer_mut("/state/policy") {
        policy.entry("onset_share").or_insert(json!(0.0));
    }
    // The split tests store their alternatives and evidence as arrays.
    for test in ["errors", "slow"] {
        if let Some(test) = stored.pointer_mut(&format!("/state/signals/{test}")) {
            split_test_rows_as_arrays(test);
        }
    }
    // Bake looks gained the onset form's fields; version 2's are all the other form.
    if let Some(Value::Object(looks)) = stored.pointer_mut("/state/signals/looks") {
        for exact in looks.values_mut() {
            if let Some(bake) = exact.get_mut("bake") {
                bake_looks_of_the_cumulative_form(bake);
            }
        }
    }
}

/// A version 2 `RatioTest`'s alternatives and evidence, objects there, as version 3's arrays
/// (`[ratio, log_weight, log_lr, new_a, old_b, new_a2, old_b2]`, `[share, new_bad, old_bad]`).
fn split_test_rows_as_arrays(test: &mut Value) {
    let fields: [(&str, &[&str]); 2] = [
        (
            "alternatives",
            &[
                "ratio",
                "log_weight",
                "log_lr",
                "new_a",
                "old_b",
                "new_a2",
                "old_b2",
            ],
        ),
        ("evidence", &["share", "new_bad", "old_bad"]),
    ];
    for (key, names) in fields {
        if let Some(Value::Array(rows)) = test.get_mut(key) {
            for row in rows.iter_mut() {
                if let Value::Object(named) = row {
                    let values = names
                        .iter()
                        .map(|n| named.get(*n).cloned().unwrap_or(Value::Null));
                    *row = Value::Array(values.collect());
                }
            }
        }
    }
}

/// Version 2's stored `BakeLooks` as version 3 reads it: not onset looks.
pub(super) fn bake_looks_of_the_cumulative_form(bake: &mut Value) {
    if let Value::Object(bake) = bake {
        bake.entry("onset").or_insert(json!(false));
        bake.entry("recent").or_insert(json!([]));
        bake.entry("onset_looks").or_insert(json!(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_bake_looks_read_as_the_scheduled_form() {
        let mut stored = json!({"state": {"policy": {}, "signals": {"looks": {
            "errors_bake_looks": {"bake": {"alpha": 0.0003}},
            "errors_split_looks": {"scheduled": {"alpha": 0.0036}}
        }}}});
        onset_looks_and_rows_as_arrays(&mut stored);
        let looks = &stored["state"]["signals"]["looks"];
        assert_eq!(looks["errors_bake_looks"]["bake"]["onset"], json!(false));
        assert_eq!(looks["errors_bake_looks"]["bake"]["recent"], json!([]));
        assert_eq!(looks["errors_split_looks"]["scheduled"].get("onset"), None);
    }

    #[test]
    fn version_2_split_tests_store_their_rows_as_arrays() {
        let mut stored = json!({"state": {"signals": {"errors": {
            "alternatives": [{"ratio": 1.65, "log_weight": -3.8, "log_lr": -3.5, "new_a": 8.0,
                              "old_b": -12.0, "new_a2": 5.0, "old_b2": 4.0}],
            "evidence": [{"share": 0.1, "new_bad": 5.0, "old_bad": 61.0}]
        }}}});
        onset_looks_and_rows_as_arrays(&mut stored);
        let errors = &stored["state"]["signals"]["errors"];
        assert_eq!(
            errors["alternatives"],
            json!([[1.65, -3.8, -3.5, 8.0, -12.0, 5.0, 4.0]])
        );
        assert_eq!(errors["evidence"], json!([[0.1, 5.0, 61.0]]));
    }

    #[test]
    fn a_version_2_rollout_keeps_the_budget_it_started_with() {
        let mut stored = json!({"schema": 2, "state": {"policy": {"history_share": 0.25}}});
        onset_looks_and_rows_as_arrays(&mut stored);
        assert_eq!(stored["state"]["policy"]["onset_share"], json!(0.0));
        assert_eq!(stored["state"]["policy"]["history_share"], json!(0.25));
    }
}

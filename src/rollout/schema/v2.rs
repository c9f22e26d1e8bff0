//! The step from version 2 to 3: the onset looks. Version 3's policy has `onset_share`, the
//! share of the 5xx split looks' α the onset looks spend. A rollout stored by version 2
//! keeps the budget it started with: `onset_share` 0, so its scheduled looks keep all the α
//! they were spending, no onset looks are funded, and its rows still sum to its `alpha`. The
//! step carries every rollout over. Bake looks gained the fields of their onset form
//! (`onset`, `recent`, `onset_looks`), which version 2's read as the other form. Audit-log
//! rows hold no policy and no looks' state, and need no step.

use serde_json::{json, Value};

/// Version 2 → 3 of a stored rollout.
pub(super) fn onset_looks_unfunded(stored: &mut Value) {
    if let Some(Value::Object(policy)) = stored.pointer_mut("/state/policy") {
        policy.entry("onset_share").or_insert(json!(0.0));
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
        onset_looks_unfunded(&mut stored);
        let looks = &stored["state"]["signals"]["looks"];
        assert_eq!(looks["errors_bake_looks"]["bake"]["onset"], json!(false));
        assert_eq!(looks["errors_bake_looks"]["bake"]["recent"], json!([]));
        assert_eq!(looks["errors_split_looks"]["scheduled"].get("onset"), None);
    }

    #[test]
    fn a_version_2_rollout_keeps_the_budget_it_started_with() {
        let mut stored = json!({"schema": 2, "state": {"policy": {"history_share": 0.25}}});
        onset_looks_unfunded(&mut stored);
        assert_eq!(stored["state"]["policy"]["onset_share"], json!(0.0));
        assert_eq!(stored["state"]["policy"]["history_share"], json!(0.25));
    }
}

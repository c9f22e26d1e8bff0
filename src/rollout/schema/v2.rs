//! The step from version 2 to 3: the onset looks. Version 3's policy has `onset_share`, the
//! share of the 5xx split looks' α the onset looks spend. A rollout stored by version 2
//! keeps the budget it started with: `onset_share` 0, so its scheduled looks keep all the α
//! they were spending, no onset looks are funded, and its rows still sum to its `alpha`. The
//! step carries every rollout over. Audit-log rows hold no policy and need no step.

use serde_json::{json, Value};

/// Version 2 → 3 of a stored rollout.
pub(super) fn onset_looks_unfunded(stored: &mut Value) {
    if let Some(Value::Object(policy)) = stored.pointer_mut("/state/policy") {
        policy.entry("onset_share").or_insert(json!(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_rollout_keeps_the_budget_it_started_with() {
        let mut stored = json!({"schema": 2, "state": {"policy": {"history_share": 0.25}}});
        onset_looks_unfunded(&mut stored);
        assert_eq!(stored["state"]["policy"]["onset_share"], json!(0.0));
        assert_eq!(stored["state"]["policy"]["history_share"], json!(0.25));
    }
}

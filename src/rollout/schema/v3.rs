//! The step from version 3 to 4: the looks fold what they have looked at. Version 4's exact
//! looks (`ScheduledLooks`, also the history looks' guard) keep, after each look, the null
//! distribution of everything counted so far (`folded`) and drop those minutes' groups; the
//! split and bake e-processes keep their upper bound (`bound`). A version 3 rollout carries
//! over as it is: without `folded` its next look folds the stored groups from the first
//! segment (the boundaries are the same to the bit), and without `bound` its next summary
//! searches from scratch. The version changes because the other direction does not carry
//! over: a version 3 gate reading version 4's looks would compute boundaries from the
//! unfolded minutes alone, so it must treat them as a later gate's and pause. Audit-log rows
//! hold no looks' state and need no step.

use serde_json::Value;

/// Version 3 → 4 of a stored rollout: nothing to rewrite.
pub(super) fn looks_fold_what_they_looked_at(_stored: &mut Value) {}

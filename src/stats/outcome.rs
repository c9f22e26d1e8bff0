//! One kind of look: the outcome every exact look records (scheduled, history and bake looks
//! alike), why a look tested nothing, and the `ExactLooks` trait the three kinds share. Slack,
//! the audit log and the status page tell a look in words through `Display` (policy::words).

use super::bake_looks::Reference;
use super::history::Baseline;
use crate::json::tagged::internally_tagged;
use serde::{Deserialize, Serialize};

internally_tagged! {
    tag = "at";
    /// Where a look is taken.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum LookKind {
        /// A tick within split step `step` (0-based) before the end of its dwell, or while it
        /// holds after it: a small share of the budget, for large regressions.
        Interim { step: usize },
        /// The end of split step `step`'s dwell: the step's share of the budget.
        StepEnd { step: usize },
        /// Every whole split minute counted: the rest of the split looks' budget.
        Closing,
        /// A tick of the bake at 100%; `closing` once the bake's dwell has ended (all that is
        /// left of the bake looks' budget).
        Bake { closing: bool },
    }
}

internally_tagged! {
    tag = "against";
    /// What a look compared the new version with.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Against {
        /// The old version over the same minutes (scheduled looks): of `events` bad events of
        /// both versions, the new version's share, against "ratio ≤ `rho0`"; the look rejects
        /// at `critical` (`None`: skipped).
        OldVersion {
            events: u64,
            rho0: f64,
            critical: Option<u64>,
            /// The closing look's overdispersion-robust test, when the exact one was skipped
            /// for too many events a minute.
            robust: Option<RobustLook>,
        },
        /// The old version over the same newest `minutes` minutes (onset looks): of `events` bad
        /// events of both versions in them, the new version's share, against "ratio ≤ `rho0`".
        Recent {
            minutes: u32,
            events: u64,
            rho0: f64,
        },
        /// The old version's own rate before the rollout (history looks), against "new rate ≤
        /// `margin` × the baseline's", rejecting only where the concurrent guard at
        /// `guard_alpha` rejected "new ≤ old" too.
        Baseline {
            new_requests: f64,
            baseline: Option<Baseline>,
            margin: f64,
            guard_alpha: f64,
            guard_rejected: bool,
        },
        /// The old version's rate over the split (bake looks), against "new rate ≤ `margin` ×
        /// the reference's".
        Reference {
            new_requests: f64,
            reference: Option<Reference>,
            margin: f64,
        },
        /// The same over the newest `minutes` bake minutes alone (the bake's onset looks).
        RecentReference {
            minutes: u32,
            new_requests: f64,
            reference: Option<Reference>,
            margin: f64,
        },
    }
}

/// The robust closing look: a one-sided Student t test that the mean per-minute excess of
/// new-version bad events over "ratio ≤ rho0" is ≤ 0, its variance estimated from the
/// minutes themselves, so per-version burstiness widens it instead of fooling it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustLook {
    /// Minutes used.
    pub minutes: u32,
    /// Mean and standard deviation of the per-minute excess, in Poisson standard deviations
    /// at the pooled rate (≈ 0 and 1 for a release no worse and Poisson counts; the standard
    /// deviation grows with burstiness).
    pub mean_z: f64,
    pub sd_z: f64,
    /// t = mean / (sd / √minutes), with `minutes − 1` degrees of freedom.
    pub t: f64,
    /// One-sided p-value of `t`.
    pub p_value: f64,
    /// The level it was tested at: what the exact looks left of the budget.
    pub alpha: f64,
    /// `p_value ≤ alpha`.
    pub rejected: bool,
}

internally_tagged! {
    tag = "why";
    /// Why a look tested nothing.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Skipped {
        /// No bad events to test yet (from either version for a scheduled look, from the new
        /// version for a history or bake look).
        NoEvents,
        /// The baseline window was not read (yet), or failed, or had no requests.
        NoBaseline,
        /// The split left no reference (the old version served nothing).
        NoReference,
        /// So many bad events a minute (or in all) that per-version burstiness, not Poisson
        /// noise, would dominate, or the exact distribution would cost too much.
        TooManyEvents { per_minute: f64, limit: f64 },
        /// The old version's own rate during the split is above the history looks' margin ×
        /// the baseline's (p-value ≤ `DRIFT_CHECK_ALPHA`): the baseline no longer describes it.
        Drifted {
            old_bad: u64,
            old_requests: f64,
            p_value: f64,
        },
    }
}

/// One look's outcome, with the numbers behind it, whatever kind of look took it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LookOutcome {
    /// Where in the schedule.
    pub kind: LookKind,
    /// 1-based count of looks taken so far.
    pub number: u32,
    /// The new version's bad events in what was looked at.
    pub new_bad: u64,
    /// New-version bad events expected if the null held exactly.
    pub null_mean: f64,
    /// Exact p-value (for scheduled looks: of a rejection by an earlier look or of this look
    /// seeing at least `new_bad`); 1 when skipped.
    pub p_value: f64,
    /// α this look may spend (scheduled looks: with the earlier ones together).
    pub alpha: f64,
    /// The look rejected its null.
    pub rejected: bool,
    /// Why nothing was tested, if nothing was.
    pub skipped: Option<Skipped>,
    /// The counts were scaled down for the old version's burstiness (`BurstScale`).
    pub scaled: bool,
    /// For scaled counts, what they were divided by, so the raw counts can be told.
    pub divisor: Option<f64>,
    /// What the new version was compared with.
    pub against: Against,
}

impl LookOutcome {
    /// The closing look of its stage.
    pub fn closing(&self) -> bool {
        matches!(
            self.kind,
            LookKind::Closing | LookKind::Bake { closing: true }
        )
    }

    /// A scheduled look's boundary: it rejects at this many new-version events (`None`:
    /// skipped, or not a scheduled look).
    pub fn critical(&self) -> Option<u64> {
        match self.against {
            Against::OldVersion { critical, .. } => critical,
            _ => None,
        }
    }

    /// A scheduled look's bad events of both versions.
    pub fn events(&self) -> Option<u64> {
        match self.against {
            Against::OldVersion { events, .. } | Against::Recent { events, .. } => Some(events),
            _ => None,
        }
    }

    /// A scheduled closing look's robust test, if one was taken.
    pub fn robust(&self) -> Option<&RobustLook> {
        match &self.against {
            Against::OldVersion { robust, .. } => robust.as_ref(),
            _ => None,
        }
    }

    /// The new version's requests behind a history or bake look.
    pub fn new_requests(&self) -> Option<f64> {
        match self.against {
            Against::Baseline { new_requests, .. }
            | Against::Reference { new_requests, .. }
            | Against::RecentReference { new_requests, .. } => Some(new_requests),
            Against::OldVersion { .. } | Against::Recent { .. } => None,
        }
    }

    /// A history look's concurrent guard rejected "new ≤ old".
    pub fn guard_rejected(&self) -> bool {
        matches!(
            self.against,
            Against::Baseline {
                guard_rejected: true,
                ..
            }
        )
    }

    /// The p-value and level that decided: the robust test's where it rejected in place of
    /// the exact one, else this look's.
    pub fn deciding(&self) -> (f64, f64) {
        match &self.against {
            Against::OldVersion {
                robust: Some(r), ..
            } if r.rejected => (r.p_value, r.alpha),
            _ => (self.p_value, self.alpha),
        }
    }
}

/// What the three kinds of exact looks share: α, the latest look, and the look that
/// rejected, if one did (no other look is taken after it).
pub trait ExactLooks {
    /// α of all the looks together (0: none).
    fn alpha(&self) -> f64;
    /// The latest look taken.
    fn latest(&self) -> Option<&LookOutcome>;
    /// The look that rejected, if one did.
    fn rejected(&self) -> Option<&LookOutcome> {
        self.latest().filter(|look| look.rejected)
    }
}

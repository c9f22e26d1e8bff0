//! Anytime-valid statistics for the gate's count signals (5xx, slow requests, failed batches):
//! a mixture-likelihood-ratio e-process on "which version did each bad event come from"
//! during a split, and a one-sample version against a reference rate for the bake at 100%.
//! API SKELETON: bodies are being written (issue 3); signatures are the contract.

use serde::{Deserialize, Serialize};

/// One minute's sample-weighted counts for the two versions serving side by side.
/// Counts are `SUM(_sample_interval)` values, so they may be non-integer after scaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairCounts {
    pub new_total: f64,
    pub new_bad: f64,
    pub old_total: f64,
    pub old_bad: f64,
}

/// Parameters of one sequential count test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioTestConfig {
    /// Bound on the probability that this test *ever* flags a version whose true rate
    /// ratio (new/old) is ≤ `rho0`, however often it is looked at.
    pub alpha: f64,
    /// Practical-significance floor: the null is ratio ≤ `rho0` (1.0 = "any increase").
    pub rho0: f64,
    /// Promotion evidence: the anytime-valid upper bound on the ratio must fall below this...
    pub rho_tolerance: f64,
    /// ...or the exposure rule must hold: a regression of this ratio would have been
    /// detected with probability ≥ `power` given the traffic the new version has served.
    pub rho_detect: f64,
    /// See `rho_detect`, e.g. 0.9.
    pub power: f64,
}

/// Cumulative state of a two-version test. Serializable (it lives in Durable Object
/// storage) and bounded in size whatever the number of minutes observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioTest {
    pub config: RatioTestConfig,
}

/// What a test says now, with the numbers behind it (for Slack, the audit log, the page).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioSummary {
    /// Cumulative counts over all observed minutes (for the bake: `old_*` is the reference).
    pub new_total: f64,
    pub new_bad: f64,
    pub old_total: f64,
    pub old_bad: f64,
    /// The e-value M_T against "ratio ≤ rho0". `regression` is `e_value >= 1/alpha`.
    pub e_value: f64,
    /// `1/alpha`.
    pub threshold: f64,
    /// True once the test has rejected the null; stays true (the e-process is not reset).
    pub regression: bool,
    /// Anytime-valid upper confidence bound on the ratio; `f64::INFINITY` when unbounded.
    pub upper_bound: f64,
    /// True when the exposure rule for promotion holds (see `RatioTestConfig`).
    pub exposure_met: bool,
    /// New-version requests still needed at the current share for the exposure rule (0 when met).
    pub new_requests_needed: f64,
}

impl RatioTest {
    /// A fresh test (e-value 1).
    pub fn new(config: RatioTestConfig) -> Self {
        RatioTest { config }
    }

    /// Adds one minute of counts. A minute with no bad events moves the e-value not at all,
    /// but still counts as exposure.
    pub fn observe(&mut self, _minute: PairCounts) {
        unimplemented!("stats: RatioTest::observe")
    }

    /// The test's current verdict numbers.
    pub fn summary(&self) -> RatioSummary {
        unimplemented!("stats: RatioTest::summary")
    }
}

/// One-sample test for the bake at 100%: the new version's bad events against the old
/// version's rate measured during the split (`reference_bad / reference_total`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BakeTest {
    pub config: RatioTestConfig,
}

impl BakeTest {
    /// A fresh bake test against the reference counts of the old version.
    pub fn new(config: RatioTestConfig, _reference_bad: f64, _reference_total: f64) -> Self {
        BakeTest { config }
    }

    /// Adds one minute of the new version's counts.
    pub fn observe(&mut self, _new_total: f64, _new_bad: f64) {
        unimplemented!("stats: BakeTest::observe")
    }

    /// Current verdict numbers; `old_*` fields carry the reference counts.
    pub fn summary(&self) -> RatioSummary {
        unimplemented!("stats: BakeTest::summary")
    }
}

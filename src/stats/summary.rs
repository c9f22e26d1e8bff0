//! What an e-process says now (`RatioSummary`): its counts, e-value, upper bound and exposure.

use super::infinite_as_null;
use serde::{Deserialize, Serialize};

/// What a test says now, with the numbers behind it (for Slack, the audit log, the page).
/// Non-finite `e_value`, `upper_bound` and `new_requests_needed` serialize as JSON `null`
/// and read back as `f64::INFINITY`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioSummary {
    /// Cumulative counts over all observed minutes (for the bake: `old_*` is the reference).
    pub new_total: f64,
    pub new_bad: f64,
    pub old_total: f64,
    pub old_bad: f64,
    /// The e-value M_T against "ratio ≤ rho0". `regression` is `e_value >= threshold`.
    #[serde(with = "infinite_as_null")]
    pub e_value: f64,
    /// The level the e-value must reach: `1/alpha`.
    pub threshold: f64,
    /// True once the test has rejected the null; stays true (the e-process is not reset).
    pub regression: bool,
    /// Anytime-valid upper confidence bound on the ratio; `f64::INFINITY` when unbounded.
    /// Valid at every minute simultaneously (not forced to be monotone).
    #[serde(with = "infinite_as_null")]
    pub upper_bound: f64,
    /// True when the exposure rule for promotion holds (see `RatioTestConfig`).
    pub exposure_met: bool,
    /// New-version requests still needed at the current share for the exposure rule (0 when
    /// met, `f64::INFINITY` when no amount of traffic at the current share would do).
    #[serde(with = "infinite_as_null")]
    pub new_requests_needed: f64,
    /// The bake's e-process on a bursty service: what each bake minute and the reference
    /// were divided by (`BakeTest::with_burst_scaling`); the counts above are the divided
    /// ones, `new_requests_needed` is in raw requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_divisor: Option<f64>,
}

impl RatioSummary {
    /// The pooled bad-event rate of both versions over the summary's counts, at least
    /// `floor`: the base rate a hypothetical regression is measured against when the
    /// scheduled looks' power counts toward the exposure rule.
    pub fn assumed_base_rate(&self, floor: f64) -> f64 {
        let requests = self.new_total + self.old_total;
        let pooled = if requests > 0.0 {
            (self.new_bad + self.old_bad) / requests
        } else {
            0.0
        };
        pooled.max(floor)
    }
}

//! The two e-processes' configuration (`RatioTestConfig`), its validation and its errors, and
//! the base rate their exposure rule assumes at least.

use super::special::normal_quantile;
use serde::{Deserialize, Serialize};

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

/// A configuration or prior that the tests cannot work with.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// `alpha` and `power` are probabilities strictly between 0 and 1.
    #[error("{name} must lie in (0, 1), got {value}")]
    NotAProbability { name: &'static str, value: f64 },
    /// `rho0` and `rho_tolerance` are positive, finite rate ratios.
    #[error("{name} must be a positive finite ratio, got {value}")]
    NotARatio { name: &'static str, value: f64 },
    /// The exposure rule only makes sense for a regression above the null.
    #[error("rho_detect ({rho_detect}) must exceed rho0 ({rho0})")]
    DetectBelowNull { rho_detect: f64, rho0: f64 },
    /// Every alternative of a mixture must lie above `rho0` with a positive finite weight.
    #[error("alternative ratio {ratio} (weight {weight}) must exceed rho0 {rho0} with weight > 0")]
    BadAlternative { ratio: f64, weight: f64, rho0: f64 },
    /// A mixture needs at least one alternative.
    #[error("a mixture needs at least one alternative")]
    NoAlternatives,
}

/// Default smallest old-version bad-event rate (per request) the exposure rule assumes: with
/// fewer observed bad events, it asks whether a new version at `rho_detect ×` this rate would
/// have been caught. See docs/statistics.md, "Exposure rule". 0.5% (was 0.1%) was chosen with
/// the simulator: docs/benchmark.md, "Promotion evidence".
pub const DEFAULT_BASE_RATE_FLOOR: f64 = 0.005;

impl RatioTestConfig {
    /// The 5xx defaults: α = 1%, null "any increase" (ρ0 = 1), promote when the upper bound
    /// is below ×2 or a ×5 regression would have been caught with probability 90%.
    pub fn default_5xx() -> Self {
        RatioTestConfig {
            alpha: 0.01,
            rho0: 1.0,
            rho_tolerance: 2.0,
            rho_detect: 5.0,
            power: 0.9,
        }
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// The first out-of-range field.
    pub fn validate(&self) -> Result<(), StatsError> {
        for (name, value) in [("alpha", self.alpha), ("power", self.power)] {
            if !(value > 0.0 && value < 1.0) {
                return Err(StatsError::NotAProbability { name, value });
            }
        }
        for (name, value) in [("rho0", self.rho0), ("rho_tolerance", self.rho_tolerance)] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(StatsError::NotARatio { name, value });
            }
        }
        if !(self.rho_detect > self.rho0 && self.rho_detect.is_finite()) {
            return Err(StatsError::DetectBelowNull {
                rho_detect: self.rho_detect,
                rho0: self.rho0,
            });
        }
        Ok(())
    }

    /// `ln(1/alpha)`: the log-level an e-value must reach.
    pub(super) fn log_level(&self) -> f64 {
        -self.alpha.ln()
    }

    /// The normal quantile of `power`.
    pub(super) fn power_z(&self) -> f64 {
        normal_quantile(self.power.clamp(1e-9, 1.0 - 1e-9))
    }
}

impl Default for RatioTestConfig {
    fn default() -> Self {
        Self::default_5xx()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_rejects_out_of_range_fields() {
        let base = RatioTestConfig::default_5xx();
        assert_eq!(base.validate(), Ok(()));
        let cases = [
            RatioTestConfig {
                alpha: 0.0,
                ..base.clone()
            },
            RatioTestConfig {
                alpha: 1.0,
                ..base.clone()
            },
            RatioTestConfig {
                power: 1.5,
                ..base.clone()
            },
            RatioTestConfig {
                rho0: -1.0,
                ..base.clone()
            },
            RatioTestConfig {
                rho_tolerance: f64::NAN,
                ..base.clone()
            },
            RatioTestConfig {
                rho_detect: 1.0,
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?}");
        }
    }
}

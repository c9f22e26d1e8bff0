//! The mixtures the e-processes bet with: the default prior over rate ratios (the split's and
//! the bake's) and the mirror test's divisors for upper bounds.

use super::search::log_spaced;

/// The default prior of the split test: multipliers of `rho0`, log-spaced.
const GRID_POINTS: usize = 28;
const GRID_LOWEST: f64 = 1.1;
const GRID_HIGHEST: f64 = 200.0;
/// Prior mass on a log-normal bump where the regressions that matter live (×3 to ×15)...
const BUMP_MASS: f64 = 0.6;
const BUMP_CENTRE: f64 = 6.0;
const BUMP_LOG_SD: f64 = 0.45;
/// ...on a narrow bump just above the floor, which huge traffic can resolve...
const NEAR_MASS: f64 = 0.12;
const NEAR_CENTRE: f64 = 1.6;
const NEAR_LOG_SD: f64 = 0.25;
// ...and the rest (0.28) spread evenly over the grid, so no ratio is left without a bet.

/// Mirror test (upper bound): alternatives `tolerance / d`, equal weights.
pub(super) const MIRROR_DIVISORS: [f64; 8] = [1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0];

/// The default prior of the split test for null `rho0`: `(ratio, weight)` pairs, ratios
/// `rho0 ×` 28 multipliers log-spaced from 1.1 to 200, weights summing to 1 (see the
/// `BUMP_*`/`NEAR_*` constants and docs/statistics.md for why this shape).
pub fn default_prior(rho0: f64) -> Vec<(f64, f64)> {
    let grid: Vec<f64> = log_spaced(GRID_LOWEST, GRID_HIGHEST, GRID_POINTS).collect();
    let bump = bump_weights(&grid, BUMP_CENTRE, BUMP_LOG_SD);
    let near = bump_weights(&grid, NEAR_CENTRE, NEAR_LOG_SD);
    let even = (1.0 - BUMP_MASS - NEAR_MASS) / grid.len() as f64;
    grid.iter()
        .zip(bump.iter().zip(&near))
        .map(|(m, (b, n))| (rho0 * m, BUMP_MASS * b + NEAR_MASS * n + even))
        .collect()
}

/// A discretised log-normal bump over `grid`, normalised to sum to 1.
fn bump_weights(grid: &[f64], centre: f64, log_sd: f64) -> Vec<f64> {
    let raw: Vec<f64> = grid
        .iter()
        .map(|m| (-(m / centre).ln().powi(2) / (2.0 * log_sd * log_sd)).exp())
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|w| w / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prior_sums_to_one_and_bets_only_above_rho0() {
        for rho0 in [1.0, 1.5] {
            let prior = default_prior(rho0);
            let total: f64 = prior.iter().map(|(_, w)| w).sum();
            assert!((total - 1.0).abs() < 1e-12);
            assert!(prior.iter().all(|&(r, w)| r > rho0 && w > 0.0));
            assert_eq!(prior.len(), GRID_POINTS);
        }
    }
}

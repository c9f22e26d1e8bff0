//! Bonferroni spending of α over a family of looks (the history looks, the bake looks): each
//! look may spend the family's α times the allowance added since the previous look.

/// Spends up to the cumulative `allowance` of a family with level `alpha` that has spent
/// `spent` so far, and returns this look's level: `alpha × (allowance − spent)`. The
/// allowance is clamped to [`spent`, 1] (it never goes back; 1 spends all that is left), and a
/// NaN allowance spends nothing. `spent` becomes the allowance; it never exceeds 1.
pub(super) fn spend(alpha: f64, spent: &mut f64, allowance: f64) -> f64 {
    let allowance = if allowance.is_nan() {
        *spent
    } else {
        allowance.clamp(*spent, 1.0)
    };
    let level = alpha * (allowance - *spent);
    *spent = allowance;
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_never_spend_more_than_their_alpha() {
        let mut spent = 0.0;
        let levels: Vec<f64> = [0.25, 0.1, f64::NAN, 0.5, 2.0, 1.0]
            .into_iter()
            .map(|allowance| spend(0.04, &mut spent, allowance))
            .collect();
        assert_eq!(
            levels,
            [0.04 * 0.25, 0.0, 0.0, 0.04 * 0.25, 0.04 * 0.5, 0.0]
        );
        assert_eq!(spent, 1.0);
        assert!(levels.iter().sum::<f64>() <= 0.04);
    }
}

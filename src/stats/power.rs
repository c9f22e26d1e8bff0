//! The power of one exact conditional look (`conditional_power`): the promotion evidence the
//! exact looks give.

use super::looks::MAX_EVENTS;
use super::special::{binomial_upper_tail, ln_gamma};

/// Power of one exact conditional look at level `alpha` against "ratio ≤ `rho0`" when the new
/// version's rate is `rho` × `rate` and the old version's `rate`, over `new_requests` and
/// `old_requests` pooled at one share: Σₙ P(E = n)·P(Binomial(n, p₁) ≥ cₙ), with E the Poisson
/// total of bad events, p₁ the new version's share of them under `rho`, and cₙ the exact
/// critical value at `alpha` given n. A fixed-sample approximation of looks spread over the
/// split (their group-sequential boundary spends a little on early looks). 0 without
/// traffic on either side.
pub fn conditional_power(
    new_requests: f64,
    old_requests: f64,
    rate: f64,
    rho: f64,
    rho0: f64,
    alpha: f64,
) -> f64 {
    let usable = [new_requests, old_requests, rate, rho, rho0, alpha]
        .iter()
        .all(|x| x.is_finite() && *x > 0.0);
    if !usable {
        return 0.0;
    }
    let mean = rate * (rho * new_requests + old_requests);
    let p1 = rho * new_requests / (rho * new_requests + old_requests);
    let p0 = rho0 * new_requests / (rho0 * new_requests + old_requests);
    let top = (mean + 10.0 * mean.sqrt() + 10.0).min(MAX_EVENTS as f64) as u64;
    let (mut power, mut critical) = (0.0, 1);
    for n in 0..=top {
        let pmf = (n as f64 * mean.ln() - mean - ln_gamma(n as f64 + 1.0)).exp();
        // The critical value never decreases with n: move it up until the tail fits.
        while critical <= n && binomial_upper_tail(n, p0, critical) > alpha {
            critical += 1;
        }
        if critical <= n {
            power += pmf * binomial_upper_tail(n, p1, critical);
        }
    }
    power.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_power_matches_a_hand_computed_case_and_grows_with_exposure() {
        // One expected event (0.5% of 100 + 100 requests), ratio 1 against 1, α = 0.3: the
        // exact level-0.3 tests of Binomial(n, ½) reject at n = 2 (P = ¼), 3 (⅛), 4 (1/16),
        // 5 (at 4: 3/16), ... Summed over E ~ Poisson(1), independently in Python
        // (math.comb, 60 terms): 0.05525593410563496.
        let p = conditional_power(100.0, 100.0, 0.005, 1.0, 1.0, 0.3);
        assert!((p - 0.055_255_934_105_634_96).abs() < 1e-9, "{p}");
        // At ratio 10 against 1, the power grows with the new version's requests.
        let small = conditional_power(20.0, 180.0, 0.005, 10.0, 1.0, 0.003);
        let large = conditional_power(480.0, 4320.0, 0.005, 10.0, 1.0, 0.003);
        assert!(small < 0.5 && large > 0.99, "{small} {large}");
        assert_eq!(conditional_power(0.0, 100.0, 0.005, 10.0, 1.0, 0.01), 0.0);
        assert_eq!(
            conditional_power(100.0, 100.0, f64::NAN, 10.0, 1.0, 0.01),
            0.0
        );
    }
}

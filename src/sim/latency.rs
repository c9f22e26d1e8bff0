//! Latency as the simulator models it: a lognormal body fixed by its median and p95, plus an
//! optional lognormal tail component (a tail-only regression), with the probability of being
//! slower than a ceiling, quantiles, and a sampled quantile with the noise of a finite window.

use super::rng::Rng;

/// z of the 95th percentile of a standard normal.
const Z95: f64 = 1.644_853_626_951_472_2;

/// A mixture of lognormals: `(weight, mu, sigma)` in log-milliseconds; weights sum to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyModel {
    components: Vec<(f64, f64, f64)>,
}

impl LatencyModel {
    /// A lognormal with this median and p95 (ms); requires 0 < median < p95.
    pub fn lognormal(median_ms: f64, p95_ms: f64) -> Self {
        LatencyModel {
            components: vec![(1.0, median_ms.ln(), log_sd(median_ms, p95_ms))],
        }
    }

    /// This model with a fraction `fraction` of requests drawn from a second lognormal
    /// (the tail), the rest from `self`.
    pub fn with_tail(self, fraction: f64, median_ms: f64, p95_ms: f64) -> Self {
        let mut components: Vec<(f64, f64, f64)> = self
            .components
            .into_iter()
            .map(|(w, mu, sigma)| (w * (1.0 - fraction), mu, sigma))
            .collect();
        components.push((fraction, median_ms.ln(), log_sd(median_ms, p95_ms)));
        LatencyModel { components }
    }

    /// P(latency > `ms`).
    pub fn slower_than(&self, ms: f64) -> f64 {
        if ms <= 0.0 {
            return 1.0;
        }
        let x = ms.ln();
        self.components
            .iter()
            .map(|&(w, mu, sigma)| w * normal_sf((x - mu) / sigma))
            .sum()
    }

    /// Probability density at `ms` (per ms).
    fn density(&self, ms: f64) -> f64 {
        if ms <= 0.0 {
            return 0.0;
        }
        let x = ms.ln();
        self.components
            .iter()
            .map(|&(w, mu, sigma)| {
                let z = (x - mu) / sigma;
                w * (-0.5 * z * z).exp() / (sigma * ms * (std::f64::consts::TAU).sqrt())
            })
            .sum()
    }

    /// The `p` quantile in ms (bisection on the log scale).
    pub fn quantile(&self, p: f64) -> f64 {
        mixture_quantile(&[(1.0, self)], p)
    }
}

/// The `p` quantile (ms) of a request-weighted mixture of models.
pub fn mixture_quantile(parts: &[(f64, &LatencyModel)], p: f64) -> f64 {
    let total: f64 = parts.iter().map(|(w, _)| w).sum();
    if total <= 0.0 {
        return f64::NAN;
    }
    let sf = |ms: f64| {
        parts
            .iter()
            .map(|(w, m)| w / total * m.slower_than(ms))
            .sum::<f64>()
    };
    let (mut lo, mut hi) = (1e-3f64.ln(), 1e7f64.ln());
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if sf(mid.exp()) > 1.0 - p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// Largest window (in requests) whose quantile is computed from individual draws; above it,
/// the asymptotic normal law of a sample quantile is used instead.
const EXACT_SAMPLE_MAX: usize = 100;

/// The `p` quantile of `n` requests drawn from the mixture, as a query over a window would
/// report it: exact order statistics for small windows, otherwise the true quantile plus
/// normal noise with the sample quantile's standard error √(p(1−p)/n) / f(q).
pub fn sampled_quantile(parts: &[(f64, &LatencyModel)], p: f64, n: f64, rng: &mut Rng) -> f64 {
    let total: f64 = parts.iter().map(|(w, _)| w).sum();
    if n < 1.0 || total <= 0.0 {
        return f64::NAN;
    }
    if n <= EXACT_SAMPLE_MAX as f64 {
        let count = n.round().max(1.0) as usize;
        let mut draws: Vec<f64> = (0..count)
            .map(|_| draw(parts, total, rng))
            .collect::<Vec<f64>>();
        draws.sort_by(f64::total_cmp);
        let index = ((p * count as f64).ceil() as usize).clamp(1, count) - 1;
        return draws[index];
    }
    let q = mixture_quantile(parts, p);
    let density: f64 = parts.iter().map(|(w, m)| w / total * m.density(q)).sum();
    if density <= 0.0 {
        return q;
    }
    let se = (p * (1.0 - p) / n).sqrt() / density;
    (q + se * rng.normal()).max(0.0)
}

fn draw(parts: &[(f64, &LatencyModel)], total: f64, rng: &mut Rng) -> f64 {
    let mut u = rng.uniform() * total;
    let mut chosen = parts[parts.len() - 1].1;
    for (w, m) in parts {
        if u < *w {
            chosen = m;
            break;
        }
        u -= w;
    }
    let mut v = rng.uniform();
    for &(w, mu, sigma) in &chosen.components {
        if v < w {
            return rng.lognormal(mu, sigma);
        }
        v -= w;
    }
    let &(_, mu, sigma) = &chosen.components[chosen.components.len() - 1];
    rng.lognormal(mu, sigma)
}

fn log_sd(median_ms: f64, p95_ms: f64) -> f64 {
    (p95_ms / median_ms).ln() / Z95
}

/// Upper tail of the standard normal, 1 − Φ(z), via erfc (relative error < 1.2e-7, Numerical
/// Recipes' Chebyshev fit), accurate far into the tail where slow-request rates live.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_hits_its_median_and_p95() {
        let m = LatencyModel::lognormal(80.0, 200.0);
        assert!((m.quantile(0.5) - 80.0).abs() < 0.01);
        assert!((m.quantile(0.95) - 200.0).abs() < 0.01);
        assert!((m.slower_than(200.0) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn a_tail_moves_the_slow_share_more_than_the_p95() {
        let body = LatencyModel::lognormal(80.0, 200.0);
        let tailed = body.clone().with_tail(0.02, 800.0, 1500.0);
        assert!(tailed.quantile(0.95) < 1.15 * body.quantile(0.95));
        assert!(tailed.slower_than(250.0) > 1.8 * body.slower_than(250.0));
    }

    #[test]
    fn normal_tail_is_accurate() {
        for (z, want) in [(0.0, 0.5), (1.644_853_6, 0.05), (3.090_232, 0.001)] {
            assert!((normal_sf(z) / want - 1.0).abs() < 1e-5, "z {z}");
        }
        assert!((normal_sf(-1.0) - 0.841_344_746).abs() < 1e-7);
    }

    #[test]
    fn sampled_quantile_is_centred_on_the_true_one() {
        let m = LatencyModel::lognormal(80.0, 200.0);
        let mut rng = Rng::from_seed(9);
        // Nearest-rank order statistics of a small window sit a little low (rank 57 of 60 is
        // about the 93rd percentile on average); large windows are centred.
        for (n, tolerance) in [(60.0, 0.06), (5_000.0, 0.01)] {
            let draws: Vec<f64> = (0..2_000)
                .map(|_| sampled_quantile(&[(1.0, &m)], 0.95, n, &mut rng))
                .collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            assert!(
                (mean / 200.0 - 1.0).abs() < tolerance,
                "n {n}: mean p95 {mean}"
            );
        }
    }
}

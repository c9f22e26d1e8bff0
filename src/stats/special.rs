//! Special functions the tests evaluate: log-sum-exp, the normal CDF and quantile, Student's t
//! tail, the binomial tail through the regularized incomplete beta, and ln Γ.

/// ln Σ exp(v) over `values`, computed from their largest (no overflow; −∞ when empty).
pub(super) fn log_sum_exp(values: impl Iterator<Item = f64>) -> f64 {
    // Mixtures here have a few dozen terms: kept on the stack (this runs on every step of
    // the bounds' searches), any beyond spill to the heap in order.
    let mut stack = [0.0; 64];
    let mut len = 0;
    let mut spill = Vec::new();
    for v in values {
        match stack.get_mut(len) {
            Some(slot) => {
                *slot = v;
                len += 1;
            }
            None => spill.push(v),
        }
    }
    let values = || stack[..len].iter().chain(&spill);
    let max = values().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
pub(super) fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let tail = 0.5 * poly * (-x * x / 2.0).exp();
    if x >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Standard normal quantile for p in (0, 1) (Acklam's rational approximation, relative
/// error < 1.2e-9).
pub(super) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        let num = ((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5];
        num / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        let num = (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q;
        num / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// P(T ≥ t) for Student's t with `df` degrees of freedom, via the regularized incomplete
/// beta function: P(|T| ≥ t) = I_{df/(df+t²)}(df/2, ½).
pub(super) fn student_t_upper_tail(t: f64, df: f64) -> f64 {
    if t.is_nan() || df <= 0.0 {
        return 1.0;
    }
    if t == f64::INFINITY {
        return 0.0;
    }
    let two_sided = incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        0.5 * two_sided
    } else {
        1.0 - 0.5 * two_sided
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p): I_p(k, n − k + 1), and 1 at k = 0.
pub fn binomial_upper_tail(n: u64, p: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    incomplete_beta(k as f64, (n - k + 1) as f64, p.clamp(0.0, 1.0))
}

/// Regularized incomplete beta I_x(a, b) by Lentz's continued fraction (Numerical Recipes
/// §6.4), accurate to ~1e-12 for the arguments used here.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error < 1e-13).
pub(super) fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_helpers_match_known_values() {
        for (p, z) in [
            (0.5, 0.0),
            (0.9, 1.281_551_6),
            (0.99, 2.326_347_9),
            (0.001, -3.090_232_3),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-6, "{p}");
            assert!((normal_cdf(z) - p).abs() < 1e-6, "{z}");
        }
    }

    #[test]
    fn student_t_tail_matches_tables() {
        // Two-sided 5% critical values: t(4) = 2.776, t(19) = 2.093; one-sided 1%: t(10) = 2.764.
        assert!((student_t_upper_tail(2.776_445, 4.0) - 0.025).abs() < 1e-6);
        assert!((student_t_upper_tail(2.093_024, 19.0) - 0.025).abs() < 1e-6);
        assert!((student_t_upper_tail(2.763_769, 10.0) - 0.01).abs() < 1e-6);
        assert!((student_t_upper_tail(0.0, 7.0) - 0.5).abs() < 1e-12);
        assert!((student_t_upper_tail(-2.093_024, 19.0) - 0.975).abs() < 1e-6);
    }
}

//! The simulator's own small random number generator: xoshiro256** seeded through SplitMix64,
//! and the samplers the traffic model needs (uniform, normal, Poisson, binomial, gamma,
//! negative binomial, lognormal). Deterministic for a seed on every platform; no crates.

/// SplitMix64 step: a good 64-bit mixer, used to expand seeds (Vigna's reference constants).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a string (FNV-1a), for deriving per-scenario seeds from names.
pub fn hash_name(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// xoshiro256** (Blackman & Vigna 2018): fast, 256-bit state, passes BigCrush.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// Below this mean, Poisson and binomial draws use inversion (sequential search); above it
/// the transformed-rejection samplers (PTRS, BTRS), whose setup only pays off for larger means.
const INVERSION_MAX_MEAN: f64 = 10.0;

impl Rng {
    /// A generator whose state is four SplitMix64 outputs of `seed` (never all zero).
    pub fn from_seed(seed: u64) -> Self {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// A generator for one stream of a run: `seed` mixed with each part in turn, so
    /// (scenario, gate, run) triples get independent, reproducible streams.
    pub fn derive(seed: u64, parts: &[u64]) -> Self {
        let mut state = seed;
        let mut mixed = splitmix64(&mut state);
        for part in parts {
            let mut s = mixed ^ part.wrapping_mul(0xD605_BBB5_8C8A_BBB5);
            mixed = splitmix64(&mut s);
        }
        Rng::from_seed(mixed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on (0, 1): safe to take the log of.
    pub fn uniform_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; one of the pair is discarded to keep the state simple).
    pub fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.uniform_open().ln()).sqrt();
        r * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// Lognormal with log-mean `mu` and log-sd `sigma`.
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }

    /// Poisson with mean `lambda` (0 for a non-positive or non-finite mean): inversion below
    /// mean 10, Hörmann's PTRS transformed rejection above.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if !(lambda > 0.0 && lambda.is_finite()) {
            return 0;
        }
        if lambda < INVERSION_MAX_MEAN {
            return self.poisson_inversion(lambda);
        }
        self.poisson_ptrs(lambda)
    }

    fn poisson_inversion(&mut self, lambda: f64) -> u64 {
        let u = self.uniform();
        let mut k = 0u64;
        let mut p = (-lambda).exp();
        let mut cdf = p;
        // The cap only guards against rounding leaving `cdf` a hair below `u` forever.
        while u > cdf && k < 1_000 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        k
    }

    /// W. Hörmann, "The transformed rejection method for generating Poisson random
    /// variables", Insurance: Mathematics and Economics 12 (1993); constants as published.
    fn poisson_ptrs(&mut self, lambda: f64) -> u64 {
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform_open();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= v_r {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let lhs = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
            if lhs <= -lambda + k * loglam - ln_factorial(k) {
                return k as u64;
            }
        }
    }

    /// Binomial(n, p): inversion when the smaller tail's mean is under 10, else Hörmann's BTRS.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p.is_nan() || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        if n as f64 * p < INVERSION_MAX_MEAN {
            return self.binomial_inversion(n, p);
        }
        self.binomial_btrs(n, p)
    }

    fn binomial_inversion(&mut self, n: u64, p: f64) -> u64 {
        let q = 1.0 - p;
        let ratio = p / q;
        let u = self.uniform();
        let mut k = 0u64;
        let mut pmf = (n as f64 * q.ln()).exp();
        let mut cdf = pmf;
        while u > cdf && k < n {
            pmf *= ratio * (n - k) as f64 / (k + 1) as f64;
            k += 1;
            cdf += pmf;
            if pmf < 1e-300 && cdf > 1.0 - 1e-12 {
                break;
            }
        }
        k
    }

    /// W. Hörmann, "The generation of binomial random variates", J. Statist. Comput. Simul.
    /// 46 (1993): BTRS, valid for n·p ≥ 10 and p ≤ 0.5.
    fn binomial_btrs(&mut self, n: u64, p: f64) -> u64 {
        let nf = n as f64;
        let q = 1.0 - p;
        let spq = (nf * p * q).sqrt();
        let b = 1.15 + 2.53 * spq;
        let a = -0.0873 + 0.0248 * b + 0.01 * p;
        let c = nf * p + 0.5;
        let v_r = 0.92 - 4.2 / b;
        let r = p / q;
        let alpha = (2.83 + 5.1 / b) * spq;
        let m = ((nf + 1.0) * p).floor();
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform_open();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + c).floor();
            if k < 0.0 || k > nf {
                continue;
            }
            if us >= 0.07 && v <= v_r {
                return k as u64;
            }
            let lhs = (v * alpha / (a / (us * us) + b)).ln();
            let bound = (m + 0.5) * ((m + 1.0) / (r * (nf - m + 1.0))).ln()
                + (nf + 1.0) * ((nf - m + 1.0) / (nf - k + 1.0)).ln()
                + (k + 0.5) * (r * (nf - k + 1.0) / (k + 1.0)).ln()
                + stirling_tail(m)
                + stirling_tail(nf - m)
                - stirling_tail(k)
                - stirling_tail(nf - k);
            if lhs <= bound {
                return k as u64;
            }
        }
    }

    /// Gamma with `shape` > 0 and `scale` > 0 (Marsaglia & Tsang 2000; shape < 1 by the
    /// `U^(1/shape)` boost). Returns 0 for invalid parameters.
    pub fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        if !(shape > 0.0 && scale > 0.0 && shape.is_finite() && scale.is_finite()) {
            return 0.0;
        }
        if shape < 1.0 {
            let boost = self.uniform_open().powf(1.0 / shape);
            return self.gamma(shape + 1.0, scale) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform_open();
            if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v * scale;
            }
        }
    }

    /// A rate multiplier with mean 1 and variance `cv2` (gamma with shape 1/cv2); exactly 1
    /// when `cv2` is 0. Multiplying a Poisson mean by it gives a negative binomial count.
    pub fn gamma_mean_one(&mut self, cv2: f64) -> f64 {
        if !(cv2 > 0.0 && cv2.is_finite()) {
            return 1.0;
        }
        self.gamma(1.0 / cv2, cv2)
    }

    /// Negative binomial with mean `mean` and variance `mean + cv2·mean²` (gamma–Poisson).
    pub fn negative_binomial(&mut self, mean: f64, cv2: f64) -> u64 {
        let multiplier = self.gamma_mean_one(cv2);
        self.poisson(mean * multiplier)
    }
}

/// ln k! for a whole number k ≥ 0: exact sums below 30, Stirling's series above.
fn ln_factorial(k: f64) -> f64 {
    if k < 30.0 {
        return (2..=(k as u64)).map(|i| (i as f64).ln()).sum();
    }
    let n = k + 1.0;
    (n - 0.5) * n.ln() - n + 0.5 * std::f64::consts::TAU.ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n.powi(3))
        + 1.0 / (1260.0 * n.powi(5))
}

/// ln k! − Stirling's approximation, for BTRS (tabulated below 10, series above).
fn stirling_tail(k: f64) -> f64 {
    const TABLE: [f64; 10] = [
        0.081_061_466_795_327_2,
        0.041_340_695_955_409_2,
        0.027_677_925_684_998_3,
        0.020_790_672_103_765_09,
        0.016_644_691_189_821_1,
        0.013_876_128_823_070_7,
        0.011_896_709_945_891_7,
        0.010_411_265_261_972_0,
        0.009_255_462_182_712_73,
        0.008_330_563_433_362_87,
    ];
    if k <= 9.0 {
        return TABLE[k as usize];
    }
    let kp1sq = (k + 1.0) * (k + 1.0);
    (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / 1260.0 / kp1sq) / kp1sq) / (k + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean and variance of `n` draws.
    fn moments(n: usize, mut draw: impl FnMut() -> f64) -> (f64, f64) {
        let xs: Vec<f64> = (0..n).map(|_| draw()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    /// Asserts the sample mean is within 4 standard errors of `want`.
    fn assert_mean(name: &str, (mean, _): (f64, f64), want: f64, sd: f64, n: usize) {
        let se = sd / (n as f64).sqrt();
        assert!(
            (mean - want).abs() <= 4.0 * se + 1e-12,
            "{name}: mean {mean} vs {want} (se {se})"
        );
    }

    #[test]
    fn same_seed_gives_the_same_stream_and_parts_give_different_ones() {
        let a: Vec<u64> = (0..5).map(|_| Rng::from_seed(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Rng::derive(7, &[1, 2]);
        let mut y = Rng::derive(7, &[2, 1]);
        assert_ne!(x.next_u64(), y.next_u64());
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut rng = Rng::from_seed(1);
        let n = 100_000;
        let u = moments(n, || rng.uniform());
        assert_mean("uniform", u, 0.5, (1.0f64 / 12.0).sqrt(), n);
        let z = moments(n, || rng.normal());
        assert_mean("normal", z, 0.0, 1.0, n);
        assert!((z.1 - 1.0).abs() < 0.02, "normal variance {}", z.1);
    }

    #[test]
    fn poisson_means_and_variances_match_in_both_regimes() {
        let mut rng = Rng::from_seed(2);
        let n = 50_000;
        for lambda in [0.3, 4.0, 9.9, 10.0, 37.5, 600.0, 25_000.0] {
            let m = moments(n, || rng.poisson(lambda) as f64);
            assert_mean("poisson", m, lambda, lambda.sqrt(), n);
            assert!(
                (m.1 / lambda - 1.0).abs() < 0.05,
                "poisson({lambda}) variance {}",
                m.1
            );
        }
        assert_eq!(rng.poisson(0.0), 0);
        assert_eq!(rng.poisson(f64::NAN), 0);
    }

    #[test]
    fn binomial_means_and_variances_match_in_both_regimes() {
        let mut rng = Rng::from_seed(3);
        let n = 50_000;
        for (trials, p) in [
            (20u64, 0.01),
            (600, 0.001),
            (100, 0.3),
            (60_000, 0.05),
            (6_000, 0.9),
        ] {
            let mean = trials as f64 * p;
            let var = mean * (1.0 - p);
            let m = moments(n, || rng.binomial(trials, p) as f64);
            assert_mean("binomial", m, mean, var.sqrt(), n);
            assert!(
                (m.1 / var - 1.0).abs() < 0.05,
                "binomial({trials}, {p}) variance {} vs {var}",
                m.1
            );
        }
        assert_eq!(rng.binomial(10, 0.0), 0);
        assert_eq!(rng.binomial(10, 1.0), 10);
    }

    #[test]
    fn gamma_and_negative_binomial_have_mean_and_overdispersion() {
        let mut rng = Rng::from_seed(4);
        let n = 50_000;
        for (shape, scale) in [(0.5, 2.0), (4.0, 0.25), (50.0, 1.0)] {
            let m = moments(n, || rng.gamma(shape, scale));
            let sd = (shape * scale * scale).sqrt();
            assert_mean("gamma", m, shape * scale, sd, n);
        }
        let (mean, cv2) = (20.0, 0.5);
        let m = moments(n, || rng.negative_binomial(mean, cv2) as f64);
        let var = mean + cv2 * mean * mean;
        assert_mean("negative binomial", m, mean, var.sqrt(), n);
        assert!(
            (m.1 / var - 1.0).abs() < 0.1,
            "nb variance {} vs {var}",
            m.1
        );
        assert_eq!(rng.gamma_mean_one(0.0), 1.0);
    }

    #[test]
    fn lognormal_median_is_exp_mu() {
        let mut rng = Rng::from_seed(5);
        let mut xs: Vec<f64> = (0..20_001).map(|_| rng.lognormal(4.0, 0.6)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[10_000];
        assert!((median / 4f64.exp() - 1.0).abs() < 0.02, "median {median}");
    }
}

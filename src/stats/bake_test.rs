//! The bake's e-process (`BakeTest`): the new version's bad events at 100% against the old
//! version's rate measured during the split, with its upper bound and exposure rule.

use super::burst_guard::{burst_guarded, BURST_MIN_EVENTS};
use super::prior::{default_prior, MIRROR_DIVISORS};
use super::ratio_test::EVIDENCE_CAP;
use super::search::{
    lowest_rejected_near, minimise_convex, minimise_on_grid, BoundAt, StoredBound,
};
use super::special::log_sum_exp;
use super::{RatioSummary, RatioTestConfig, DEFAULT_BASE_RATE_FLOOR};
use serde::{Deserialize, Serialize};

/// Bake: alternatives for the reference rate, `r / k` and `r · k`, equal weights.
const REFERENCE_FACTORS: [f64; 12] = [
    1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0,
];

/// Requests still needed are found to within this share of them (they are shown, rounded, and
/// decide nothing), or one request.
const NEEDED_PRECISION: f64 = 1e-3;

/// One-sample test for the bake at 100%: the new version's bad events against the old
/// version's rate measured during the split (`reference_bad / reference_total`).
///
/// The reference rate r is itself estimated, so the e-value is
/// `min over r of B_T(r) · R(r)`: B_T(r) is the Poisson mixture e-process against "new rate ≤
/// rho0 · r" and R(r) an e-value against "the reference rate is r" from the reference counts
/// (large when r is implausibly high). At the true r the product is a test supermartingale, so
/// the minimum is anytime-valid at `1/alpha` with no split of alpha. See docs/statistics.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BakeTest {
    pub config: RatioTestConfig,
    reference_bad: f64,
    reference_total: f64,
    new_total: f64,
    new_bad: f64,
    /// Bake minutes with at least `BURST_MIN_EVENTS` bad events, as (requests, bad events),
    /// each under the burst guard; at most `EVIDENCE_CAP`, then the oldest two are merged
    /// (clipping a merged block is as valid). The other minutes are not clipped, so their
    /// totals are enough: `new_* − Σ bursty`.
    bursty: Vec<(f64, f64)>,
    /// ln of the e-value at the last `observe` (what `summary` reports).
    log_e: f64,
    rejected: bool,
    base_rate_floor: f64,
    /// What each bake minute is divided by before it counts, and the bake minutes that
    /// divisor covers (`with_burst_scaling`).
    burst_divisor: Option<f64>,
    burst_horizon: Option<u32>,
    /// Bake minutes counted.
    minutes: u32,
    /// The upper bound for the counts as they stand (as `RatioTest::bound`). Absent in tests
    /// stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bound: Option<StoredBound>,
}

impl BakeTest {
    /// A fresh bake test against the reference counts of the old version. Negative or
    /// non-finite reference counts are treated as no reference (the test then never flags).
    pub fn new(config: RatioTestConfig, reference_bad: f64, reference_total: f64) -> Self {
        let valid = [reference_bad, reference_total]
            .iter()
            .all(|c| c.is_finite() && *c >= 0.0);
        let (reference_bad, reference_total) = if valid {
            (reference_bad, reference_total)
        } else {
            (0.0, 0.0)
        };
        BakeTest {
            config,
            reference_bad,
            reference_total,
            new_total: 0.0,
            new_bad: 0.0,
            bursty: Vec::new(),
            log_e: 0.0,
            rejected: false,
            base_rate_floor: DEFAULT_BASE_RATE_FLOOR,
            burst_divisor: None,
            burst_horizon: None,
            minutes: 0,
            bound: None,
        }
    }

    /// Divides each bake minute by `divisor` (> 1; else nothing changes) before it counts,
    /// for the first `horizon_minutes` bake minutes, and counts none after them: for a
    /// bursty service, whose reference the caller has divided already
    /// (`BakeLooks::e_process_scaling`), so that the sums up to the horizon have about
    /// Poisson variance. Past it the divisor would under-correct bursts that last, so the
    /// e-process stops where it is (the bake looks, scaled for the bake's length at each
    /// look, carry on).
    pub fn with_burst_scaling(mut self, divisor: f64, horizon_minutes: u32) -> Self {
        if divisor.is_finite() && divisor > 1.0 {
            self.burst_divisor = Some(divisor);
            self.burst_horizon = Some(horizon_minutes.max(1));
        }
        self
    }

    /// See `RatioTest::with_base_rate_floor`; here the floor applies to the reference rate.
    pub fn with_base_rate_floor(mut self, floor: f64) -> Self {
        self.base_rate_floor = if floor.is_finite() {
            floor.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// Adds one minute of the new version's counts (negative or non-finite are ignored).
    pub fn observe(&mut self, new_total: f64, new_bad: f64) {
        let valid = [new_total, new_bad]
            .iter()
            .all(|c| c.is_finite() && *c >= 0.0);
        if !valid || self.burst_horizon.is_some_and(|h| self.minutes >= h) {
            return;
        }
        self.minutes += 1;
        let divisor = self.burst_divisor.unwrap_or(1.0);
        let (new_total, new_bad) = (new_total / divisor, new_bad / divisor);
        self.new_total += new_total;
        self.new_bad += new_bad;
        if new_bad >= BURST_MIN_EVENTS {
            self.bursty.push((new_total, new_bad));
            if self.bursty.len() > EVIDENCE_CAP {
                let (total, bad) = self.bursty.remove(1);
                self.bursty[0].0 += total;
                self.bursty[0].1 += bad;
            }
        }
        self.log_e = self.observed_log_e();
        if self.log_e >= self.config.log_level() {
            self.rejected = true;
        }
        let level = self.config.log_level();
        let at = self.search_bound(level, self.bound.map(|b| b.at));
        self.bound = Some(StoredBound { level, at });
    }

    /// Whether the e-value has reached 1/α at some minute (cheaper than `summary`, which
    /// also computes the bound and the exposure).
    pub fn rejected(&self) -> bool {
        self.rejected
    }

    /// Current verdict numbers; `old_*` fields carry the reference counts.
    pub fn summary(&self) -> RatioSummary {
        let log_e = self.log_e;
        let needed = self.new_requests_needed();
        RatioSummary {
            new_total: self.new_total,
            new_bad: self.new_bad,
            old_total: self.reference_total,
            old_bad: self.reference_bad,
            e_value: log_e.exp(),
            threshold: 1.0 / self.config.alpha,
            regression: self.rejected || log_e >= self.config.log_level(),
            upper_bound: self.upper_bound(),
            exposure_met: needed == 0.0,
            // The test counts scaled requests; the user needs raw ones.
            new_requests_needed: needed * self.burst_divisor.unwrap_or(1.0),
            burst_divisor: self.burst_divisor,
        }
    }

    fn reference(&self) -> Reference {
        Reference::new(self.reference_bad, self.reference_total)
    }

    /// ln of `min_r B(r)·R(r)` on the observed minutes, each bursty minute's likelihood
    /// ratio under the burst guard (0 without a reference).
    fn observed_log_e(&self) -> f64 {
        let reference = self.reference();
        if reference.total <= 0.0 {
            return 0.0;
        }
        let (mut calm_total, mut calm_bad) = (self.new_total, self.new_bad);
        for (total, bad) in &self.bursty {
            calm_total -= total;
            calm_bad -= bad;
        }
        let (calm_total, calm_bad) = (calm_total.max(0.0), calm_bad.max(0.0));
        let prior = default_prior(self.config.rho0);
        let rho0 = self.config.rho0;
        let log_b = |r: f64| {
            log_sum_exp(prior.iter().map(|&(rho, w)| {
                let log_lr =
                    |total: f64, bad: f64| bad * (rho / rho0).ln() - (rho - rho0) * r * total;
                let bursty: f64 = self
                    .bursty
                    .iter()
                    .map(|&(total, bad)| burst_guarded(log_lr(total, bad), bad))
                    .sum();
                w.ln() + log_lr(calm_total, calm_bad) + bursty
            }))
        };
        minimise_on_grid(
            |r| log_b(r) + reference.log_e_rate_either_way(r),
            reference.rate_cap(),
        )
    }

    /// ln of `min_r B(r)·R(r)` for hypothetical cumulative bake counts, without the burst
    /// guard (the exposure rule's projection; 0 without a reference).
    fn log_e_value(&self, bad: f64, total: f64) -> f64 {
        let reference = self.reference();
        if reference.total <= 0.0 {
            return 0.0;
        }
        let prior = default_prior(self.config.rho0);
        let rho0 = self.config.rho0;
        let log_b = |r: f64| {
            log_sum_exp(
                prior
                    .iter()
                    .map(|&(rho, w)| w.ln() + bad * (rho / rho0).ln() - (rho - rho0) * r * total),
            )
        };
        minimise_convex(
            |r| log_b(r) + reference.log_e_rate_too_high(r),
            reference.rate_cap(),
        )
    }

    /// Anytime-valid upper bound on (bake rate)/(reference rate) via the mirror test: as
    /// stored for the counts as they stand (every minute counted stores it anew).
    fn upper_bound(&self) -> f64 {
        let level = self.config.log_level();
        match self.bound.and_then(|b| b.at_level(level)) {
            Some(bound) => bound,
            None => self.search_bound(level, self.bound.map(|b| b.at)).value(),
        }
    }

    /// Where the mirror test first rejects, searched from `hint`.
    fn search_bound(&self, level: f64, hint: Option<BoundAt>) -> BoundAt {
        let reference = self.reference();
        if reference.total <= 0.0 || self.new_total <= 0.0 {
            return BoundAt::Unbounded;
        }
        let (bad, total) = (self.new_bad, self.new_total);
        let cap = reference.rate_cap();
        let log_w = -(MIRROR_DIVISORS.len() as f64).ln();
        let alternatives = MIRROR_DIVISORS.map(|d| {
            let m = 1.0 / d;
            (m, m.ln())
        });
        let mirror = |tol: f64| {
            let log_b = |r: f64| {
                log_sum_exp(
                    alternatives
                        .iter()
                        .map(|&(m, ln_m)| log_w + bad * ln_m + (1.0 - m) * tol * r * total),
                )
            };
            minimise_convex(|r| log_b(r) + reference.log_e_rate_too_low(r), cap)
        };
        lowest_rejected_near(mirror, level, hint)
    }

    /// Would a new version at `rho_detect × max(reference rate, floor)` have been flagged
    /// after `total` bake requests, with probability ≥ `power`? Evaluated exactly on the
    /// `1 − power` quantile of its bad-event count (normal approximation of the Poisson):
    /// the e-value is increasing in the count, so reaching the level there means reaching
    /// it with probability ≥ `power` (at the end; earlier crossings only add).
    fn met_after(&self, total: f64) -> bool {
        if total <= 0.0 || self.reference_total <= 0.0 {
            return false;
        }
        let rate = (self.reference_bad / self.reference_total).max(self.base_rate_floor);
        let mean = self.config.rho_detect * rate * total;
        let low = (mean - self.config.power_z() * mean.sqrt()).max(0.0);
        self.log_e_value(low, total) >= self.config.log_level()
    }

    fn new_requests_needed(&self) -> f64 {
        if self.met_after(self.new_total) {
            return 0.0;
        }
        let mut hi = self.new_total.max(1.0);
        while !self.met_after(hi) {
            hi *= 2.0;
            if hi > 1e15 {
                return f64::INFINITY;
            }
        }
        // Each step costs a minimisation; `hi` always meets the rule, so the count errs high.
        let mut lo = self.new_total;
        while hi - lo > (NEEDED_PRECISION * (hi - self.new_total)).max(1.0) {
            let mid = 0.5 * (lo + hi);
            if self.met_after(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (hi - self.new_total).ceil()
    }
}

/// The old version's counts measured during the split: e-values about its rate r.
#[derive(Clone, Copy)]
struct Reference {
    bad: f64,
    total: f64,
    /// The alternatives' rate multipliers m and their ln, for r/k (`down`) and r·k (`up`)
    /// with k each of `REFERENCE_FACTORS`, computed once: the bounds' searches evaluate the
    /// e-values thousands of times.
    down: [(f64, f64); REFERENCE_FACTORS.len()],
    up: [(f64, f64); REFERENCE_FACTORS.len()],
}

impl Reference {
    fn new(bad: f64, total: f64) -> Self {
        Reference {
            bad,
            total,
            down: REFERENCE_FACTORS.map(|k| (1.0 / k, (1.0 / k).ln())),
            up: REFERENCE_FACTORS.map(|k| (k, k.ln())),
        }
    }

    /// Upper end of the search for r: rates are per request (≤ 1), with slack for odd inputs.
    fn rate_cap(&self) -> f64 {
        (10.0 * self.bad / self.total).max(1.0)
    }

    /// ln R(r): e-value against "reference rate is r" with alternatives r/k (k > 1); convex
    /// and increasing in r; E_r[R(r)] ≤ 1 for Poisson or binomial counts.
    fn log_e_rate_too_high(&self, r: f64) -> f64 {
        self.log_e_rate_scaled(r, &self.down)
    }

    /// ln of the mean of R(r) and R'(r): an e-value against "reference rate is r" that grows
    /// when r is implausibly high *or* low. The burst guard caps how much the bake's B(r)
    /// can grow as r falls, so without the second half the minimum over r would slide to
    /// r → 0 and say nothing.
    fn log_e_rate_either_way(&self, r: f64) -> f64 {
        let (high, low) = (self.log_e_rate_too_high(r), self.log_e_rate_too_low(r));
        log_sum_exp([high, low].into_iter()) - std::f64::consts::LN_2
    }

    /// ln R'(r): e-value against "reference rate is r" with alternatives r·k (k > 1).
    fn log_e_rate_too_low(&self, r: f64) -> f64 {
        self.log_e_rate_scaled(r, &self.up)
    }

    /// ln of the equal-weight mixture over `alternatives` (multiplier m, ln m).
    fn log_e_rate_scaled(&self, r: f64, alternatives: &[(f64, f64)]) -> f64 {
        let log_w = -(alternatives.len() as f64).ln();
        log_sum_exp(
            alternatives
                .iter()
                .map(|&(m, ln_m)| log_w + self.bad * ln_m + (1.0 - m) * r * self.total),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::assert_round_trips;

    const ALPHA: f64 = 0.01;

    fn config() -> RatioTestConfig {
        RatioTestConfig::default_5xx()
    }

    #[test]
    fn bake_burst_guard_needs_several_bad_minutes() {
        // Reference: 1% over 100k requests. A bake minute at 3% on 10k requests (300 bad,
        // ×3) would flag at once unguarded; guarded it takes several minutes.
        let config = RatioTestConfig {
            rho0: 1.5,
            ..config()
        };
        let mut bake = BakeTest::new(config, 1_000.0, 100_000.0);
        bake.observe(10_000.0, 300.0);
        assert!(!bake.summary().regression, "{}", bake.summary().e_value);
        assert!(
            bake.log_e_value(300.0, 10_000.0) > ALPHA.recip().ln(),
            "unguarded would"
        );
        for _ in 0..4 {
            bake.observe(10_000.0, 300.0);
        }
        assert!(bake.summary().regression);
    }

    #[test]
    fn bake_flags_five_times_the_reference_rate() {
        // Reference: the old version during the default split at 10 rps (0.1%).
        let mut bake = BakeTest::new(config(), 8.0, 8400.0);
        for _ in 0..10 {
            bake.observe(600.0, 3.0);
        }
        let summary = bake.summary();
        assert!(summary.regression, "{summary:?}");
        assert_eq!((summary.old_bad, summary.old_total), (8.0, 8400.0));
    }

    #[test]
    fn bake_does_not_flag_an_equal_rate() {
        let mut bake = BakeTest::new(config(), 100.0, 100_000.0);
        for _ in 0..60 {
            bake.observe(10_000.0, 10.0);
        }
        let summary = bake.summary();
        assert!(!summary.regression, "{summary:?}");
        assert!(summary.e_value < 1.0, "{summary:?}");
        assert!(summary.upper_bound < 2.0, "{summary:?}");
        assert!(summary.exposure_met, "{summary:?}");
    }

    #[test]
    fn bake_without_reference_never_flags_nor_promotes() {
        let mut bake = BakeTest::new(config(), 0.0, 0.0);
        let mut nonsense = BakeTest::new(config(), f64::NAN, 100.0);
        for _ in 0..10 {
            bake.observe(600.0, 60.0);
            nonsense.observe(600.0, 60.0);
        }
        for summary in [bake.summary(), nonsense.summary()] {
            assert!(!summary.regression);
            assert_eq!(summary.e_value, 1.0);
            assert_eq!(summary.upper_bound, f64::INFINITY);
            assert!(!summary.exposure_met);
        }
    }

    #[test]
    fn bake_upper_bound_shrinks_with_healthy_traffic() {
        let mut bake = BakeTest::new(config(), 100.0, 100_000.0);
        let mut bounds = vec![bake.summary().upper_bound];
        for _ in 0..3 {
            for _ in 0..10 {
                bake.observe(10_000.0, 10.0);
            }
            bounds.push(bake.summary().upper_bound);
        }
        assert_eq!(bounds[0], f64::INFINITY);
        assert!(bounds.windows(2).all(|w| w[1] < w[0]), "{bounds:?}");
    }

    #[test]
    fn the_stored_bake_bound_is_the_one_a_search_from_scratch_finds() {
        let mut bake = BakeTest::new(config(), 300.0, 300_000.0);
        for m in 0..40 {
            bake.observe(10_000.0, f64::from(5 + m % 13));
            let from_scratch = BakeTest {
                bound: None,
                ..bake.clone()
            };
            let stored: BakeTest =
                serde_json::from_str(&serde_json::to_string(&bake).unwrap()).unwrap();
            let expected = from_scratch.summary().upper_bound;
            assert!(expected.is_finite());
            assert_eq!(
                bake.summary().upper_bound.to_bits(),
                expected.to_bits(),
                "minute {m}"
            );
            assert_eq!(stored.summary().upper_bound.to_bits(), expected.to_bits());
            bake = stored;
        }
    }

    #[test]
    fn serde_round_trip_keeps_the_bakes_state() {
        let mut bake = BakeTest::new(config(), 8.0, 8400.0);
        bake.observe(600.0, 1.0);
        assert_round_trips(&bake);
        assert_round_trips(&bake.summary());
    }

    /// The fast seeded check of `rollout-sim --validity`'s bake e-process cells.
    #[test]
    fn healthy_bakes_are_rejected_within_alpha_and_tenfold_ones_caught() {
        use crate::sim::rng::Rng;
        use crate::sim::validity::{limit, models::bake_rejects, rate};
        let mut rng = Rng::from_seed(1);
        let healthy = rate(30, || bake_rejects(&mut rng, 10.0, 1.0));
        assert!(healthy <= limit(ALPHA, 30), "{healthy}");
        let tenfold = rate(10, || bake_rejects(&mut rng, 100.0, 10.0));
        assert_eq!(tenfold, 1.0);
    }

    #[test]
    fn bake_exposure_needed_counts_down_to_met() {
        let mut bake = BakeTest::new(config(), 8.0, 8400.0);
        let first = bake.summary().new_requests_needed;
        assert!(first.is_finite() && first > 0.0);
        bake.observe(first, first * 8.0 / 8400.0);
        assert!(bake.summary().exposure_met, "{:?}", bake.summary());
    }

    #[test]
    fn a_burst_scaled_bake_test_divides_each_minute_and_asks_for_raw_requests() {
        let config = RatioTestConfig {
            alpha: 0.0001,
            rho0: 1.5,
            ..RatioTestConfig::default_5xx()
        };
        let mut raw = BakeTest::new(config.clone(), 100.0, 100_000.0);
        let mut scaled = BakeTest::new(config.clone(), 100.0, 100_000.0).with_burst_scaling(4.0, 3);
        for _ in 0..3 {
            raw.observe(100.0, 1.0);
            scaled.observe(400.0, 4.0);
        }
        let (r, s) = (raw.summary(), scaled.summary());
        assert_eq!((s.new_total, s.new_bad), (r.new_total, r.new_bad));
        assert_eq!(s.e_value, r.e_value);
        assert_eq!((s.burst_divisor, r.burst_divisor), (Some(4.0), None));
        assert!(r.new_requests_needed > 0.0 && r.new_requests_needed.is_finite());
        let ratio = s.new_requests_needed / r.new_requests_needed;
        assert!((ratio - 4.0).abs() < 1e-9, "{ratio}");
        // Past its horizon of 3 minutes the scaled test counts nothing more.
        scaled.observe(400.0, 40.0);
        assert_eq!(scaled.summary(), s);
        for divisor in [1.0, 0.5, f64::NAN, f64::INFINITY] {
            let test =
                BakeTest::new(config.clone(), 100.0, 100_000.0).with_burst_scaling(divisor, 3);
            assert_eq!(test.summary().burst_divisor, None, "{divisor}");
        }
    }
}

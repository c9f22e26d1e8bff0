//! The split's e-process (`RatioTest`): a mixture of likelihood ratios on which version each
//! bad event came from, with its anytime-valid upper bound on the ratio and its exposure rule.

use super::burst_guard::burst_guarded;
use super::prior::{default_prior, MIRROR_DIVISORS};
#[cfg(test)]
use super::search::lowest_rejected;
use super::search::{lowest_rejected_near, BoundAt, StoredBound};
use super::special::{log_sum_exp, normal_cdf};
use super::{PairCounts, RatioSummary, RatioTestConfig, StatsError, DEFAULT_BASE_RATE_FLOOR};
use serde::{Deserialize, Serialize};

/// Cumulative state of a two-version test. Serializable (it lives in Durable Object
/// storage) and bounded in size whatever the number of minutes observed.
///
/// `config` is read when the test is built (the mixture's ratios are `rho0 ×` multipliers):
/// changing `rho0` afterwards is not supported; `alpha`, `rho_detect`, `power` and
/// `rho_tolerance` are read at `summary` time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioTest {
    pub config: RatioTestConfig,
    /// The mixture's alternatives with their running log-likelihood ratios.
    alternatives: Vec<Alternative>,
    /// Every valid minute observed.
    totals: PairCounts,
    /// Minutes where both versions served traffic (the only ones carrying evidence).
    paired: PairCounts,
    /// Minutes with bad events, for the upper bound; at most `EVIDENCE_CAP`, then folded.
    evidence: Vec<Evidence>,
    /// The new version's share in the latest paired minute.
    current_share: Option<f64>,
    /// Latched once the e-value reached `1/alpha`.
    rejected: bool,
    /// Smallest old-version bad rate the exposure rule assumes (see `with_base_rate_floor`).
    base_rate_floor: f64,
    /// The upper bound for the evidence as it stands, and the level it was found at: a
    /// summary reads it rather than searching again, and the next minute's search starts
    /// from it (`lowest_rejected_near`). Absent in tests stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bound: Option<StoredBound>,
}

/// Minutes with bad events kept for the upper bound before the closest shares are merged.
pub(super) const EVIDENCE_CAP: usize = 240;

/// One alternative ratio of the split mixture and what it has accumulated. Stored as a
/// 7-element array in this order (`AlternativeRow`): the alternatives are most of a
/// rollout's stored state, which every tick decodes and encodes, and their field names were
/// a third of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "AlternativeRow", into = "AlternativeRow")]
struct Alternative {
    /// ρ_i (> rho0).
    ratio: f64,
    /// ln w_i; the weights of a mixture sum to 1.
    log_weight: f64,
    /// ln Λ_T(ρ_i) against rho0.
    log_lr: f64,
    /// Σ new_total·a and Σ old_total·b over paired minutes, and the same with a², b²: the
    /// mean and variance of `log_lr` under a hypothetical regression, per unit of bad rate.
    new_a: f64,
    old_b: f64,
    new_a2: f64,
    old_b2: f64,
}

/// `Alternative` as stored: `[ratio, log_weight, log_lr, new_a, old_b, new_a2, old_b2]`.
type AlternativeRow = (f64, f64, f64, f64, f64, f64, f64);

impl From<AlternativeRow> for Alternative {
    fn from(row: AlternativeRow) -> Self {
        let (ratio, log_weight, log_lr, new_a, old_b, new_a2, old_b2) = row;
        Alternative {
            ratio,
            log_weight,
            log_lr,
            new_a,
            old_b,
            new_a2,
            old_b2,
        }
    }
}

impl From<Alternative> for AlternativeRow {
    fn from(a: Alternative) -> Self {
        (
            a.ratio,
            a.log_weight,
            a.log_lr,
            a.new_a,
            a.old_b,
            a.new_a2,
            a.old_b2,
        )
    }
}

/// A minute (or several merged minutes at nearly the same share) with bad events. Stored as
/// `[share, new_bad, old_bad]` (up to `EVIDENCE_CAP` of them).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "(f64, f64, f64)", into = "(f64, f64, f64)")]
struct Evidence {
    share: f64,
    new_bad: f64,
    old_bad: f64,
}

impl From<(f64, f64, f64)> for Evidence {
    fn from((share, new_bad, old_bad): (f64, f64, f64)) -> Self {
        Evidence {
            share,
            new_bad,
            old_bad,
        }
    }
}

impl From<Evidence> for (f64, f64, f64) {
    fn from(e: Evidence) -> Self {
        (e.share, e.new_bad, e.old_bad)
    }
}

/// Per-event log-likelihood-ratio terms of ratio `rho` against `rho0` at new-version share
/// `q`: a minute adds `new_bad·a + old_bad·b`, with p(ρ) = ρq/(ρq + 1 − q),
/// a = ln p(ρ)/p(ρ0) and b = ln (1 − p(ρ))/(1 − p(ρ0)).
pub(crate) fn event_log_lrs(rho: f64, rho0: f64, q: f64) -> (f64, f64) {
    let b = (rho0 * q + 1.0 - q).ln() - (rho * q + 1.0 - q).ln();
    ((rho / rho0).ln() + b, b)
}

impl RatioTest {
    /// A fresh test (e-value 1) with the default prior (`default_prior(config.rho0)`) and
    /// `DEFAULT_BASE_RATE_FLOOR`. Call `config.validate()` when loading configuration.
    pub fn new(config: RatioTestConfig) -> Self {
        let prior = default_prior(config.rho0);
        Self::build(config, &prior)
    }

    /// A fresh test with a custom prior: `(ratio, weight)` pairs, ratios above `rho0`,
    /// weights positive (normalised here). Fix it before seeing data, or validity is lost.
    ///
    /// # Errors
    /// An empty prior, or a ratio ≤ `rho0` or a weight ≤ 0.
    pub fn with_alternatives(
        config: RatioTestConfig,
        prior: &[(f64, f64)],
    ) -> Result<Self, StatsError> {
        if prior.is_empty() {
            return Err(StatsError::NoAlternatives);
        }
        for &(ratio, weight) in prior {
            let ok = ratio > config.rho0 && ratio.is_finite() && weight > 0.0;
            if !ok || !weight.is_finite() {
                let rho0 = config.rho0;
                return Err(StatsError::BadAlternative {
                    ratio,
                    weight,
                    rho0,
                });
            }
        }
        Ok(Self::build(config, prior))
    }

    /// Sets the smallest old-version bad rate (per request, ≥ 0) the exposure rule assumes.
    /// 0 means "never claim exposure without observed bad events".
    pub fn with_base_rate_floor(mut self, floor: f64) -> Self {
        self.base_rate_floor = if floor.is_finite() {
            floor.max(0.0)
        } else {
            0.0
        };
        self
    }

    fn build(config: RatioTestConfig, prior: &[(f64, f64)]) -> Self {
        let total: f64 = prior.iter().map(|(_, w)| w).sum();
        let alternatives = prior
            .iter()
            .map(|&(ratio, weight)| Alternative {
                ratio,
                log_weight: (weight / total).ln(),
                log_lr: 0.0,
                new_a: 0.0,
                old_b: 0.0,
                new_a2: 0.0,
                old_b2: 0.0,
            })
            .collect();
        RatioTest {
            config,
            alternatives,
            totals: PairCounts::default(),
            paired: PairCounts::default(),
            evidence: Vec::new(),
            current_share: None,
            rejected: false,
            base_rate_floor: DEFAULT_BASE_RATE_FLOOR,
            bound: None,
        }
    }

    /// Adds one minute of counts. A minute with no bad events moves the e-value not at all,
    /// but still counts as exposure. A minute where either version served nothing carries no
    /// evidence and no exposure (its counts still show in the summary's totals). Minutes with
    /// negative or non-finite counts are ignored. The caller dedupes minutes.
    pub fn observe(&mut self, minute: PairCounts) {
        if !minute.is_valid() {
            return;
        }
        self.totals.add(&minute);
        let Some(q) = minute.new_share() else {
            return;
        };
        self.paired.add(&minute);
        self.current_share = Some(q);
        let rho0 = self.config.rho0;
        let events = minute.new_bad + minute.old_bad;
        for alt in &mut self.alternatives {
            let (a, b) = event_log_lrs(alt.ratio, rho0, q);
            alt.log_lr += burst_guarded(minute.new_bad * a + minute.old_bad * b, events);
            alt.new_a += minute.new_total * a;
            alt.old_b += minute.old_total * b;
            alt.new_a2 += minute.new_total * a * a;
            alt.old_b2 += minute.old_total * b * b;
        }
        if minute.new_bad + minute.old_bad > 0.0 {
            self.record_evidence(q, minute.new_bad, minute.old_bad);
            let level = self.config.log_level();
            let at = self.search_bound(level, self.bound.map(|b| b.at));
            self.bound = Some(StoredBound { level, at });
        }
        if self.log_e_value() >= self.config.log_level() {
            self.rejected = true;
        }
    }

    /// Whether the e-value has reached 1/α at some minute (cheaper than `summary`, which
    /// also computes the bound and the exposure).
    pub fn rejected(&self) -> bool {
        self.rejected
    }

    /// The test's current verdict numbers.
    pub fn summary(&self) -> RatioSummary {
        let log_e = self.log_e_value();
        let needed = self.new_requests_needed();
        RatioSummary {
            new_total: self.totals.new_total,
            new_bad: self.totals.new_bad,
            old_total: self.totals.old_total,
            old_bad: self.totals.old_bad,
            e_value: log_e.exp(),
            threshold: 1.0 / self.config.alpha,
            regression: self.rejected || log_e >= self.config.log_level(),
            upper_bound: self.upper_bound(),
            exposure_met: needed == 0.0,
            new_requests_needed: needed,
            burst_divisor: None,
        }
    }

    /// Normal-approximation probability that a regression of `rho_detect` would have pushed
    /// the e-value to `1/alpha` by now, given the traffic served (0 without paired traffic).
    /// The exposure rule is `exposure_power() >= power`.
    pub fn exposure_power(&self) -> f64 {
        if self.paired.new_total <= 0.0 {
            return 0.0;
        }
        self.projections().map(|p| p.power()).fold(0.0, f64::max)
    }

    /// ln M_T = ln Σ w_i Λ_T(ρ_i).
    fn log_e_value(&self) -> f64 {
        log_sum_exp(self.alternatives.iter().map(|a| a.log_weight + a.log_lr))
    }

    fn record_evidence(&mut self, share: f64, new_bad: f64, old_bad: f64) {
        self.evidence.push(Evidence {
            share,
            new_bad,
            old_bad,
        });
        while self.evidence.len() > EVIDENCE_CAP {
            fold_closest_shares(&mut self.evidence);
        }
    }

    /// Anytime-valid upper bound: the smallest tolerance the mirror e-process rejects.
    fn upper_bound(&self) -> f64 {
        if self.evidence.is_empty() {
            return f64::INFINITY;
        }
        let level = self.config.log_level();
        // As stored for the evidence as it stands (every change of evidence stores it anew).
        match self.bound.and_then(|b| b.at_level(level)) {
            Some(bound) => bound,
            None => self.search_bound(level, self.bound.map(|b| b.at)).value(),
        }
    }

    /// Where the mirror e-process first rejects, searched from `hint`.
    fn search_bound(&self, level: f64, hint: Option<BoundAt>) -> BoundAt {
        lowest_rejected_near(|tol| mirror_log_e(&self.evidence, tol), level, hint)
    }

    /// The old-version bad rate a hypothetical regression is measured against.
    fn assumed_base_rate(&self) -> f64 {
        let requests = self.paired.new_total + self.paired.old_total;
        let pooled = if requests > 0.0 {
            (self.paired.new_bad + self.paired.old_bad) / requests
        } else {
            0.0
        };
        pooled.max(self.base_rate_floor)
    }

    /// Each alternative's projected log-LR under a regression of `rho_detect`.
    fn projections(&self) -> impl Iterator<Item = Projection> + '_ {
        let rate = self.assumed_base_rate();
        let (rho_d, level) = (self.config.rho_detect, self.config.log_level());
        let z = self.config.power_z();
        self.alternatives.iter().map(move |alt| Projection {
            mean: rate * (rho_d * alt.new_a + alt.old_b),
            var: rate * (rho_d * alt.new_a2 + alt.old_b2),
            level: level - alt.log_weight,
            z,
        })
    }

    /// New-version requests at the current share until some alternative's projection meets
    /// the power target (0 when met already).
    fn new_requests_needed(&self) -> f64 {
        let Some(q) = self.current_share else {
            return f64::INFINITY;
        };
        if self.paired.new_total > 0.0 && self.exposure_power() >= self.config.power {
            return 0.0;
        }
        let rate = self.assumed_base_rate();
        let (rho0, rho_d) = (self.config.rho0, self.config.rho_detect);
        let old_per_new = (1.0 - q) / q;
        self.alternatives
            .iter()
            .zip(self.projections())
            .map(|(alt, p)| {
                let (a, b) = event_log_lrs(alt.ratio, rho0, q);
                let d_mean = rate * (rho_d * a + old_per_new * b);
                let d_var = rate * (rho_d * a * a + old_per_new * b * b);
                p.requests_to_reach(d_mean, d_var)
            })
            .fold(f64::INFINITY, f64::min)
    }
}

/// Merges the two evidence entries with the closest shares (exact when the shares are equal,
/// a close approximation when they differ by sampling noise around the same step).
fn fold_closest_shares(evidence: &mut Vec<Evidence>) {
    evidence.sort_by(|x, y| x.share.total_cmp(&y.share));
    let gap = |i: usize| evidence[i].share - evidence[i - 1].share;
    let Some(i) = (1..evidence.len()).min_by(|&i, &j| gap(i).total_cmp(&gap(j))) else {
        return;
    };
    let (x, y) = (evidence[i - 1], evidence[i]);
    let (wx, wy) = (x.new_bad + x.old_bad, y.new_bad + y.old_bad);
    evidence[i - 1] = Evidence {
        share: (x.share * wx + y.share * wy) / (wx + wy),
        new_bad: x.new_bad + y.new_bad,
        old_bad: x.old_bad + y.old_bad,
    };
    evidence.remove(i);
}

/// ln of the mirror e-value against "ratio ≥ tolerance": alternatives `tolerance / d`.
/// Increasing in `tolerance` (each minute's log-LR is), so rejections form an upper interval.
///
/// The terms are `event_log_lrs`'s, computed once where they do not depend on the divisor or
/// the minute (ln ρ/ρ0 per divisor, ln(ρ0q + 1 − q) per minute), and summed minute by minute
/// in the same order: the same floats, for a third of the logarithms.
fn mirror_log_e(evidence: &[Evidence], tolerance: f64) -> f64 {
    let log_w = -(MIRROR_DIVISORS.len() as f64).ln();
    let rho = MIRROR_DIVISORS.map(|d| tolerance / d);
    let log_ratio = rho.map(|r| (r / tolerance).ln());
    let mut llr = [-0.0; MIRROR_DIVISORS.len()];
    for m in evidence {
        let q = m.share;
        let null = (tolerance * q + 1.0 - q).ln();
        for ((sum, r), log_ratio) in llr.iter_mut().zip(&rho).zip(&log_ratio) {
            let b = null - (r * q + 1.0 - q).ln();
            *sum += m.new_bad * (log_ratio + b) + m.old_bad * b;
        }
    }
    log_sum_exp(llr.iter().map(|l| log_w + l))
}

/// Normal approximation of one alternative's log-LR under a hypothetical regression:
/// it must clear `level` = ln(1/α) − ln w_i with probability ≥ Φ(z).
struct Projection {
    mean: f64,
    var: f64,
    level: f64,
    z: f64,
}

impl Projection {
    fn power(&self) -> f64 {
        if self.var <= 0.0 {
            return if self.mean >= self.level { 1.0 } else { 0.0 };
        }
        normal_cdf((self.mean - self.level) / self.var.sqrt())
    }

    /// Margin by which the power target is met after `x` more requests adding `d_mean`,
    /// `d_var` each.
    fn margin(&self, x: f64, d_mean: f64, d_var: f64) -> f64 {
        let sd = (self.var + x * d_var).max(0.0).sqrt();
        self.mean + x * d_mean - self.level - self.z * sd
    }

    /// Fewest extra requests after which the target is met; infinity if never.
    fn requests_to_reach(&self, d_mean: f64, d_var: f64) -> f64 {
        if self.margin(0.0, d_mean, d_var) >= 0.0 {
            return 0.0;
        }
        if d_mean <= 0.0 {
            return f64::INFINITY;
        }
        let mut hi = 1.0;
        while self.margin(hi, d_mean, d_var) < 0.0 {
            hi *= 2.0;
            if hi > 1e18 {
                return f64::INFINITY;
            }
        }
        let mut lo = 0.0;
        for _ in 0..64 {
            let mid = 0.5 * (lo + hi);
            if self.margin(mid, d_mean, d_var) >= 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi.ceil()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::{assert_round_trips, minute};

    fn config() -> RatioTestConfig {
        RatioTestConfig::default_5xx()
    }

    /// The reference note's plain prior: eight ratios, equal weights.
    fn equal_weight_prior() -> Vec<(f64, f64)> {
        [1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0]
            .iter()
            .map(|&r| (r, 1.0))
            .collect()
    }

    #[test]
    fn the_mirror_e_value_is_the_same_float_with_its_logarithms_shared() {
        // As computed before the terms that do not vary were hoisted.
        let by_divisor = |evidence: &[Evidence], tolerance: f64| {
            let log_w = -(MIRROR_DIVISORS.len() as f64).ln();
            log_sum_exp(MIRROR_DIVISORS.iter().map(|d| {
                let llr: f64 = evidence
                    .iter()
                    .map(|m| {
                        let (a, b) = event_log_lrs(tolerance / d, tolerance, m.share);
                        m.new_bad * a + m.old_bad * b
                    })
                    .sum();
                log_w + llr
            }))
        };
        let evidence: Vec<Evidence> = (0..240)
            .map(|i| Evidence {
                share: 0.05 + f64::from(i % 17) * 0.027,
                new_bad: f64::from(i % 5),
                old_bad: f64::from(3 + i % 11) * 1.5,
            })
            .collect();
        for tolerance in [1e-6, 0.3, 1.0, 1.7, 12.0, 1e6] {
            for n in [1, 7, 240] {
                assert_eq!(
                    mirror_log_e(&evidence[..n], tolerance).to_bits(),
                    by_divisor(&evidence[..n], tolerance).to_bits(),
                    "tolerance {tolerance}, {n} rows"
                );
            }
        }
    }

    #[test]
    fn the_stored_bound_is_the_one_a_search_from_scratch_finds() {
        let mut test = RatioTest::new(config());
        for m in 0..300 {
            let new_bad = f64::from(m % 4);
            test.observe(minute(1_000.0, new_bad, 9_000.0, 20.0 + f64::from(m % 9)));
            let level = test.config.log_level();
            let scratch = lowest_rejected(|tol| mirror_log_e(&test.evidence, tol), level).value();
            assert_eq!(
                test.summary().upper_bound.to_bits(),
                scratch.to_bits(),
                "minute {m}"
            );
            let stored: RatioTest =
                serde_json::from_str(&serde_json::to_string(&test).unwrap()).unwrap();
            assert_eq!(stored.summary().upper_bound.to_bits(), scratch.to_bits());
            test = stored;
        }
    }

    fn log_lr_at(test: &RatioTest, ratio: f64) -> f64 {
        let alt = test.alternatives.iter().find(|a| a.ratio == ratio);
        alt.expect("ratio on the grid").log_lr
    }

    #[test]
    fn three_new_errors_at_ten_percent_give_the_worked_example_e_values() {
        let mut test = RatioTest::with_alternatives(config(), &equal_weight_prior()).unwrap();
        test.observe(minute(100.0, 3.0, 900.0, 0.0));
        let lambda_20 = log_lr_at(&test, 20.0).exp();
        assert!((lambda_20 - 328.0).abs() < 1.0, "Λ(20) = {lambda_20}");
        let summary = test.summary();
        assert!(
            (summary.e_value - 144.2).abs() < 0.5,
            "M = {}",
            summary.e_value
        );
        assert!(summary.regression);
        assert_eq!(summary.threshold, 100.0);
    }

    #[test]
    fn minute_without_bad_events_moves_nothing_but_counts_as_exposure() {
        let mut test = RatioTest::new(config());
        test.observe(minute(600.0, 0.0, 5400.0, 0.0));
        assert_eq!(test.summary().e_value, 1.0);
        assert!(test.alternatives.iter().all(|a| a.log_lr == 0.0));
        assert!(test.exposure_power() > 0.0);
        assert_eq!(test.paired.new_total, 600.0);
    }

    #[test]
    fn minute_with_one_version_idle_carries_no_evidence() {
        let mut test = RatioTest::new(config());
        test.observe(minute(0.0, 0.0, 5400.0, 7.0));
        test.observe(minute(600.0, 4.0, 0.0, 0.0));
        let summary = test.summary();
        assert_eq!(summary.e_value, 1.0);
        assert_eq!((summary.new_bad, summary.old_bad), (4.0, 7.0));
        assert_eq!(test.paired, PairCounts::default());
        assert!(test.evidence.is_empty());
    }

    #[test]
    fn invalid_counts_are_ignored() {
        let mut test = RatioTest::new(config());
        test.observe(minute(f64::NAN, 1.0, 10.0, 0.0));
        test.observe(minute(10.0, -1.0, 10.0, 0.0));
        test.observe(minute(10.0, f64::INFINITY, 10.0, 0.0));
        assert_eq!(test, RatioTest::new(config()));
    }

    #[test]
    fn fractional_counts_use_real_exponents() {
        let mut test = RatioTest::new(config());
        test.observe(minute(50.0, 1.5, 50.0, 0.25));
        let alt = &test.alternatives[10];
        let (a, b) = event_log_lrs(alt.ratio, 1.0, 0.5);
        assert!((alt.log_lr - (1.5 * a + 0.25 * b)).abs() < 1e-12);
    }

    #[test]
    fn custom_prior_must_lie_above_rho0_with_positive_weights() {
        let cases: [(&[(f64, f64)], bool); 4] = [
            (&[(2.0, 1.0)], true),
            (&[(1.0, 1.0)], false),
            (&[(2.0, 0.0)], false),
            (&[], false),
        ];
        for (prior, ok) in cases {
            let built = RatioTest::with_alternatives(config(), prior);
            assert_eq!(built.is_ok(), ok, "{prior:?}");
        }
    }

    #[test]
    fn regression_stays_flagged_after_contrary_evidence() {
        let mut test = RatioTest::new(config());
        test.observe(minute(100.0, 4.0, 900.0, 0.0));
        assert!(test.summary().regression);
        for _ in 0..20 {
            test.observe(minute(500.0, 0.0, 500.0, 5.0));
        }
        let summary = test.summary();
        assert!(summary.e_value < summary.threshold);
        assert!(summary.regression);
    }

    #[test]
    fn upper_bound_is_unbounded_without_bad_events_or_with_only_new_ones() {
        let mut test = RatioTest::new(config());
        assert_eq!(test.summary().upper_bound, f64::INFINITY);
        test.observe(minute(500.0, 0.0, 500.0, 0.0));
        assert_eq!(test.summary().upper_bound, f64::INFINITY);
        test.observe(minute(500.0, 2.0, 500.0, 0.0));
        assert_eq!(test.summary().upper_bound, f64::INFINITY);
    }

    #[test]
    fn upper_bound_shrinks_with_evidence_of_health() {
        let mut test = RatioTest::new(config());
        let mut bounds = Vec::new();
        for m in 1..=60 {
            test.observe(minute(5000.0, 5.0, 5000.0, 5.0));
            if [5, 20, 60].contains(&m) {
                bounds.push(test.summary().upper_bound);
            }
        }
        assert!(bounds[0] > bounds[1] && bounds[1] > bounds[2], "{bounds:?}");
        assert!(bounds[2] < 1.5, "{bounds:?}");
        assert!(
            bounds[2] > 1.0,
            "600 balanced events cannot exclude ratio 1: {bounds:?}"
        );
    }

    #[test]
    fn evidence_history_is_folded_beyond_its_cap() {
        let mut test = RatioTest::new(config());
        for i in 0..(EVIDENCE_CAP + 50) {
            let new_total = 100.0 + (i % 7) as f64;
            test.observe(minute(new_total, 1.0, 900.0, 2.0));
        }
        assert_eq!(test.evidence.len(), EVIDENCE_CAP);
        let bad: f64 = test.evidence.iter().map(|e| e.new_bad + e.old_bad).sum();
        assert_eq!(bad, 3.0 * (EVIDENCE_CAP + 50) as f64);
    }

    #[test]
    fn exposure_is_never_met_without_new_version_traffic() {
        let mut test = RatioTest::new(config());
        let fresh = test.summary();
        assert!(!fresh.exposure_met);
        assert_eq!(fresh.new_requests_needed, f64::INFINITY);
        assert_eq!(test.exposure_power(), 0.0);
        for _ in 0..100 {
            test.observe(minute(0.0, 0.0, 1e6, 1000.0));
        }
        assert!(!test.summary().exposure_met);
        assert_eq!(test.exposure_power(), 0.0);
    }

    #[test]
    fn exposure_is_met_once_enough_new_traffic_has_been_served() {
        let mut test = RatioTest::new(config());
        let mut needed = Vec::new();
        for _ in 0..30 {
            test.observe(minute(3000.0, 3.0, 3000.0, 3.0));
            needed.push(test.summary().new_requests_needed);
        }
        assert!(needed.windows(2).all(|w| w[1] <= w[0]), "{needed:?}");
        assert_eq!(needed.last(), Some(&0.0), "{needed:?}");
        let first_met = needed.iter().position(|n| *n == 0.0).unwrap();
        // The first projection should have announced about the traffic it took.
        let announced = needed[0] / 3000.0;
        assert!(
            (announced - first_met as f64).abs() <= 2.0,
            "{announced} vs {first_met}"
        );
        assert!(test.exposure_power() >= 0.9);
        assert!(test.summary().exposure_met);
    }

    #[test]
    fn exposure_without_bad_events_relies_on_the_base_rate_floor() {
        let mut with_floor = RatioTest::new(config());
        let mut without = RatioTest::new(config()).with_base_rate_floor(0.0);
        for _ in 0..30 {
            with_floor.observe(minute(3000.0, 0.0, 3000.0, 0.0));
            without.observe(minute(3000.0, 0.0, 3000.0, 0.0));
        }
        assert!(with_floor.summary().exposure_met);
        let summary = without.summary();
        assert!(!summary.exposure_met);
        assert_eq!(summary.new_requests_needed, f64::INFINITY);
    }

    #[test]
    fn one_bursty_minute_cannot_reject_alone_but_a_sustained_regression_does() {
        // 1,400 of 2,000 5xx from the new version at a 50% share (×2.3 over rho0 = 1.5): an
        // unguarded likelihood ratio would be astronomical; guarded, it counts ×10 at most.
        let config = RatioTestConfig {
            rho0: 1.5,
            ..config()
        };
        let burst = minute(50_000.0, 1_400.0, 50_000.0, 600.0);
        let mut test = RatioTest::new(config.clone());
        test.observe(burst);
        let e = test.summary().e_value;
        assert!(
            e <= 10.0 + 1e-9 && !test.summary().regression,
            "e-value {e}"
        );
        for _ in 0..3 {
            test.observe(burst);
        }
        assert!(
            test.summary().regression,
            "four such minutes in a row are a regression"
        );
        // Below the guard's event count the same evidence per event is not clipped.
        let mut small = RatioTest::new(config);
        small.observe(minute(500.0, 45.0, 500.0, 4.0));
        assert!(small.summary().e_value > 10.0);
    }

    /// The fast seeded check of `rollout-sim --validity`'s split e-process cells.
    #[test]
    fn healthy_splits_are_rejected_within_alpha_and_fivefold_ones_caught() {
        use crate::sim::rng::Rng;
        use crate::sim::validity::models::{simulate_split, split_bound_misses, split_rejects};
        use crate::sim::validity::{limit, rate};
        let mut rng = Rng::from_seed(1);
        let mut rejects = |rps, ratio| {
            let minutes = simulate_split(&mut rng, rps, ratio);
            split_rejects(RatioTest::new(config()), &minutes)
        };
        let runs = 300;
        let healthy = rate(runs, || rejects(10.0, 1.0));
        assert!(healthy <= limit(0.01, runs), "{healthy}");
        let fivefold = rate(50, || rejects(100.0, 5.0));
        assert!(fivefold >= 0.95, "{fivefold}");
        let misses = rate(50, || split_bound_misses(&mut rng, 100.0));
        assert!(misses <= limit(0.01, 50), "{misses}");
    }

    #[test]
    fn serde_round_trip_keeps_state_and_infinite_bounds() {
        let mut test = RatioTest::new(config());
        test.observe(minute(600.0, 1.0, 5400.0, 4.0));
        assert_round_trips(&test);
        assert_round_trips(&test.summary());

        let summary = RatioTest::new(config()).summary();
        assert_eq!(summary.upper_bound, f64::INFINITY);
        let json = serde_json::to_string(&summary).unwrap();
        assert!(json.contains("\"upper_bound\":null"), "{json}");
        assert!(json.contains("\"new_requests_needed\":null"), "{json}");
        assert_eq!(
            serde_json::from_str::<RatioSummary>(&json).unwrap(),
            summary
        );
    }
}

//! The bake's e-process (`BakeTest`): the new version's bad events at 100% against the old
//! version's rate measured during the split, with its upper bound and exposure rule.

use super::burst_guard::{burst_guarded, BURST_MIN_EVENTS};
use super::prior::{default_prior, MIRROR_DIVISORS};
use super::ratio_test::EVIDENCE_CAP;
use super::search::{
    lowest_rejected_near_unless_below, minimise_mixtures, minimise_on_grid, BoundAt, StoredBound,
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
    /// What the exposure rule's searches have found (`Exposure`): the next one asks only
    /// about totals between its ends. Absent in tests stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exposure: Option<Exposure>,
}

/// The exposure rule (`BakeTest::met_after`) as the last minute left it: whether it holds
/// at the bake's total (`now`, computed there: it decides promotion), and where the searches
/// for the requests still needed found it not to hold (`unmet` requests or fewer) and to
/// hold (`met` or more). The rule depends only on the bake's total requests, the reference
/// counts and the configuration, which are fixed when the test is made, and it increases
/// with the total (the bisection of `new_requests_needed` relies on that too), so what one
/// search found answers the next one's questions outside `(unmet, met)`: the same answers in
/// a few minimisations instead of a dozen or more. Where the rule does not increase (a
/// reference of a few burst-scaled events, totals of millions), the number shown may differ
/// from a search from scratch, which is as arbitrary there; `now` never does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Exposure {
    now: bool,
    unmet: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    met: Option<f64>,
}

impl Exposure {
    /// What is known once the rule was computed at the bake's `total` (`now`): `known`,
    /// unless it says otherwise there (the rule does not increase there: nothing learnt
    /// stands).
    fn at(total: f64, now: bool, known: Option<Exposure>) -> Exposure {
        let mut exposure = known.unwrap_or_default();
        let contradicted = if now {
            total <= exposure.unmet
        } else {
            exposure.met.is_some_and(|met| met <= total)
        };
        if contradicted {
            exposure = Exposure::default();
        }
        exposure.now = now;
        if !now {
            exposure.unmet = exposure.unmet.max(total);
        }
        exposure
    }

    /// The rule at `total`: known, or `rule(total)`, which then narrows what is known.
    fn met_after(&mut self, total: f64, rule: impl FnOnce(f64) -> bool) -> bool {
        if total <= self.unmet {
            return false;
        }
        if self.met.is_some_and(|met| total >= met) {
            return true;
        }
        let met = rule(total);
        if met {
            self.met = Some(total);
        } else {
            self.unmet = total;
        }
        met
    }
}

/// The default prior's alternatives as the bake's e-values use them: ln of the weight, ln of
/// ρ/ρ0 and ρ − ρ0, computed once per call rather than at every step of its minimisations
/// (the same floats, so the same e-values to the bit).
fn bets(rho0: f64) -> Vec<(f64, f64, f64)> {
    default_prior(rho0)
        .into_iter()
        .map(|(rho, w)| (w.ln(), (rho / rho0).ln(), rho - rho0))
        .collect()
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
            exposure: None,
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
        let now = self.met_after(self.new_total);
        let mut exposure = Exposure::at(self.new_total, now, self.exposure);
        self.new_requests_needed(&mut exposure);
        self.exposure = Some(exposure);
    }

    /// Whether the e-value has reached 1/α at some minute (cheaper than `summary`, which
    /// also computes the bound and the exposure).
    pub fn rejected(&self) -> bool {
        self.rejected
    }

    /// Current verdict numbers; `old_*` fields carry the reference counts.
    pub fn summary(&self) -> RatioSummary {
        let log_e = self.log_e;
        // A copy: what this search learns is not kept (the next minute's search learns it).
        let mut exposure = self
            .exposure
            .unwrap_or_else(|| Exposure::at(self.new_total, self.met_after(self.new_total), None));
        let needed = self.new_requests_needed(&mut exposure);
        RatioSummary {
            new_total: self.new_total,
            new_bad: self.new_bad,
            old_total: self.reference_total,
            old_bad: self.reference_bad,
            e_value: log_e.exp(),
            threshold: 1.0 / self.config.alpha,
            regression: self.rejected || log_e >= self.config.log_level(),
            upper_bound: self.upper_bound(),
            exposure_met: exposure.now,
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
        let bets = bets(self.config.rho0);
        let log_b = |r: f64| {
            log_sum_exp(bets.iter().map(|&(ln_w, ln_ratio, excess)| {
                let log_lr = |total: f64, bad: f64| bad * ln_ratio - excess * r * total;
                let bursty: f64 = self
                    .bursty
                    .iter()
                    .map(|&(total, bad)| burst_guarded(log_lr(total, bad), bad))
                    .sum();
                ln_w + log_lr(calm_total, calm_bad) + bursty
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
        self.log_e_value_unless_below(bad, total, f64::NEG_INFINITY)
    }

    /// `log_e_value(bad, total)` where that is at least `level`, else some value below it,
    /// found in fewer evaluations where the e-value is below the level (`minimise_mixtures`).
    fn log_e_value_unless_below(&self, bad: f64, total: f64, level: f64) -> f64 {
        let reference = self.reference();
        if reference.total <= 0.0 {
            return 0.0;
        }
        // ln B(r): the bets on the bake's rate against ρ₀·r, each affine in r.
        let bets: Vec<(f64, f64)> = bets(self.config.rho0)
            .into_iter()
            .map(|(ln_w, ln_ratio, excess)| (ln_w + bad * ln_ratio, -excess * total))
            .collect();
        let too_high = reference.affine(&reference.down);
        minimise_mixtures(
            &[&bets, &too_high],
            reference.rate_cap(),
            reference.rate(),
            level,
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

    /// Where the mirror test first rejects, searched from `hint` (where it stopped for nearly
    /// the same counts), or without one from a rough guess (`bound_guess`): the same point
    /// either way, in fewer evaluations from a closer start.
    fn search_bound(&self, level: f64, hint: Option<BoundAt>) -> BoundAt {
        let Some(mirror) = self.mirror_log_e() else {
            return BoundAt::Unbounded;
        };
        let hint = match hint {
            Some(BoundAt::Lattice(m)) => Some(BoundAt::Lattice(m)),
            _ => BoundAt::near(bound_guess(
                level,
                (self.new_bad, self.new_total),
                (self.reference_bad, self.reference_total),
            )),
        };
        lowest_rejected_near_unless_below(mirror, level, hint)
    }

    /// ln of the mirror test's e-value at each tolerance for the counts as they stand, or
    /// any value below the second argument once it is certain to be there
    /// (`minimise_mixtures`; `f64::NEG_INFINITY`: exact) (`None` without a
    /// reference or bake requests: no bound).
    fn mirror_log_e(&self) -> Option<impl Fn(f64, f64) -> f64> {
        let reference = self.reference();
        if reference.total <= 0.0 || self.new_total <= 0.0 {
            return None;
        }
        let (bad, total) = (self.new_bad, self.new_total);
        let log_w = -(MIRROR_DIVISORS.len() as f64).ln();
        let too_low = reference.affine(&reference.up);
        Some(move |tol: f64, stop_below: f64| {
            // ln B(r) of the mirror: the bake's rate at tol·r/d for each divisor d, affine in r.
            let mirror = MIRROR_DIVISORS.map(|d| {
                let m = 1.0 / d;
                (log_w + bad * m.ln(), (1.0 - m) * tol * total)
            });
            minimise_mixtures(
                &[&mirror, &too_low],
                reference.rate_cap(),
                reference.rate(),
                stop_below,
            )
        })
    }

    /// Would a new version at `rho_detect × max(reference rate, floor)` have been flagged
    /// after `total` bake requests, with probability ≥ `power`? Evaluated exactly on the
    /// `1 − power` quantile of its bad-event count (normal approximation of the Poisson):
    /// the e-value is increasing in the count, so reaching the level there means reaching
    /// it with probability ≥ `power` (at the end; earlier crossings only add).
    fn met_after(&self, total: f64) -> bool {
        let level = self.config.log_level();
        self.exposure_log_e_unless_below(total, level) >= level
    }

    /// The ln e-value the exposure rule projects after `total` bake requests (−∞ without
    /// requests or a reference: never met).
    fn exposure_log_e(&self, total: f64) -> f64 {
        match self.exposure_counts(total) {
            Some((bad, total)) => self.log_e_value(bad, total),
            None => f64::NEG_INFINITY,
        }
    }

    /// `exposure_log_e(total)` where that is at least `level`, else some value below it
    /// (`log_e_value_unless_below`: a few evaluations far below the level).
    fn exposure_log_e_unless_below(&self, total: f64, level: f64) -> f64 {
        match self.exposure_counts(total) {
            Some((bad, total)) => self.log_e_value_unless_below(bad, total, level),
            None => f64::NEG_INFINITY,
        }
    }

    /// The bake counts the exposure rule projects after `total` bake requests (`None`
    /// without requests or a reference: never met).
    fn exposure_counts(&self, total: f64) -> Option<(f64, f64)> {
        if total <= 0.0 || self.reference_total <= 0.0 {
            return None;
        }
        let rate = (self.reference_bad / self.reference_total).max(self.base_rate_floor);
        let mean = self.config.rho_detect * rate * total;
        let low = (mean - self.config.power_z() * mean.sqrt()).max(0.0);
        Some((low, total))
    }

    /// Narrows `exposure` to within `width` requests by false position (Illinois) on the
    /// rule's ln e-value between `unmet` and `met`, the last totals computed not meeting and
    /// meeting it with their ln e-values: a few evaluations where the bisection of
    /// `new_requests_needed` takes a dozen, and only inside the range that bisection
    /// searches, so its questions get the rule's answers.
    fn narrow_exposure(
        &self,
        exposure: &mut Exposure,
        (mut a, fa): (f64, f64),
        (mut b, fb): (f64, f64),
        width: f64,
    ) {
        let level = self.config.log_level();
        let (mut fa, mut fb) = (fa - level, fb - level);
        let mut last = 0;
        for _ in 0..6 {
            if b - a <= width || !(fa.is_finite() && fb.is_finite()) || fb <= fa {
                return;
            }
            let inset = 0.01 * (b - a);
            let t = (b - fb * (b - a) / (fb - fa)).clamp(a + inset, b - inset);
            let mut log_e = f64::NAN;
            let met = exposure.met_after(t, |t| {
                log_e = self.exposure_log_e(t);
                log_e >= level
            });
            if log_e.is_nan() {
                return;
            }
            if met {
                (b, fb) = (t, log_e - level);
                if last == 1 {
                    fa /= 2.0;
                }
                last = 1;
            } else {
                (a, fa) = (t, log_e - level);
                if last == -1 {
                    fb /= 2.0;
                }
                last = -1;
            }
        }
    }

    /// Bake requests still needed to meet the exposure rule (0: met now), asking `exposure`
    /// first and narrowing it with what is computed.
    fn new_requests_needed(&self, exposure: &mut Exposure) -> f64 {
        if exposure.now {
            return 0.0;
        }
        let level = self.config.log_level();
        // The last totals computed not meeting and meeting the rule, the latter with its ln
        // e-value. The doubling's misses are computed only as far as it takes to see them
        // below the level (`exposure_log_e_unless_below`: a few evaluations each, where a
        // rule that is never met takes dozens of misses); the last one's ln e-value is
        // computed in full once a total meets the rule.
        let (mut unmet, mut met) = (None, None);
        let mut hi = self.new_total.max(1.0);
        loop {
            let found = exposure.met_after(hi, |t| {
                let log_e = self.exposure_log_e_unless_below(t, level);
                let found = log_e >= level;
                if found {
                    met = Some((t, log_e));
                } else {
                    unmet = Some(t);
                }
                found
            });
            if found {
                break;
            }
            hi *= 2.0;
            if hi > 1e15 {
                return f64::INFINITY;
            }
        }
        let width = 0.5 * (NEEDED_PRECISION * (hi - self.new_total)).max(1.0);
        if let (Some(a), Some(b)) = (unmet, met) {
            let a = (a, self.exposure_log_e(a));
            self.narrow_exposure(exposure, a, b, width);
        }
        let mut met_after = |total: f64| exposure.met_after(total, |t| self.met_after(t));
        // Each step costs a minimisation; `hi` always meets the rule, so the count errs high.
        let mut lo = self.new_total;
        while hi - lo > (NEEDED_PRECISION * (hi - self.new_total)).max(1.0) {
            let mid = 0.5 * (lo + hi);
            if met_after(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (hi - self.new_total).ceil()
    }
}

/// What `bound_guess` multiplies its Chernoff ratio by: the grid's first bake minutes had
/// bounds 1.1 to 1.5 times that ratio (the mirror's coarse divisors cost it more than the
/// Chernoff bound assumes).
const GUESS_FACTOR: f64 = 1.25;

/// A rough upper bound on (bake rate)/(reference rate) at e-value `level`, where a search
/// for the exact one starts: Chernoff bounds on each side's Poisson mean, the bake's above
/// its count and the reference's below, sharing `level` and the mirror's mixture cost (three
/// fifths to the bake), times `GUESS_FACTOR`. Within about 20% of the bound on the grid's
/// first bake minutes; it decides nothing, a closer guess only saves evaluations.
fn bound_guess(
    level: f64,
    (bad, total): (f64, f64),
    (reference_bad, reference_total): (f64, f64),
) -> f64 {
    let level = level + (MIRROR_DIVISORS.len() as f64).ln();
    let high = chernoff_mean(bad, 0.6 * level, true);
    let low = chernoff_mean(reference_bad, 0.4 * level, false);
    GUESS_FACTOR * (high / total) / (low / reference_total)
}

/// The Poisson mean μ above (`above`) or below `count` k at which the Chernoff exponent
/// μ − k − k·ln(μ/k) reaches `level`, by bisection in ln μ (a guess's precision).
fn chernoff_mean(count: f64, level: f64, above: bool) -> f64 {
    let k = count.max(1e-9);
    let exponent = |mu: f64| mu - k - k * (mu / k).ln();
    let (mut near, mut far) = if above {
        (k.ln(), (k + 2.0 * level + 1.0).ln())
    } else {
        (k.ln(), (k * 1e-9).ln())
    };
    for _ in 0..40 {
        let mid = 0.5 * (near + far);
        if exponent(mid.exp()) >= level {
            far = mid;
        } else {
            near = mid;
        }
    }
    far.exp()
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

    /// The reference's own rate, where the searches for r start.
    fn rate(&self) -> f64 {
        self.bad / self.total
    }

    /// `log_e_rate_scaled`'s terms for `alternatives` as (intercept, slope in r) pairs, the
    /// form `minimise_mixtures` takes.
    fn affine<const N: usize>(&self, alternatives: &[(f64, f64); N]) -> [(f64, f64); N] {
        let log_w = -(N as f64).ln();
        alternatives.map(|(m, ln_m)| (log_w + self.bad * ln_m, (1.0 - m) * self.total))
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
    use crate::stats::search::lowest_rejected;
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

    /// `new_requests_needed` as it was before it kept what it learnt: a plain bisection.
    fn needed_by_bisection(bake: &BakeTest) -> f64 {
        if bake.met_after(bake.new_total) {
            return 0.0;
        }
        let mut hi = bake.new_total.max(1.0);
        while !bake.met_after(hi) {
            hi *= 2.0;
            if hi > 1e15 {
                return f64::INFINITY;
            }
        }
        let mut lo = bake.new_total;
        while hi - lo > (NEEDED_PRECISION * (hi - bake.new_total)).max(1.0) {
            let mid = 0.5 * (lo + hi);
            if bake.met_after(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (hi - bake.new_total).ceil()
    }

    #[test]
    fn the_needed_requests_a_stored_bake_reports_are_the_plain_bisections() {
        // A quiet service (8 bad events in the split's 8400 requests) and a busy one.
        for (reference, requests, bad) in [
            ((8.0, 8400.0), 600.0, 1.0),
            ((300.0, 300_000.0), 2_000.0, 2.0),
        ] {
            let mut bake = BakeTest::new(config(), reference.0, reference.1);
            let mut met = false;
            for m in 0..60 {
                bake.observe(requests, bad * f64::from(m % 3));
                let json = serde_json::to_value(&bake).unwrap();
                let stored: BakeTest = serde_json::from_value(json.clone()).unwrap();
                // As a gate that did not keep it stored it.
                let mut older = json;
                older.as_object_mut().unwrap().remove("exposure");
                let older: BakeTest = serde_json::from_value(older).unwrap();
                let expected = needed_by_bisection(&bake);
                for test in [&bake, &stored, &older] {
                    let summary = test.summary();
                    assert_eq!(
                        summary.new_requests_needed.to_bits(),
                        expected.to_bits(),
                        "minute {m}"
                    );
                    assert_eq!(summary.exposure_met, expected == 0.0);
                }
                met |= expected == 0.0;
                bake = stored;
            }
            assert!(met, "the rule is met within the hour");
        }
    }

    #[test]
    fn the_exposure_rule_read_from_a_stopped_minimisation_is_the_rule_computed_in_full() {
        // A quiet service, a busy one, and a reference of five events (a burst-scaled one,
        // where the rule is met nowhere up to 10^15 requests and the doubling asks ~50 totals).
        for reference in [(8.0, 8400.0), (300.0, 300_000.0), (5.0, 60_000.0)] {
            let mut bake = BakeTest::new(config(), reference.0, reference.1);
            bake.observe(1_000.0, 1.0);
            let level = bake.config.log_level();
            let mut total = 1.0;
            while total <= 1e16 {
                let full = bake.exposure_log_e(total);
                let stopped = bake.exposure_log_e_unless_below(total, level);
                assert_eq!(
                    bake.met_after(total),
                    full >= level,
                    "{reference:?} at {total}"
                );
                assert_eq!(stopped >= level, full >= level, "{reference:?} at {total}");
                if full >= level {
                    assert_eq!(stopped.to_bits(), full.to_bits());
                }
                total *= 2.0;
            }
        }
    }

    #[test]
    fn whether_the_exposure_rule_holds_is_computed_not_taken_from_what_searches_learnt() {
        let mut bake = BakeTest::new(config(), 8.0, 8400.0);
        bake.observe(10.0, 0.0);
        assert!(!bake.summary().exposure_met);
        // What a rule that does not increase could leave: held from one request on.
        bake.exposure = Some(Exposure {
            now: false,
            unmet: 0.0,
            met: Some(1.0),
        });
        bake.observe(10.0, 0.0);
        assert!(!bake.met_after(bake.new_total));
        let summary = bake.summary();
        assert!(!summary.exposure_met, "{summary:?}");
        assert_eq!(
            summary.new_requests_needed.to_bits(),
            needed_by_bisection(&bake).to_bits()
        );
    }

    #[test]
    fn a_first_bound_searched_from_a_guess_is_the_one_the_bisection_finds() {
        let level = config().log_level();
        // (reference bad, requests), then the first bake minute's (requests, bad): quiet and
        // busy services, raw and burst-scaled, healthy and regressed.
        let cases = [
            ((20.0, 15_224.0), (333.3, 0.25)),
            ((7.0, 260.5), (8.85, 0.13)),
            ((504.0, 496_630.0), (19_292.0, 17.9)),
            ((10_147.0, 496_674.0), (19_295.0, 392.8)),
            ((9.0, 8_281.0), (604.0, 0.0)),
            ((152.0, 8_281.0), (604.0, 8.0)),
            ((8.0, 8_400.0), (600.0, 30.0)),
            ((100.0, 100_000.0), (10_000.0, 600.0)),
        ];
        for ((reference_bad, reference_total), (requests, bad)) in cases {
            let mut bake = BakeTest::new(config(), reference_bad, reference_total);
            bake.observe(requests, bad);
            let mirror = bake.mirror_log_e().expect("a bound");
            let scratch = lowest_rejected(|tol| mirror(tol, f64::NEG_INFINITY), level);
            assert_eq!(bake.bound.map(|b| b.at), Some(scratch), "{bake:?}");
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

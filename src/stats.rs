//! Anytime-valid statistics for the gate's count signals (5xx, slow requests, failed batches):
//! a mixture-likelihood-ratio e-process on "which version did each bad event come from" during a
//! split ([`RatioTest`]) and a one-sample version against the old version's measured rate for the
//! bake at 100% ([`BakeTest`]), and exact tests at the schedule's fixed looks
//! ([`ScheduledLooks`]). Pure and sync. Method and measured quality: docs/statistics.md.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod bake_looks;
mod bursts;
mod history;
mod looks;
pub use bake_looks::{BakeLook, BakeLooks, BakeSkipped};
pub use bursts::{BurstScale, Burstiness, SeriesTotals};
pub use history::{Baseline, HistoryLook, HistoryLooks, HistorySkipped, DRIFT_CHECK_ALPHA};
pub use looks::{
    binomial_upper_tail, conditional_power, Look, LookKind, LookSkipped, RobustLook,
    ScheduledLooks, MAX_EVENTS as LOOKS_MAX_EVENTS,
};

/// One minute's sample-weighted counts for the two versions serving side by side.
/// Counts are `SUM(_sample_interval)` values, so they may be non-integer after scaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairCounts {
    pub new_total: f64,
    pub new_bad: f64,
    pub old_total: f64,
    pub old_bad: f64,
}

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
}

/// What a test says now, with the numbers behind it (for Slack, the audit log, the page).
/// Non-finite `e_value`, `upper_bound` and `new_requests_needed` serialize as JSON `null`
/// and read back as `f64::INFINITY`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioSummary {
    /// Cumulative counts over all observed minutes (for the bake: `old_*` is the reference).
    pub new_total: f64,
    pub new_bad: f64,
    pub old_total: f64,
    pub old_bad: f64,
    /// The e-value M_T against "ratio ≤ rho0". `regression` is `e_value >= threshold`.
    #[serde(with = "infinite_as_null")]
    pub e_value: f64,
    /// The level the e-value must reach: `1/alpha`.
    pub threshold: f64,
    /// True once the test has rejected the null; stays true (the e-process is not reset).
    pub regression: bool,
    /// Anytime-valid upper confidence bound on the ratio; `f64::INFINITY` when unbounded.
    /// Valid at every minute simultaneously (not forced to be monotone).
    #[serde(with = "infinite_as_null")]
    pub upper_bound: f64,
    /// True when the exposure rule for promotion holds (see `RatioTestConfig`).
    pub exposure_met: bool,
    /// New-version requests still needed at the current share for the exposure rule (0 when
    /// met, `f64::INFINITY` when no amount of traffic at the current share would do).
    #[serde(with = "infinite_as_null")]
    pub new_requests_needed: f64,
    /// The bake's e-process on a bursty service: what each bake minute and the reference
    /// were divided by (`BakeTest::with_burst_scaling`); the counts above are the divided
    /// ones, `new_requests_needed` is in raw requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_divisor: Option<f64>,
}

impl RatioSummary {
    /// The pooled bad-event rate of both versions over the summary's counts, at least
    /// `floor`: the base rate a hypothetical regression is measured against when the
    /// scheduled looks' power counts toward the exposure rule.
    pub fn assumed_base_rate(&self, floor: f64) -> f64 {
        let requests = self.new_total + self.old_total;
        let pooled = if requests > 0.0 {
            (self.new_bad + self.old_bad) / requests
        } else {
            0.0
        };
        pooled.max(floor)
    }
}

/// Default smallest old-version bad-event rate (per request) the exposure rule assumes: with
/// fewer observed bad events, it asks whether a new version at `rho_detect ×` this rate would
/// have been caught. See docs/statistics.md, "Exposure rule". 0.5% (was 0.1%) was chosen with
/// the simulator: docs/benchmark.md, "Promotion evidence".
pub const DEFAULT_BASE_RATE_FLOOR: f64 = 0.005;

/// Minutes with bad events kept for the upper bound before the closest shares are merged.
const EVIDENCE_CAP: usize = 240;

/// Burst guard: a minute with at least this many bad events (both versions during a split,
/// the new version's in the bake) may raise each alternative's likelihood ratio by at most
/// `BURST_CLIP_LOG`. A burst that wobbles one version's rate by a third for a minute is
/// "overwhelming evidence" at thousands of events; clipped, it takes several such minutes
/// in a row. Capping a likelihood ratio can only lower its expectation, so the e-process stays
/// valid (docs/statistics.md, "Burst guard"). Minutes with fewer events are not clipped: their
/// ratio is bounded by the few events they carry, and low traffic needs every bit of it.
const BURST_MIN_EVENTS: f64 = 50.0;
/// ln 10: at most ×10 per bursty minute.
const BURST_CLIP_LOG: f64 = std::f64::consts::LN_10;

/// One minute's log-likelihood-ratio increment after the burst guard.
fn burst_guarded(increment: f64, events: f64) -> f64 {
    if events >= BURST_MIN_EVENTS {
        increment.min(BURST_CLIP_LOG)
    } else {
        increment
    }
}

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
const MIRROR_DIVISORS: [f64; 8] = [1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0];
/// Bake: alternatives for the reference rate, `r / k` and `r · k`, equal weights.
const REFERENCE_FACTORS: [f64; 12] = [
    1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0,
];
/// Search range for upper bounds (ratios).
const BOUND_LOWEST: f64 = 1e-6;
const BOUND_HIGHEST: f64 = 1e6;
/// Upper bounds are found to within this relative width (in ln), about 25 bisection steps.
const BOUND_PRECISION: f64 = 1e-6;
/// Requests still needed are found to within this share of them (they are shown, rounded, and
/// decide nothing), or one request.
const NEEDED_PRECISION: f64 = 1e-3;

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
    fn log_level(&self) -> f64 {
        -self.alpha.ln()
    }

    /// The normal quantile of `power`.
    fn power_z(&self) -> f64 {
        normal_quantile(self.power.clamp(1e-9, 1.0 - 1e-9))
    }
}

impl Default for RatioTestConfig {
    fn default() -> Self {
        Self::default_5xx()
    }
}

impl PairCounts {
    /// Divides every count by the mean Analytics Engine `_sample_interval` of the minute.
    /// A sampled count of k·s from k stored rows carries about the information of k events,
    /// not k·s: feeding `SUM(_sample_interval)` straight in overstates the evidence by ×s.
    /// Intervals ≤ 1 (or not finite) leave the counts unchanged.
    pub fn per_sample(self, sample_interval: f64) -> PairCounts {
        let s = if sample_interval.is_finite() && sample_interval > 1.0 {
            sample_interval
        } else {
            1.0
        };
        PairCounts {
            new_total: self.new_total / s,
            new_bad: self.new_bad / s,
            old_total: self.old_total / s,
            old_bad: self.old_bad / s,
        }
    }

    fn is_valid(&self) -> bool {
        [self.new_total, self.new_bad, self.old_total, self.old_bad]
            .iter()
            .all(|c| c.is_finite() && *c >= 0.0)
    }

    /// The share of the bad events that would come from the new version if its rate were
    /// `rho0` × the old one's (0 when either version served nothing).
    pub fn null_share(&self, rho0: f64) -> f64 {
        self.new_share()
            .map_or(0.0, |q| rho0 * q / (rho0 * q + 1.0 - q))
    }

    /// The new version's share of requests, when both versions served some.
    fn new_share(&self) -> Option<f64> {
        (self.new_total > 0.0 && self.old_total > 0.0)
            .then(|| self.new_total / (self.new_total + self.old_total))
    }

    fn add(&mut self, other: &PairCounts) {
        self.new_total += other.new_total;
        self.new_bad += other.new_bad;
        self.old_total += other.old_total;
        self.old_bad += other.old_bad;
    }
}

/// One alternative ratio of the split mixture and what it has accumulated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// A minute (or several merged minutes at nearly the same share) with bad events.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Evidence {
    share: f64,
    new_bad: f64,
    old_bad: f64,
}

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

fn log_spaced(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    let step = (hi / lo).ln() / (n.max(2) - 1) as f64;
    (0..n).map(move |i| lo * (step * i as f64).exp())
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

/// Per-event log-likelihood-ratio terms of ratio `rho` against `rho0` at new-version share
/// `q`: a minute adds `new_bad·a + old_bad·b`, with p(ρ) = ρq/(ρq + 1 − q),
/// a = ln p(ρ)/p(ρ0) and b = ln (1 − p(ρ))/(1 − p(ρ0)).
fn event_log_lrs(rho: f64, rho0: f64, q: f64) -> (f64, f64) {
    let b = (rho0 * q + 1.0 - q).ln() - (rho * q + 1.0 - q).ln();
    ((rho / rho0).ln() + b, b)
}

fn log_sum_exp(values: impl Iterator<Item = f64>) -> f64 {
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
        }
        if self.log_e_value() >= self.config.log_level() {
            self.rejected = true;
        }
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
        lowest_rejected(|tol| mirror_log_e(&self.evidence, tol), level)
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
fn mirror_log_e(evidence: &[Evidence], tolerance: f64) -> f64 {
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
}

/// The smallest tolerance in [1e-6, 1e6] at which `log_e` (increasing) reaches `level`,
/// rounded up (conservative); infinity when even 1e6 is not rejected.
fn lowest_rejected(log_e: impl Fn(f64) -> f64, level: f64) -> f64 {
    if log_e(BOUND_HIGHEST) < level {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
    if log_e(BOUND_LOWEST) >= level {
        return BOUND_LOWEST;
    }
    // Each step costs a minimisation in the bake's bound, so stop at a relative width of
    // `BOUND_PRECISION`; `hi` is always rejected, so the bound errs high.
    while hi - lo > BOUND_PRECISION {
        let mid = 0.5 * (lo + hi);
        if log_e(mid.exp()) >= level {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi.exp()
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
    #[serde(default)]
    bursty: Vec<(f64, f64)>,
    /// ln of the e-value at the last `observe` (what `summary` reports).
    #[serde(default)]
    log_e: f64,
    rejected: bool,
    base_rate_floor: f64,
    /// What each bake minute is divided by before it counts, and the bake minutes that
    /// divisor covers (`with_burst_scaling`).
    #[serde(default)]
    burst_divisor: Option<f64>,
    #[serde(default)]
    burst_horizon: Option<u32>,
    /// Bake minutes counted.
    #[serde(default)]
    minutes: u32,
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

    /// Anytime-valid upper bound on (bake rate)/(reference rate) via the mirror test.
    fn upper_bound(&self) -> f64 {
        let reference = self.reference();
        if reference.total <= 0.0 || self.new_total <= 0.0 {
            return f64::INFINITY;
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
        lowest_rejected(mirror, self.config.log_level())
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

/// Minimum on [0, hi] of a function that is convex but for the burst guard's kinks: the
/// best of 0 and 97 log-spaced points down to `hi`·1e-8, refined by golden section between
/// the best point's neighbours. (Reporting a point above the true minimum would overstate the
/// e-value; the grid keeps a kink from trapping the search far from it.)
fn minimise_on_grid(f: impl Fn(f64) -> f64, hi: f64) -> f64 {
    let grid: Vec<f64> = std::iter::once(0.0)
        .chain(log_spaced(hi * 1e-8, hi, 97))
        .collect();
    let values: Vec<f64> = grid.iter().map(|&r| f(r)).collect();
    let best = (0..grid.len())
        .min_by(|&i, &j| values[i].total_cmp(&values[j]))
        .unwrap_or(0);
    let lo = grid[best.saturating_sub(1)];
    let up = grid[(best + 1).min(grid.len() - 1)];
    golden_section(&f, lo, up).min(values[best])
}

/// Golden-section searches stop when their bracket is this share of its position.
const GOLDEN_PRECISION: f64 = 1e-11;

/// Minimum of a convex function on [0, hi] by golden-section search.
fn minimise_convex(f: impl Fn(f64) -> f64, hi: f64) -> f64 {
    golden_section(&f, 0.0, hi)
}

/// Golden-section search for the minimum of a unimodal function on [lo, hi] (ends included).
fn golden_section(f: &impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    const INV_PHI: f64 = 0.618_033_988_749_895;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - INV_PHI * (b - a);
    let mut d = a + INV_PHI * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    // Until the bracket is 10⁻¹¹ of where it sits, or 80 steps (where the minimum sits at
    // 0). A minimum found too high overstates an e-value, by about the bracket's square
    // times the counts: a helper measured up to 3·10⁻⁶ in ln at a width of 10⁻⁹ with
    // 6.6·10⁸ reference events and 5·10⁻¹⁰ at 10⁷, so about 10⁻¹³ at 10⁷ here.
    for _ in 0..80 {
        if b - a <= GOLDEN_PRECISION * a.abs().max(b.abs()) {
            break;
        }
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - INV_PHI * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + INV_PHI * (b - a);
            fd = f(d);
        }
    }
    [f(lo), fc, fd, f(hi)]
        .into_iter()
        .fold(f64::INFINITY, f64::min)
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
pub(crate) fn normal_cdf(x: f64) -> f64 {
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
fn normal_quantile(p: f64) -> f64 {
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

/// Serde for f64 fields that may be infinite: JSON has no infinity (serde_json writes `null`
/// and then refuses to read it back), so non-finite values go out as `null` and `null`
/// comes back as `f64::INFINITY`.
pub mod infinite_as_null {
    use super::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_some(value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::INFINITY))
    }
}

#[cfg(test)]
mod tests {
    //! Claims about the tests, exact small cases, and a seeded Monte Carlo of decision quality.
    //! The heavy report is `#[ignore]`d: see `decision_quality_report`.
    use super::*;

    const ALPHA: f64 = 0.01;

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

    /// One minute's counts (shared with `looks`' tests).
    pub(super) fn minute(new_total: f64, new_bad: f64, old_total: f64, old_bad: f64) -> PairCounts {
        PairCounts {
            new_total,
            new_bad,
            old_total,
            old_bad,
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
    fn per_sample_divides_counts_by_the_sample_interval() {
        let sampled = minute(600.0, 30.0, 5400.0, 10.0).per_sample(10.0);
        assert_eq!(sampled, minute(60.0, 3.0, 540.0, 1.0));
        assert_eq!(
            minute(1.0, 1.0, 1.0, 1.0).per_sample(0.5),
            minute(1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(
            minute(1.0, 1.0, 1.0, 1.0).per_sample(f64::NAN),
            minute(1.0, 1.0, 1.0, 1.0)
        );
    }

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
    fn config_validation_rejects_out_of_range_fields() {
        let base = config();
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

    /// serde_json parses floats to within an ulp unless its `float_roundtrip` feature is on,
    /// so stored state is compared number by number with a relative tolerance.
    fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value) {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} vs {y}");
            }
            (Value::Array(x), Value::Array(y)) => {
                assert_eq!(x.len(), y.len());
                x.iter().zip(y).for_each(|(x, y)| assert_json_close(x, y));
            }
            (Value::Object(x), Value::Object(y)) => {
                assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
                x.iter().for_each(|(k, v)| assert_json_close(v, &y[k]));
            }
            _ => assert_eq!(a, b),
        }
    }

    fn assert_round_trips<T: Serialize + for<'de> Deserialize<'de>>(value: &T) {
        let json = serde_json::to_value(value).unwrap();
        let restored: T = serde_json::from_value(json.clone()).unwrap();
        assert_json_close(&serde_json::to_value(&restored).unwrap(), &json);
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

        let mut bake = BakeTest::new(config(), 8.0, 8400.0);
        bake.observe(600.0, 1.0);
        assert_round_trips(&bake);
        assert_round_trips(&bake.summary());
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
    fn bake_exposure_needed_counts_down_to_met() {
        let mut bake = BakeTest::new(config(), 8.0, 8400.0);
        let first = bake.summary().new_requests_needed;
        assert!(first.is_finite() && first > 0.0);
        bake.observe(first, first * 8.0 / 8400.0);
        assert!(bake.summary().exposure_met, "{:?}", bake.summary());
    }

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

    // ---------- seeded Monte Carlo ----------

    /// SplitMix64: a tiny, good-enough PRNG for simulation (tests only).
    pub(super) struct SplitMix64(pub(super) u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let u = self.uniform().max(1e-300);
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
        }

        /// Knuth's product method below mean 50, a rounded normal above (request counts).
        pub(super) fn poisson(&mut self, mean: f64) -> f64 {
            if mean <= 0.0 {
                return 0.0;
            }
            if mean >= 50.0 {
                return (mean + mean.sqrt() * self.normal()).round().max(0.0);
            }
            let limit = (-mean).exp();
            let (mut k, mut product) = (0.0, self.uniform());
            while product > limit {
                k += 1.0;
                product *= self.uniform();
            }
            k
        }
    }

    /// The default schedule's split (10 minutes at 10%, 10 at 50%) at base 5xx rate 0.1%.
    const SPLIT: [(f64, usize); 2] = [(0.1, 10), (0.5, 10)];
    const BASE_RATE: f64 = 0.001;

    fn simulate_minute(rng: &mut SplitMix64, rps: f64, share: f64, ratio: f64) -> PairCounts {
        let new_total = rng.poisson(rps * 60.0 * share);
        let old_total = rng.poisson(rps * 60.0 * (1.0 - share));
        PairCounts {
            new_total,
            new_bad: rng.poisson(new_total * BASE_RATE * ratio),
            old_total,
            old_bad: rng.poisson(old_total * BASE_RATE),
        }
    }

    fn simulate_split(rng: &mut SplitMix64, rps: f64, ratio: f64) -> Vec<PairCounts> {
        SPLIT
            .iter()
            .flat_map(|&(share, minutes)| std::iter::repeat_n(share, minutes))
            .map(|share| simulate_minute(rng, rps, share, ratio))
            .collect()
    }

    /// Whether the split test rejects by the end of the split.
    fn flags(mut test: RatioTest, minutes: &[PairCounts]) -> bool {
        minutes.iter().any(|m| {
            test.observe(*m);
            test.rejected
        })
    }

    fn rejection_rate(rps: f64, ratio: f64, runs: usize, make: &dyn Fn() -> RatioTest) -> f64 {
        let mut rng = SplitMix64(0x5EED ^ (rps * 1000.0) as u64 ^ ((ratio * 100.0) as u64) << 32);
        let hits = (0..runs)
            .filter(|_| flags(make(), &simulate_split(&mut rng, rps, ratio)))
            .count();
        hits as f64 / runs as f64
    }

    /// α plus three binomial standard errors: the most an honest level-α test shows.
    fn alpha_tolerance(runs: usize) -> f64 {
        ALPHA + 3.0 * (ALPHA * (1.0 - ALPHA) / runs as f64).sqrt()
    }

    const TRAFFIC_LEVELS: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];

    #[test]
    fn aa_false_rollbacks_stay_under_alpha_at_every_traffic_level() {
        let runs = 1500;
        for rps in TRAFFIC_LEVELS {
            let rate = rejection_rate(rps, 1.0, runs, &|| RatioTest::new(config()));
            println!("A/A {rps} rps: {rate:.4}");
            assert!(rate <= alpha_tolerance(runs), "{rps} rps: {rate}");
        }
    }

    #[test]
    fn detects_the_target_regressions_well_above_the_plain_mixture() {
        // Light version of the report (400 runs): floors sit ~3 standard errors below the
        // figures measured with 20,000 runs (docs/statistics.md).
        let cells = [(10.0, 5.0, 0.58), (1.0, 20.0, 0.34), (100.0, 5.0, 0.99)];
        for (rps, ratio, floor) in cells {
            let rate = rejection_rate(rps, ratio, 400, &|| RatioTest::new(config()));
            println!("×{ratio} at {rps} rps: {rate:.3}");
            assert!(rate >= floor, "×{ratio} at {rps} rps: {rate}");
        }
    }

    #[test]
    fn upper_bound_covers_the_true_ratio() {
        let mut rng = SplitMix64(7);
        let runs = 300;
        let misses = (0..runs)
            .filter(|_| {
                let mut test = RatioTest::new(config());
                simulate_split(&mut rng, 100.0, 1.0)
                    .into_iter()
                    .for_each(|m| test.observe(m));
                test.summary().upper_bound < 1.0
            })
            .count();
        assert!(
            misses as f64 / runs as f64 <= alpha_tolerance(runs),
            "{misses}"
        );
    }

    /// The old version's counts over the split, as the bake's reference.
    fn simulate_reference(rng: &mut SplitMix64, rps: f64) -> (f64, f64) {
        simulate_split(rng, rps, 1.0)
            .iter()
            .fold((0.0, 0.0), |(bad, total), m| {
                (bad + m.old_bad, total + m.old_total)
            })
    }

    fn bake_flags(rng: &mut SplitMix64, rps: f64, ratio: f64) -> bool {
        let (bad, total) = simulate_reference(rng, rps);
        let mut bake = BakeTest::new(config(), bad, total);
        (0..10).any(|_| {
            let n = rng.poisson(rps * 60.0);
            bake.observe(n, rng.poisson(n * BASE_RATE * ratio));
            bake.rejected
        })
    }

    fn bake_rate(rps: f64, ratio: f64, runs: usize) -> f64 {
        let mut rng = SplitMix64(0xBA4E ^ (rps * 10.0) as u64 ^ ((ratio as u64) << 40));
        (0..runs)
            .filter(|_| bake_flags(&mut rng, rps, ratio))
            .count() as f64
            / runs as f64
    }

    #[test]
    fn bake_false_flags_stay_under_alpha_and_a_tenfold_rate_is_caught() {
        let runs = 300;
        for rps in [1.0, 10.0, 100.0] {
            let rate = bake_rate(rps, 1.0, runs);
            assert!(rate <= alpha_tolerance(runs), "bake A/A {rps} rps: {rate}");
        }
        let caught = bake_rate(100.0, 10.0, 100);
        assert!(caught >= 0.95, "bake ×10 at 100 rps: {caught}");
    }

    /// The heavy report behind docs/statistics.md. Run with
    /// `CARGO_TARGET_DIR=/work/target-stats cargo test --release --lib stats::tests::decision_quality_report -- --ignored --nocapture`
    #[test]
    #[ignore = "heavy Monte Carlo (about two minutes in release); prints the docs tables"]
    fn decision_quality_report() {
        let runs = 20_000;
        let ours = || RatioTest::new(config());
        let plain = || RatioTest::with_alternatives(config(), &equal_weight_prior()).unwrap();
        println!("| cell | ours | equal-weight 8-point |");
        println!("| --- | --- | --- |");
        for rps in TRAFFIC_LEVELS {
            let (a, b) = (
                rejection_rate(rps, 1.0, runs, &ours),
                rejection_rate(rps, 1.0, runs, &plain),
            );
            println!("| A/A {rps} rps | {a:.4} | {b:.4} |");
            assert!(a <= alpha_tolerance(runs));
        }
        let cells = [
            (0.1, 20.0),
            (1.0, 5.0),
            (1.0, 20.0),
            (10.0, 2.0),
            (10.0, 5.0),
            (10.0, 20.0),
            (100.0, 1.5),
            (100.0, 2.0),
            (100.0, 5.0),
            (1000.0, 1.5),
            (1000.0, 2.0),
        ];
        for (rps, ratio) in cells {
            let (a, b) = (
                rejection_rate(rps, ratio, runs, &ours),
                rejection_rate(rps, ratio, runs, &plain),
            );
            println!("| ×{ratio} at {rps} rps | {a:.4} | {b:.4} |");
        }
        report_bake(runs / 4);
        report_exposure_calibration(runs / 10);
        report_limits(runs / 5);
    }

    /// Log-LR of ratio `rho` against 1 over whole minutes (what every bound below is built on).
    fn split_log_lr(minutes: &[PairCounts], rho: f64) -> f64 {
        minutes
            .iter()
            .filter_map(|m| m.new_share().map(|q| (m, event_log_lrs(rho, 1.0, q))))
            .map(|(m, (a, b))| m.new_bad * a + m.old_bad * b)
            .sum()
    }

    /// ln of the null probability of a minute's split of its bad events (integer counts).
    fn log_null_probability(m: &PairCounts) -> f64 {
        let Some(q) = m.new_share() else { return 0.0 };
        let total = m.new_bad + m.old_bad;
        let log_choose: f64 = (0..m.new_bad as u64)
            .map(|i| ((total - i as f64) / (i as f64 + 1.0)).ln())
            .sum();
        log_choose + m.new_bad * q.ln() + m.old_bad * (1.0 - q).ln()
    }

    /// Reaches ln(1/α) at some minute, for a statistic computed on each prefix.
    fn crosses(minutes: &[PairCounts], stat: impl Fn(&[PairCounts]) -> f64) -> bool {
        (1..=minutes.len()).any(|t| stat(&minutes[..t]) >= -ALPHA.ln())
    }

    /// The bounds behind "physically impossible" in docs/statistics.md, for the target cells:
    /// - oracle: fixed-horizon log-LR of the true ratio, critical value = simulated null 99th
    ///   percentile (it knows the base rate and the traffic, and looks once);
    /// - GLR union: sup over ratios of Λ_t(ρ) ≥ 1/α at any minute, which every mixture of
    ///   likelihood ratios is below (Σ w_i Λ_i ≤ max_i Λ_i);
    /// - clairvoyant: any e-process on the split of bad events given the per-minute totals obeys
    ///   M_t ≤ 1/P_null(observed split), so it cannot reject before P_null ≤ α;
    /// - randomized final look (Ramdas & Manole): ours, plus rejecting at the end of the split
    ///   with probability α·M_T; valid, but a rollback decided by a coin.
    fn report_limits(runs: usize) {
        println!("\n| cell | ours | randomized final look | GLR union (any LR mixture) | clairvoyant | oracle |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for (rps, ratio) in [(10.0, 5.0), (1.0, 20.0), (100.0, 2.0)] {
            let mut rng = SplitMix64(0x0AC1E ^ rps as u64);
            let nulls: Vec<Vec<PairCounts>> = (0..runs)
                .map(|_| simulate_split(&mut rng, rps, 1.0))
                .collect();
            let mut null_llr: Vec<f64> = nulls.iter().map(|m| split_log_lr(m, ratio)).collect();
            null_llr.sort_by(f64::total_cmp);
            let critical = null_llr[runs * 99 / 100];
            let data: Vec<Vec<PairCounts>> = (0..runs)
                .map(|_| simulate_split(&mut rng, rps, ratio))
                .collect();
            let share = |hit: &dyn Fn(&[PairCounts]) -> f64| {
                data.iter().map(|m| hit(m)).sum::<f64>() / runs as f64
            };
            let oracle = share(&|m| f64::from(split_log_lr(m, ratio) > critical));
            let grid: Vec<f64> = (1..=200).map(|k| 1.04f64.powi(k)).collect();
            let glr = share(&|m| {
                f64::from(crosses(m, |p| {
                    grid.iter()
                        .map(|&r| split_log_lr(p, r))
                        .fold(f64::MIN, f64::max)
                }))
            });
            let clairvoyant = share(&|m| {
                f64::from(crosses(m, |p| {
                    -p.iter().map(log_null_probability).sum::<f64>()
                }))
            });
            let ours = share(&|m| f64::from(flags(RatioTest::new(config()), m)));
            let randomized = share(&|m| {
                let mut test = RatioTest::new(config());
                m.iter().for_each(|x| test.observe(*x));
                if test.rejected {
                    1.0
                } else {
                    (ALPHA * test.log_e_value().exp()).min(1.0)
                }
            });
            println!("| ×{ratio} at {rps} rps | {ours:.3} | {randomized:.3} | {glr:.3} | {clairvoyant:.3} | {oracle:.3} |");
        }
    }

    fn report_bake(runs: usize) {
        println!("\n| bake (10 min at 100%, reference = old version over the split) | flagged |");
        println!("| --- | --- |");
        for (rps, ratio) in [
            (1.0, 1.0),
            (10.0, 1.0),
            (100.0, 1.0),
            (1000.0, 1.0),
            (10.0, 5.0),
            (100.0, 2.0),
            (100.0, 5.0),
        ] {
            println!(
                "| ×{ratio} at {rps} rps | {:.4} |",
                bake_rate(rps, ratio, runs)
            );
        }
    }

    /// For healthy splits: how often the exposure rule (×5, 90%) holds at the end, and how
    /// often a ×5 regression at the same traffic is actually caught.
    fn report_exposure_calibration(runs: usize) {
        println!("\n| rps | exposure met (A/A, end of split) | ×5 caught by end of split |");
        println!("| --- | --- | --- |");
        for rps in [10.0, 20.0, 30.0, 50.0, 100.0] {
            let mut rng = SplitMix64(0xE4 ^ rps as u64);
            let met = (0..runs)
                .filter(|_| {
                    let mut test = RatioTest::new(config());
                    simulate_split(&mut rng, rps, 1.0)
                        .into_iter()
                        .for_each(|m| test.observe(m));
                    test.summary().exposure_met
                })
                .count() as f64
                / runs as f64;
            let caught = rejection_rate(rps, 5.0, runs, &|| RatioTest::new(config()));
            println!("| {rps} | {met:.3} | {caught:.3} |");
        }
        let mut test = RatioTest::new(config());
        for (share, minutes) in SPLIT {
            let (new_total, old_total) = (600.0 * share, 600.0 * (1.0 - share));
            let m = minute(
                new_total,
                new_total * BASE_RATE,
                old_total,
                old_total * BASE_RATE,
            );
            (0..minutes).for_each(|_| test.observe(m));
        }
        let s = test.summary();
        println!(
            "\n10 rps, expected counts: power {:.3}, {} more new-version requests at 50%",
            test.exposure_power(),
            s.new_requests_needed
        );
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

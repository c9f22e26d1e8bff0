//! The policy's configuration: every threshold and share behind the health decisions, with
//! documented defaults, and the checks that refuse a policy the tests cannot work with.

use serde::{Deserialize, Serialize};

/// Thresholds for one rollout. Stored in the rollout state, so a rollout keeps the policy
/// it started with. Every field has a default (see `Default`); JSON overrides may be partial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Total false-rollback budget of the sequential tests over the whole rollout (0.01).
    pub alpha: f64,
    /// How `alpha` is shared between the tests (union bound, see `AlphaSplit`).
    pub alpha_split: AlphaSplit,
    /// Practical-significance floor of the count tests: a rate ratio new/old ≤ this is
    /// "not worse" (1.5; 1.0 would flag any increase at huge traffic).
    pub rho0: f64,
    /// Promotion evidence: the anytime-valid upper bound on the ratio is below this (2.0).
    pub rho_tolerance: f64,
    /// Exposure rule: enough new-version traffic that a ratio this large would have been
    /// detected with probability ≥ `power` (10.0; must exceed `rho0`). Chosen with the
    /// simulator so a healthy release at 10 rps and 0.1% 5xx promotes on schedule; see
    /// docs/benchmark.md, "Promotion evidence", for the trade-off.
    pub rho_detect: f64,
    /// See `rho_detect` (0.9).
    pub power: f64,
    /// Absolute 5xx ceiling on the new version's rate over the trailing window (0.02),
    /// judged as an exact test of the stored rows at `CEILING_ALPHA` a look.
    pub error_rate_ceiling: f64,
    /// New-version rows Analytics Engine stored in the trailing window (not the requests
    /// they stand for) needed to judge the 5xx ceiling (200). Read from
    /// `error_ceiling_min_requests` too, the name of a policy stored by an earlier release.
    #[serde(alias = "error_ceiling_min_requests")]
    pub error_ceiling_min_rows: f64,
    /// Trailing window for the 5xx and p95 ceilings, in minutes (5).
    pub window_minutes: u32,
    /// Absolute p95 latency ceiling in ms; also the "slow request" threshold (250). Judged
    /// as an exact test of "at most `P95_TAIL_SHARE` of the stored rows over it" at
    /// `CEILING_ALPHA` a look.
    pub latency_p95_ceiling_ms: f64,
    /// A request slower than this many times the p95 ceiling is "very slow" (4: 1 s by
    /// default). Very slow requests get their own exact looks (`AlphaSplit::very_slow_split`):
    /// a tail regression (a few requests stalling) barely moves p95 or the slow share, but
    /// multiplies the very slow share many times over.
    pub very_slow_factor: f64,
    /// A request slower than this fraction of the p95 ceiling is "approaching" it (0.5: 125
    /// ms by default). A latency shift moves these long before p95 reaches the ceiling, and
    /// they are many, so their looks (`approach_share`) see a shift the slow-request tests
    /// see only late; the looks model burstiness from the window before the rollout.
    pub approach_factor: f64,
    /// New-version rows stored in the trailing window needed to judge the p95 ceiling (50).
    /// Read from `latency_min_requests` too, the name of a policy stored by an earlier
    /// release.
    #[serde(alias = "latency_min_requests")]
    pub latency_ceiling_min_rows: f64,
    /// Consecutive judged windows over the p95 ceiling before unhealthy (3).
    pub latency_consecutive: u32,
    /// Consecutive failed `/healthz` probes before unhealthy (3).
    pub healthz_failures: u32,
    /// Queue thresholds; `None` (default) when the script has no queue to watch.
    pub queue: Option<QueueThresholds>,
    /// Minutes a step may go without evidence (failed/empty sources) before pausing (10).
    pub max_minutes_without_evidence: u32,
    /// Analytics Engine ingestion lag: the newest minutes not yet counted (2).
    pub ingestion_lag_minutes: u32,
    /// Share of each split and bake test's α spent at exact looks (0.75): for a split test
    /// the scheduled looks, mostly when a split step's dwell ends and once the whole split is
    /// counted (for 5xx, shared with the history looks: `history_share`); for a bake test
    /// the bake looks, mostly when the bake's dwell ends. The rest goes to the anytime
    /// e-process, which catches large regressions between looks. 0 turns looks off.
    pub look_share: f64,
    /// Share of each split step's slice of the looks' budget that the looks before the end
    /// of its dwell may spend, growing with the square of the dwell elapsed (0.25): faster
    /// detection of large regressions, at a small cost to the end-of-step and closing looks.
    pub look_interim_share: f64,
    /// Null of the scheduled looks: ratio ≤ this (1.0, "any increase"). The looks only run
    /// where counts are low enough for the Poisson model to hold (next field), which is
    /// where the e-process's floor `rho0` costs most detection.
    pub look_rho0: f64,
    /// Skip the looks when the split averaged more bad events per minute than this (30):
    /// beyond it, burstiness confined to one version outweighs Poisson noise and the exact
    /// test would be overconfident (docs/benchmark.md, "Overdispersion").
    pub look_max_events_per_minute: f64,
    /// Minutes before the rollout over which the old version's own rates are read, as the
    /// baseline of the history looks (180; 0 turns them off, at most 1440). At low traffic
    /// this is what tells a handful of new-version 5xx from bad luck.
    pub history_minutes: u32,
    /// Share of the 5xx split test's looks budget (`look_share` of its α) spent at the
    /// history looks (0.25); the scheduled looks keep the rest. 0 turns them off. Slow
    /// requests have none: they are many (the concurrent tests see them well) and their
    /// rate drifts with load.
    pub history_share: f64,
    /// Share of the 5xx split and bake tests' looks budgets spent at their onset looks
    /// (0.15), which test the newest few minutes alone, for a regression that starts after
    /// healthy minutes; the scheduled and bake looks keep what the history and onset looks
    /// leave. 0 turns them off.
    pub onset_share: f64,
    /// Null of the history looks: new rate ≤ this × the old version's rate before the
    /// rollout (1.5): how far the old version's own rate may drift between the window and
    /// the split before the history looks lean on the guard (next field).
    pub history_margin: f64,
    /// Level of the concurrent guard (0.05): a history look rejects only when exact
    /// concurrent looks of "new ≤ old" at this level have rejected too, which bounds false
    /// rollbacks through the history looks by this, whatever the drift.
    pub history_guard_alpha: f64,
    /// Share of the slow-request split test's looks budget (`look_share` of its α) spent at
    /// the approach looks (`approach_factor`; 0.5); the slow-request looks keep the rest. 0,
    /// or `history_minutes` under 30 (their burstiness comes from that window), turns them
    /// off.
    pub approach_share: f64,
    /// Null of the approach looks: the new version's share of requests approaching the
    /// ceiling is at most this × the old version's (1.1). Not 1 like `look_rho0`: these
    /// counts are large, so a ratio of 1 would roll back a release a few percent slower
    /// (for the grid's latency model 1.1 is about 4% slower, 1.25 about 10%).
    pub approach_rho0: f64,
}

/// The very slow looks skip above this many events a minute (or the policy's
/// `look_max_events_per_minute`, if lower): very slow requests are meant to be rare, and
/// where they are common the slow-request tests see a tail regression well (it doubles
/// their count), while per-version bursts would make an exact test overconfident.
pub const VERY_SLOW_MAX_EVENTS_PER_MINUTE: f64 = 10.0;

/// Looks fed burst-scaled counts (the approach looks always; the 5xx and slow-request looks
/// where the window before the rollout was busy) model burstiness instead of skipping where
/// it would matter, and thin each minute to at most this many expected events (after the
/// inflation): at 10 rps an approach minute has about 130, and where there are more, the
/// extra power is not needed while the exact looks' work grows with the square of the
/// events they count.
pub const SCALED_EVENTS_PER_MINUTE: f64 = 200.0;

/// The skip limit of looks fed burst-scaled counts: only a backstop far above what thinning
/// lets through.
pub const SCALED_MAX_EVENTS_PER_MINUTE: f64 = 5_000.0;

/// Level of each look of the absolute ceilings' exact tests: the chance that one look
/// finds a version exactly at a ceiling over it (far less for one below it). The ceilings
/// are looked at every minute, so this is a rate per look, outside the α budget.
pub const CEILING_ALPHA: f64 = 0.001;

/// The share of requests a p95 leaves above it: p95 ≤ the ceiling exactly when at most this
/// share of requests is slower than the ceiling, which is what the p95 ceiling tests.
pub const P95_TAIL_SHARE: f64 = 0.05;

/// Longest baseline window the history looks may read (a day).
pub const MAX_HISTORY_MINUTES: u32 = 1440;

/// Shares of `alpha` for the five sequential tests that can roll back. They run on
/// different data but may all look at the same release, so the chance that *any* of them
/// falsely fires is at most the sum of their alphas (union bound); the shares must sum to
/// ≤ 1. Default: 5xx during the split 0.8, slow requests during the split 0.1, 5xx during
/// the bake 0.05, slow requests during the bake 0.03, very slow requests during the split
/// 0.02: most budget where most decisions are (each of the first four shares is then
/// divided between the anytime e-process and exact looks by `Policy::look_share`).
/// Chosen with the simulator: docs/benchmark.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlphaSplit {
    /// 5xx, new vs old over the same minutes.
    pub errors_split: f64,
    /// Requests slower than the ceiling, new vs old. Also read as `latency_split`, its name
    /// in POLICY values and stored rollouts of earlier releases.
    #[serde(alias = "latency_split")]
    pub slow_split: f64,
    /// 5xx at 100% against the old version's split-time rate.
    pub errors_bake: f64,
    /// Slow requests at 100% against the old version's split-time rate. Also read as
    /// `latency_bake`.
    #[serde(alias = "latency_bake")]
    pub slow_bake: f64,
    /// Very slow requests (`Policy::very_slow_factor`), new vs old, at the scheduled looks
    /// only (no e-process, no bake); 0 turns them off.
    pub very_slow_split: f64,
}

/// Queue thresholds (queue depth is not per version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueThresholds {
    /// Backlog above this breaches (1000 messages).
    pub max_depth: f64,
    /// Retries per minute above this breach (100).
    pub max_retries_per_minute: f64,
    /// Consecutive breaching ticks before unhealthy (3).
    pub consecutive: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            alpha: 0.01,
            alpha_split: AlphaSplit::default(),
            rho0: 1.5,
            rho_tolerance: 2.0,
            rho_detect: 10.0,
            power: 0.9,
            error_rate_ceiling: 0.02,
            error_ceiling_min_rows: 200.0,
            window_minutes: 5,
            latency_p95_ceiling_ms: 250.0,
            very_slow_factor: 4.0,
            approach_factor: 0.5,
            latency_ceiling_min_rows: 50.0,
            latency_consecutive: 3,
            healthz_failures: 3,
            queue: None,
            max_minutes_without_evidence: 10,
            ingestion_lag_minutes: 2,
            look_share: 0.75,
            look_interim_share: 0.25,
            look_rho0: 1.0,
            look_max_events_per_minute: 30.0,
            history_minutes: 180,
            history_share: 0.25,
            onset_share: 0.15,
            history_margin: 1.5,
            history_guard_alpha: 0.05,
            approach_share: 0.5,
            approach_rho0: 1.1,
        }
    }
}

impl Default for AlphaSplit {
    fn default() -> Self {
        AlphaSplit {
            errors_split: 0.8,
            slow_split: 0.1,
            errors_bake: 0.05,
            slow_bake: 0.03,
            very_slow_split: 0.02,
        }
    }
}

impl Default for QueueThresholds {
    fn default() -> Self {
        QueueThresholds {
            max_depth: 1000.0,
            max_retries_per_minute: 100.0,
            consecutive: 3,
        }
    }
}

/// Why a policy was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A number outside its allowed range.
    #[error("{field} = {value} is outside {expected}")]
    OutOfRange {
        field: &'static str,
        value: f64,
        expected: &'static str,
    },
    /// The alpha shares add up to more than the whole budget.
    #[error(
        "alpha_split shares sum to {sum:.4}, more than 1 ({shares}): lower one of them (a \
         POLICY written for the four shares before very_slow_split existed sums to 1.02 \
         with its default 0.02; take it from slow_bake, now 0.03 by default, or set \
         very_slow_split to 0)"
    )]
    AlphaSplitOverBudget { sum: f64, shares: String },
    /// A sequential test cannot work with the derived configuration.
    #[error("{test:?} test: {source}")]
    Test {
        test: CountTest,
        source: crate::stats::StatsError,
    },
}

/// Which of the four e-process tests (each with its exact looks; very slow requests have
/// looks only: `Policy::very_slow_looks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountTest {
    /// 5xx, new vs old.
    ErrorsSplit,
    /// Slow requests, new vs old.
    SlowSplit,
    /// 5xx at 100%.
    ErrorsBake,
    /// Slow requests at 100%.
    SlowBake,
}

impl CountTest {
    /// The four tests, in alpha-split order.
    pub const ALL: [CountTest; 4] = [
        CountTest::ErrorsSplit,
        CountTest::SlowSplit,
        CountTest::ErrorsBake,
        CountTest::SlowBake,
    ];
}

impl Policy {
    /// Checks ranges and the alpha budget.
    ///
    /// # Errors
    /// The first out-of-range field, or an alpha split over 1.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let open01 = [("alpha", self.alpha), ("power", self.power)];
        for (field, value) in open01 {
            if !(value > 0.0 && value < 1.0) {
                return Err(out_of_range(field, value, "(0, 1)"));
            }
        }
        let ratios = [
            ("rho0", self.rho0),
            ("rho_tolerance", self.rho_tolerance),
            ("rho_detect", self.rho_detect),
        ];
        for (field, value) in ratios {
            if !(value.is_finite() && value >= 1.0) {
                return Err(out_of_range(field, value, "[1, ∞)"));
            }
        }
        if !(self.error_rate_ceiling > 0.0 && self.error_rate_ceiling <= 1.0) {
            return Err(out_of_range(
                "error_rate_ceiling",
                self.error_rate_ceiling,
                "(0, 1]",
            ));
        }
        let min_rows = [
            ("error_ceiling_min_rows", self.error_ceiling_min_rows),
            ("latency_ceiling_min_rows", self.latency_ceiling_min_rows),
        ];
        for (field, value) in min_rows {
            if !(value.is_finite() && value >= 0.0) {
                return Err(out_of_range(field, value, "[0, ∞)"));
            }
        }
        if !(self.latency_p95_ceiling_ms.is_finite() && self.latency_p95_ceiling_ms > 0.0) {
            return Err(out_of_range(
                "latency_p95_ceiling_ms",
                self.latency_p95_ceiling_ms,
                "(0, ∞)",
            ));
        }
        if !(self.very_slow_factor > 1.0 && self.very_slow_ms().is_finite()) {
            return Err(out_of_range(
                "very_slow_factor",
                self.very_slow_factor,
                "(1, ∞)",
            ));
        }
        if !(self.approach_factor > 0.0 && self.approach_factor < 1.0) {
            return Err(out_of_range(
                "approach_factor",
                self.approach_factor,
                "(0, 1)",
            ));
        }
        let counts = [
            ("window_minutes", self.window_minutes),
            ("latency_consecutive", self.latency_consecutive),
            ("healthz_failures", self.healthz_failures),
            (
                "max_minutes_without_evidence",
                self.max_minutes_without_evidence,
            ),
        ];
        for (field, value) in counts {
            if value == 0 {
                return Err(out_of_range(field, 0.0, "[1, ∞)"));
            }
        }
        if !(self.look_share >= 0.0 && self.look_share < 1.0) {
            return Err(out_of_range("look_share", self.look_share, "[0, 1)"));
        }
        if !(0.0..=1.0).contains(&self.look_interim_share) {
            return Err(out_of_range(
                "look_interim_share",
                self.look_interim_share,
                "[0, 1]",
            ));
        }
        if !(self.look_rho0.is_finite() && self.look_rho0 >= 1.0) {
            return Err(out_of_range("look_rho0", self.look_rho0, "[1, ∞)"));
        }
        if !(self.look_max_events_per_minute.is_finite() && self.look_max_events_per_minute > 0.0) {
            return Err(out_of_range(
                "look_max_events_per_minute",
                self.look_max_events_per_minute,
                "(0, ∞)",
            ));
        }
        if self.history_minutes > MAX_HISTORY_MINUTES {
            return Err(out_of_range(
                "history_minutes",
                f64::from(self.history_minutes),
                "[0, 1440]",
            ));
        }
        if !(self.history_share >= 0.0 && self.history_share < 1.0) {
            return Err(out_of_range("history_share", self.history_share, "[0, 1)"));
        }
        if !(self.onset_share >= 0.0 && self.history_share + self.onset_share < 1.0) {
            return Err(out_of_range(
                "onset_share",
                self.onset_share,
                "[0, 1 − history_share)",
            ));
        }
        if !(self.approach_share >= 0.0 && self.approach_share < 1.0) {
            return Err(out_of_range(
                "approach_share",
                self.approach_share,
                "[0, 1)",
            ));
        }
        if !(self.approach_rho0.is_finite() && self.approach_rho0 >= 1.0) {
            return Err(out_of_range("approach_rho0", self.approach_rho0, "[1, ∞)"));
        }
        if !(self.history_margin.is_finite() && self.history_margin >= 1.0) {
            return Err(out_of_range(
                "history_margin",
                self.history_margin,
                "[1, ∞)",
            ));
        }
        if !(self.history_guard_alpha > 0.0 && self.history_guard_alpha < 1.0) {
            return Err(out_of_range(
                "history_guard_alpha",
                self.history_guard_alpha,
                "(0, 1)",
            ));
        }
        let s = &self.alpha_split;
        let shares = [s.errors_split, s.slow_split, s.errors_bake, s.slow_bake];
        if let Some(share) = shares
            .iter()
            .find(|share| !(**share > 0.0 && **share <= 1.0))
        {
            return Err(out_of_range("alpha_split share", *share, "(0, 1]"));
        }
        if !(0.0..=1.0).contains(&s.very_slow_split) {
            return Err(out_of_range(
                "alpha_split.very_slow_split",
                s.very_slow_split,
                "[0, 1]",
            ));
        }
        let sum: f64 = shares.iter().sum::<f64>() + s.very_slow_split;
        if sum > 1.0 + 1e-9 {
            let shares = format!(
                "errors_split {} + slow_split {} + errors_bake {} + slow_bake {} + \
                 very_slow_split {}",
                s.errors_split, s.slow_split, s.errors_bake, s.slow_bake, s.very_slow_split
            );
            return Err(PolicyError::AlphaSplitOverBudget { sum, shares });
        }
        for test in CountTest::ALL {
            self.test_config(test)
                .validate()
                .map_err(|source| PolicyError::Test { test, source })?;
        }
        Ok(())
    }

    /// The very-slow-request threshold in ms: `very_slow_factor` × the p95 ceiling.
    pub fn very_slow_ms(&self) -> f64 {
        self.very_slow_factor * self.latency_p95_ceiling_ms
    }

    /// The approaching threshold in ms: `approach_factor` × the p95 ceiling.
    pub fn approach_ms(&self) -> f64 {
        self.approach_factor * self.latency_p95_ceiling_ms
    }
}

fn out_of_range(field: &'static str, value: f64, expected: &'static str) -> PolicyError {
    PolicyError::OutOfRange {
        field,
        value,
        expected,
    }
}

#[cfg(test)]
mod tests;

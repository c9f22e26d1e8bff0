//! Policy: the thresholds behind every health decision, with documented defaults, and the
//! pure functions that turn one signal's numbers into a `Verdict` (healthy / unhealthy with
//! reasons and numbers / inconclusive with why). Missing data is never healthy.

use crate::observe::{Probe, QueueMetrics, VersionLatency};
use crate::stats::{
    BakeLook, BakeLooks, BakeSkipped, Burstiness, HistoryLook, HistoryLooks, HistorySkipped, Look,
    LookKind, LookSkipped, RatioSummary, RatioTestConfig, ScheduledLooks, LOOKS_MAX_EVENTS,
};
use serde::{Deserialize, Serialize};

mod verdict;
pub use verdict::{describe_needed, Breach, Gap, Reason, Signal, Verdict};

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
    /// Absolute 5xx ceiling on the new version's rate over the trailing window (0.02).
    pub error_rate_ceiling: f64,
    /// New-version requests needed in the trailing window to judge the 5xx ceiling (200).
    pub error_ceiling_min_requests: f64,
    /// Trailing window for the 5xx ceiling and for p95, in minutes (5).
    pub window_minutes: u32,
    /// Absolute p95 latency ceiling in ms; also the "slow request" threshold (250).
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
    /// New-version requests needed in the window to judge p95 (50).
    pub latency_min_requests: f64,
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

/// Margin of the 5xx ceiling in Poisson standard deviations (one-sided ≈ 0.1% per look
/// for a version exactly at the ceiling; far less for one below it).
pub const CEILING_Z: f64 = 3.09;

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
    /// Requests slower than the ceiling, new vs old.
    pub latency_split: f64,
    /// 5xx at 100% against the old version's split-time rate.
    pub errors_bake: f64,
    /// Slow requests at 100% against the old version's split-time rate.
    pub latency_bake: f64,
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
            error_ceiling_min_requests: 200.0,
            window_minutes: 5,
            latency_p95_ceiling_ms: 250.0,
            very_slow_factor: 4.0,
            approach_factor: 0.5,
            latency_min_requests: 50.0,
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
            latency_split: 0.1,
            errors_bake: 0.05,
            latency_bake: 0.03,
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

/// The bad events a set of exact looks (scheduled or bake) counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookedEvents {
    /// 5xx.
    Errors,
    /// Requests slower than the p95 ceiling.
    Slow,
    /// Requests slower than `Policy::very_slow_ms`.
    VerySlow,
    /// Requests slower than `Policy::approach_ms`.
    Approaching,
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
         with its default 0.02; take it from latency_bake, now 0.03 by default, or set \
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
    LatencySplit,
    /// 5xx at 100%.
    ErrorsBake,
    /// Slow requests at 100%.
    LatencyBake,
}

impl CountTest {
    /// The four tests, in alpha-split order.
    pub const ALL: [CountTest; 4] = [
        CountTest::ErrorsSplit,
        CountTest::LatencySplit,
        CountTest::ErrorsBake,
        CountTest::LatencyBake,
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
        let shares = [
            s.errors_split,
            s.latency_split,
            s.errors_bake,
            s.latency_bake,
        ];
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
                "errors_split {} + latency_split {} + errors_bake {} + latency_bake {} + \
                 very_slow_split {}",
                s.errors_split, s.latency_split, s.errors_bake, s.latency_bake, s.very_slow_split
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

    /// The configuration of one sequential test: its share of `alpha` (for the split tests,
    /// less what the scheduled looks spend), the shared floors.
    pub fn test_config(&self, test: CountTest) -> RatioTestConfig {
        let (anytime, _, _) = self.alpha_shares(test);
        RatioTestConfig {
            alpha: self.alpha * anytime,
            rho0: self.rho0,
            rho_tolerance: self.rho_tolerance,
            rho_detect: self.rho_detect,
            power: self.power,
        }
    }

    /// The scheduled looks of a split test (`ErrorsSplit` or `LatencySplit`), with
    /// `look_share` of what the history looks leave of the test's α (a bake test's looks are
    /// `bake_looks`).
    pub fn looks(&self, test: CountTest) -> ScheduledLooks {
        let (_, looks, _) = self.alpha_shares(test);
        ScheduledLooks::new(
            self.alpha * looks,
            self.look_rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The very-slow-request threshold in ms: `very_slow_factor` × the p95 ceiling.
    pub fn very_slow_ms(&self) -> f64 {
        self.very_slow_factor * self.latency_p95_ceiling_ms
    }

    /// The exact looks of very slow requests, new vs old, with all of `very_slow_split`:
    /// the same schedule and null as the other split tests' looks. Very slow requests are
    /// rare, so these looks run where the Poisson model holds, and the other latency tests
    /// cover the rest.
    pub fn very_slow_looks(&self) -> ScheduledLooks {
        ScheduledLooks::new(
            self.alpha * self.alpha_split.very_slow_split,
            self.look_rho0,
            self.look_max_events_per_minute
                .min(VERY_SLOW_MAX_EVENTS_PER_MINUTE),
        )
    }

    /// The approaching threshold in ms: `approach_factor` × the p95 ceiling.
    pub fn approach_ms(&self) -> f64 {
        self.approach_factor * self.latency_p95_ceiling_ms
    }

    /// The exact looks of requests approaching the ceiling, new vs old, with `approach_share`
    /// of the slow-request split test's looks budget: the same schedule as the other looks,
    /// against "ratio ≤ `approach_rho0`", fed counts scaled down by the burstiness of the
    /// window before the rollout and thinned to `SCALED_EVENTS_PER_MINUTE` (`BurstScale`),
    /// so their own skip limit is only a backstop.
    pub fn approach_looks(&self) -> ScheduledLooks {
        let (_, _, approach) = self.alpha_shares(CountTest::LatencySplit);
        let mut looks = ScheduledLooks::new(
            self.alpha * approach,
            self.approach_rho0,
            SCALED_MAX_EVENTS_PER_MINUTE,
        );
        looks.scale_for_bursts(SCALED_MAX_EVENTS_PER_MINUTE);
        looks
    }

    /// The exact looks of a bake test (`ErrorsBake` or `LatencyBake`), with `look_share` of
    /// its α, against "new ≤ `rho0` × the old version's split-time rate" (the e-process's
    /// floor: the bake has no concurrent control, so its margin absorbs drift between the
    /// split and the bake).
    pub fn bake_looks(&self, test: CountTest) -> BakeLooks {
        let (_, looks, _) = self.alpha_shares(test);
        BakeLooks::new(
            self.alpha * looks,
            self.rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The history looks of the 5xx split test, with its share of α (see `alpha_shares`;
    /// none when `history_minutes` is 0).
    pub fn history_looks(&self) -> HistoryLooks {
        let (_, _, history) = self.alpha_shares(CountTest::ErrorsSplit);
        HistoryLooks::new(
            self.alpha * history,
            self.history_margin,
            self.history_guard_alpha,
            self.look_rho0,
            self.look_max_events_per_minute,
        )
    }

    /// A test's shares of `alpha`: (its anytime e-process, its scheduled or bake looks, the
    /// looks that need the window before the rollout). Each test's share gives `look_share`
    /// to its looks; for the 5xx split, `history_share` of that goes to the history looks,
    /// and for the slow-request split `approach_share` to the approach looks (when a window
    /// is read at all). Slow requests have no history looks (they are many, and their rate
    /// drifts with load); a bake test has neither. The e-process's share, which the exposure
    /// rule projects, depends on neither.
    fn alpha_shares(&self, test: CountTest) -> (f64, f64, f64) {
        let s = &self.alpha_split;
        let windowed = |share: f64, minutes: u32| {
            if self.history_minutes >= minutes {
                share
            } else {
                0.0
            }
        };
        let split = |share: f64, history_share: f64| {
            let looks = share * self.look_share;
            let history = looks * history_share;
            (share - looks, looks - history, history)
        };
        match test {
            CountTest::ErrorsSplit => split(s.errors_split, windowed(self.history_share, 1)),
            // The approach looks' burstiness needs a window of some length.
            CountTest::LatencySplit => split(
                s.latency_split,
                windowed(self.approach_share, Burstiness::MIN_MINUTES),
            ),
            CountTest::ErrorsBake => split(s.errors_bake, 0.0),
            CountTest::LatencyBake => split(s.latency_bake, 0.0),
        }
    }

    /// A scheduled look that rejected: unhealthy, with the counts and the exact p-value.
    pub fn judge_look(&self, counted: LookedEvents, look: &Look) -> Verdict {
        let (signal, what) = self.looked_events(counted);
        let (observed, limit) = match look.robust.as_ref().filter(|r| r.rejected) {
            Some(r) => (r.p_value, r.alpha),
            None => (look.p_value, look.alpha),
        };
        Verdict::unhealthy(Reason {
            signal,
            detail: format!(
                "new version worse than old in {what} at the {}",
                describe_look(look)
            ),
            observed,
            limit,
        })
    }

    /// The signal a set of looks judges, and its bad events in words.
    fn looked_events(&self, counted: LookedEvents) -> (Signal, String) {
        match counted {
            LookedEvents::Errors => (Signal::Errors, "5xx".to_string()),
            LookedEvents::Slow => (
                Signal::Latency,
                format!("requests over {} ms", self.latency_p95_ceiling_ms),
            ),
            LookedEvents::VerySlow => (
                Signal::Latency,
                format!("very slow requests (over {} ms)", self.very_slow_ms()),
            ),
            LookedEvents::Approaching => (
                Signal::Latency,
                format!(
                    "requests approaching the ceiling (over {} ms)",
                    self.approach_ms()
                ),
            ),
        }
    }

    /// A bake look that rejected: unhealthy, with the bake's rate against the reference's.
    pub fn judge_bake_look(&self, counted: LookedEvents, look: &BakeLook) -> Verdict {
        let (signal, what) = self.looked_events(counted);
        Verdict::unhealthy(Reason {
            signal,
            detail: format!(
                "new version's {what} at 100% above {}× the old version's rate during the \
                 split: {}",
                look.margin,
                describe_bake_look(look)
            ),
            observed: look.p_value,
            limit: look.alpha,
        })
    }

    /// A 5xx history look that rejected: unhealthy, with the rates against the baseline's.
    pub fn judge_history(&self, look: &HistoryLook) -> Verdict {
        Verdict::unhealthy(Reason {
            signal: Signal::Errors,
            detail: format!(
                "new version's 5xx above {}× the old version's own rate before the \
                 rollout, and above the old version's during the split: {}",
                look.margin,
                describe_history(look)
            ),
            observed: look.p_value,
            limit: look.alpha,
        })
    }

    /// `/healthz`: unhealthy after `healthz_failures` consecutive failures; healthy only when
    /// the latest probe of this tick reached the new version and got 200.
    pub fn judge_healthz(&self, failures_in_a_row: u32, latest: Option<&Probe>) -> Verdict {
        if failures_in_a_row >= self.healthz_failures {
            let detail = match latest {
                Some(Probe::Failed { status, error }) => describe_probe_failure(*status, error),
                _ => "failing".to_string(),
            };
            return Verdict::unhealthy(Reason {
                signal: Signal::Healthz,
                detail: format!(
                    "/healthz failed {failures_in_a_row} times in a row (limit {}): {detail}",
                    self.healthz_failures
                ),
                observed: f64::from(failures_in_a_row),
                limit: f64::from(self.healthz_failures),
            });
        }
        match latest {
            Some(Probe::Ok) => Verdict::Healthy,
            Some(Probe::Failed { status, error }) => Verdict::inconclusive(Gap::Debouncing {
                signal: Signal::Healthz,
                breaches: failures_in_a_row,
                needed: self.healthz_failures,
                detail: describe_probe_failure(*status, error),
            }),
            Some(Probe::WrongVersion { answered_by }) => Verdict::inconclusive(Gap::WrongVersion {
                answered_by: answered_by.clone(),
            }),
            None => Verdict::inconclusive(Gap::NotObserved {
                signal: Signal::Healthz,
            }),
        }
    }

    /// A sequential count test: a rejected null is unhealthy (with the e-value against its
    /// threshold); an upper bound below tolerance or a met exposure rule is healthy;
    /// otherwise not enough evidence yet.
    pub fn judge_count_test(&self, signal: Signal, summary: &RatioSummary) -> Verdict {
        if summary.regression {
            return Verdict::unhealthy(Reason {
                signal,
                detail: format!(
                    "new version worse than old: e-value {} ≥ {:.0} (ratio ≤ {} rejected); \
                     new {:.0}/{:.0} vs old {:.0}/{:.0} ({} vs {}){}",
                    format_e_value(summary.e_value),
                    summary.threshold,
                    self.rho0,
                    summary.new_bad,
                    summary.new_total,
                    summary.old_bad,
                    summary.old_total,
                    rate(summary.new_bad, summary.new_total),
                    rate(summary.old_bad, summary.old_total),
                    burst_scaled(summary.burst_divisor.is_some(), summary.burst_divisor)
                        .map_or(String::new(), |s| format!(", {s}")),
                ),
                observed: summary.e_value,
                limit: summary.threshold,
            });
        }
        self.judge_evidence(signal, summary)
    }

    /// The promotion half of a count test, regression aside: healthy when the upper bound is
    /// below tolerance or the exposure rule is met, else not enough evidence yet.
    pub fn judge_evidence(&self, signal: Signal, summary: &RatioSummary) -> Verdict {
        if summary.upper_bound < self.rho_tolerance || summary.exposure_met {
            return Verdict::Healthy;
        }
        Verdict::inconclusive(Gap::NotEnoughEvidence {
            signal,
            upper_bound: summary.upper_bound,
            tolerance: self.rho_tolerance,
            new_requests_needed: summary.new_requests_needed,
        })
    }

    /// The absolute 5xx ceiling over the trailing window. Breaches when the new version's
    /// errors exceed what the ceiling rate would give by `CEILING_Z` Poisson standard
    /// deviations, and only when the old version is not over it too in the same minutes (a
    /// shared incident is not the release's fault). This SLO guard is outside the α budget.
    /// `minutes` is how many minutes the totals cover (for the message).
    pub fn judge_error_ceiling(&self, new: (f64, f64), old: (f64, f64), minutes: usize) -> Breach {
        let (new_requests, new_errors) = new;
        if new_requests < self.error_ceiling_min_requests {
            return Breach::TooFew {
                have: new_requests,
                need: self.error_ceiling_min_requests,
            };
        }
        let new_rate = new_errors / new_requests;
        let (old_requests, old_errors) = old;
        let old_over = old_requests >= self.error_ceiling_min_requests
            && old_errors / old_requests > self.error_rate_ceiling;
        // Clearly over, not just over: a release at half the ceiling would otherwise cross it
        // by chance on some tick, since the ceiling is looked at every minute.
        let expected = self.error_rate_ceiling * new_requests;
        let clear = expected + CEILING_Z * expected.sqrt();
        if new_errors > clear && !old_over {
            return Breach::Over(Reason {
                signal: Signal::Errors,
                detail: format!(
                    "5xx rate {} over the last {minutes} min is above the {} ceiling ({new_errors:.0} of {new_requests:.0})",
                    pct(new_rate),
                    pct(self.error_rate_ceiling),
                ),
                observed: new_rate,
                limit: self.error_rate_ceiling,
            });
        }
        Breach::Within
    }

    /// The absolute p95 ceiling over the trailing window (same shared-incident rule).
    pub fn judge_latency_ceiling(&self, new: &VersionLatency, old: &VersionLatency) -> Breach {
        let p95 = match new.p95_ms {
            Some(p95) if new.requests >= self.latency_min_requests => p95,
            _ => {
                return Breach::TooFew {
                    have: new.requests,
                    need: self.latency_min_requests,
                }
            }
        };
        let old_over = old.requests >= self.latency_min_requests
            && old.p95_ms.is_some_and(|p| p > self.latency_p95_ceiling_ms);
        if p95 > self.latency_p95_ceiling_ms && !old_over {
            return Breach::Over(Reason {
                signal: Signal::Latency,
                detail: format!(
                    "p95 {p95:.0} ms over the last {} min is above the {:.0} ms ceiling ({:.0} requests)",
                    self.window_minutes, self.latency_p95_ceiling_ms, new.requests
                ),
                observed: p95,
                limit: self.latency_p95_ceiling_ms,
            });
        }
        Breach::Within
    }

    /// Queue depth and retries against the thresholds (no minimum sample: these are levels).
    pub fn judge_queue(thresholds: &QueueThresholds, metrics: &QueueMetrics) -> Breach {
        if metrics.depth > thresholds.max_depth {
            return Breach::Over(Reason {
                signal: Signal::Queue,
                detail: format!(
                    "queue depth {} above {}",
                    metrics.depth, thresholds.max_depth
                ),
                observed: metrics.depth,
                limit: thresholds.max_depth,
            });
        }
        if metrics.retries_per_minute > thresholds.max_retries_per_minute {
            return Breach::Over(Reason {
                signal: Signal::Queue,
                detail: format!(
                    "queue retries {}/min above {}/min",
                    metrics.retries_per_minute, thresholds.max_retries_per_minute
                ),
                observed: metrics.retries_per_minute,
                limit: thresholds.max_retries_per_minute,
            });
        }
        Breach::Within
    }
}

fn out_of_range(field: &'static str, value: f64, expected: &'static str) -> PolicyError {
    PolicyError::OutOfRange {
        field,
        value,
        expected,
    }
}

fn describe_probe_failure(status: Option<u16>, error: &Option<String>) -> String {
    match (status, error) {
        (Some(status), Some(error)) => format!("status {status}: {error}"),
        (Some(status), None) => format!("status {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".to_string(),
    }
}

/// Where a scheduled look was taken, for people ("the look at the end of step 1").
pub fn look_name(look: &Look) -> String {
    match look.kind {
        LookKind::Closing => "closing look over the whole split".to_string(),
        LookKind::StepEnd { step } => format!("look at the end of step {}", step + 1),
        LookKind::Interim { step } => {
            format!("look during step {} (look {})", step + 1, look.number)
        }
    }
}

/// A bake look in one line: the new version's rate at 100% against the split-time reference.
pub fn describe_bake_look(look: &BakeLook) -> String {
    let which = if look.closing {
        "closing bake look".to_string()
    } else {
        format!("bake look {}", look.number)
    };
    let Some(r) = look.reference else {
        return format!("{which}: no reference from the split");
    };
    let reference = format!(
        "{:.0}/{:.0} ({}) over the split{}",
        r.bad,
        r.requests,
        rate(r.bad, r.requests),
        if look.scaled {
            ", burst-scaled too"
        } else {
            ""
        }
    );
    let scaled =
        burst_scaled(look.scaled, look.divisor).map_or(String::new(), |s| format!(", {s}"));
    let new = format!(
        "{}/{:.0} ({}) at 100%{scaled}",
        look.new_bad,
        look.new_requests,
        rate(look.new_bad as f64, look.new_requests)
    );
    match &look.skipped {
        Some(BakeSkipped::NoReference) => format!("{which}: no reference from the split"),
        Some(BakeSkipped::NoEvents) => format!("{which}: no bad events at 100% yet"),
        Some(BakeSkipped::TooManyEvents { per_minute, limit }) => {
            format!("{which}: skipped, {per_minute:.0} bad events a minute (limit {limit:.0})")
        }
        None => format!(
            "{which}: {new} against {reference}, {:.1} expected at {}×; p = {} (α {})",
            look.null_mean,
            look.margin,
            format_probability(look.p_value),
            format_probability(look.alpha)
        ),
    }
}

/// A history look in one line: the new version's split-time rate against the baseline's.
pub fn describe_history(look: &HistoryLook) -> String {
    let which = match look.kind {
        LookKind::Closing => "history look over the whole split".to_string(),
        LookKind::StepEnd { step } => format!("history look at the end of step {}", step + 1),
        LookKind::Interim { step } => format!("history look during step {}", step + 1),
    };
    let Some(b) = look.baseline else {
        return format!("{which}: no baseline read from before the rollout");
    };
    let window = format!(
        "{:.0}/{:.0} ({}) over {} minutes before the rollout",
        b.bad,
        b.requests,
        rate(b.bad, b.requests),
        b.minutes
    );
    match &look.skipped {
        Some(HistorySkipped::NoBaseline) => format!("{which}: no baseline read"),
        Some(HistorySkipped::TooManyEvents { per_minute, limit }) => format!(
            "{which}: skipped, {per_minute:.0} bad events a minute (limit {limit:.0})"
        ),
        Some(HistorySkipped::NoEvents) => {
            format!("{which}: no new-version bad events yet; old version {window}")
        }
        Some(HistorySkipped::Drifted {
            old_bad,
            old_requests,
            p_value,
        }) => format!(
            "{which}: skipped, the old version's own rate drifted since ({old_bad}/{old_requests:.0}, \
             {}, now vs {window}; p = {})",
            rate(*old_bad as f64, *old_requests),
            format_probability(*p_value),
        ),
        None => format!(
            "{which}: new {}/{:.0} ({}) vs old {window}; {:.1} expected at {}× that, \
             p = {} (α {}); concurrent guard {} at {}",
            look.new_bad,
            look.new_requests,
            rate(look.new_bad as f64, look.new_requests),
            look.null_mean,
            look.margin,
            format_probability(look.p_value),
            format_probability(look.alpha),
            if look.guard_rejected {
                "rejected new ≤ old"
            } else {
                "not rejected"
            },
            format_probability(look.guard_alpha),
        ),
    }
}

/// "burst-scaled (÷ d)" for counts scaled down by a divisor d (for a split look, the mean of
/// its minutes'; without one when it is not known), or nothing for raw counts.
fn burst_scaled(scaled: bool, divisor: Option<f64>) -> Option<String> {
    scaled.then(|| match divisor {
        Some(d) => format!("burst-scaled (÷ {d:.2})"),
        None => "burst-scaled".to_string(),
    })
}

/// A look skipped for too many events (a minute, or in all) in one line, with the robust
/// closing look when one was taken.
fn describe_busy_look(look: &Look, which: &str, per_minute: f64, limit: f64) -> String {
    let busy = |label: &str| {
        if per_minute > limit {
            format!("{per_minute:.0} bad events a minute ({label} {limit:.0})")
        } else {
            format!(
                "{} bad events in all ({label} {LOOKS_MAX_EVENTS})",
                look.events
            )
        }
    };
    match &look.robust {
        Some(r) => format!(
            "{which}: {}; robust t test over {} minutes: mean z {:.2}, spread {:.2}, t = {:.2}, \
             p = {} (α {})",
            busy("exact limit"),
            r.minutes,
            r.mean_z,
            r.sd_z,
            r.t,
            format_probability(r.p_value),
            format_probability(r.alpha),
        ),
        None => format!(
            "{which}: skipped, {}; the anytime test decides",
            busy("limit")
        ),
    }
}

/// A scheduled look in one line: what it saw against what the null expects.
pub fn describe_look(look: &Look) -> String {
    let which = look_name(look);
    match (&look.skipped, look.critical) {
        (Some(LookSkipped::NoEvents), _) => format!("{which}: no bad events to test"),
        (Some(LookSkipped::TooManyEvents { per_minute, limit }), _) => {
            describe_busy_look(look, &which, *per_minute, *limit)
        }
        (None, Some(critical)) => format!(
            "{which}: {} of {} {}bad events from the new version, {:.1} expected at ratio {}, \
             rejects at {critical}; p = {} (α {})",
            look.new_bad,
            look.events,
            burst_scaled(look.scaled, look.divisor).map_or(String::new(), |s| s + " "),
            look.null_mean,
            look.rho0,
            format_probability(look.p_value),
            format_probability(look.alpha),
        ),
        (None, None) => format!("{which}: no boundary"),
    }
}

/// A probability for people: four decimals, or scientific notation below 0.001.
pub fn format_probability(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// An e-value for people: one decimal, or scientific notation once it is huge.
pub fn format_e_value(e: f64) -> String {
    if e < 1e6 {
        format!("{e:.1}")
    } else {
        format!("{e:.2e}")
    }
}

/// A rate as a percentage with two decimals, or "n/a" without traffic.
pub fn rate(bad: f64, total: f64) -> String {
    if total > 0.0 {
        pct(bad / total)
    } else {
        "n/a".to_string()
    }
}

fn pct(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

#[cfg(test)]
mod tests;

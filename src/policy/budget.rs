//! The α budget: one row per test that can roll a release back (its stage, the events it
//! counts, its method and its α), the rows summing to `Policy::alpha`; the guards outside
//! the budget with their own rates and reasons; and the spending schedule of the exact looks.
//! Every test reads its α from its row here. docs/statistics.md, "The α budget", shows the
//! same table (a test checks it against this code).

use super::{CountTest, Policy, VERY_SLOW_MAX_EVENTS_PER_MINUTE};
use super::{CEILING_ALPHA, SCALED_MAX_EVENTS_PER_MINUTE};
use crate::stats::{
    BakeLooks, Burstiness, HistoryLooks, LookKind, OnsetLooks, RatioTestConfig, ScheduledLooks,
    DRIFT_CHECK_ALPHA,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// When a test runs: while both versions serve side by side, or at 100%.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The split steps: new against old over the same minutes.
    Split,
    /// The bake at 100%: new against the old version's split-time rate.
    Bake,
}

/// The bad events a test counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl LookedEvents {
    /// The events in words, as messages name a look's signal ("very slow requests").
    pub fn label(self) -> &'static str {
        match self {
            LookedEvents::Errors => "5xx",
            LookedEvents::Slow => "slow requests",
            LookedEvents::VerySlow => "very slow requests",
            LookedEvents::Approaching => "requests approaching the ceiling",
        }
    }
}

/// How a test decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// An anytime-valid mixture e-process, judged every tick.
    EProcess,
    /// Exact group-sequential looks at the schedule's times (`ScheduledLooks`), with a
    /// robust t test in place of the closing look where minutes are too busy.
    ScheduledLooks,
    /// Exact looks against the old version's own rate before the rollout (`HistoryLooks`).
    HistoryLooks,
    /// Exact looks at the newest few split minutes alone, for a regression that starts late
    /// (`OnsetLooks`).
    OnsetLooks,
    /// Exact looks of the bake against the split-time reference (`BakeLooks`).
    BakeLooks,
}

/// One test that can roll a release back: a row of the α budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetRow {
    ErrorsSplitEProcess,
    ErrorsSplitLooks,
    ErrorsSplitHistory,
    ErrorsSplitOnset,
    SlowSplitEProcess,
    SlowSplitLooks,
    VerySlowSplitLooks,
    ApproachingSplitLooks,
    ErrorsBakeEProcess,
    ErrorsBakeLooks,
    ErrorsBakeOnset,
    SlowBakeEProcess,
    SlowBakeLooks,
}

impl BudgetRow {
    /// Every row, in the table's order.
    pub const ALL: [BudgetRow; 13] = [
        BudgetRow::ErrorsSplitEProcess,
        BudgetRow::ErrorsSplitLooks,
        BudgetRow::ErrorsSplitHistory,
        BudgetRow::ErrorsSplitOnset,
        BudgetRow::SlowSplitEProcess,
        BudgetRow::SlowSplitLooks,
        BudgetRow::VerySlowSplitLooks,
        BudgetRow::ApproachingSplitLooks,
        BudgetRow::ErrorsBakeEProcess,
        BudgetRow::ErrorsBakeLooks,
        BudgetRow::ErrorsBakeOnset,
        BudgetRow::SlowBakeEProcess,
        BudgetRow::SlowBakeLooks,
    ];

    /// The row's stage, events and method.
    pub fn parts(self) -> (Stage, LookedEvents, Method) {
        use BudgetRow::*;
        use LookedEvents::*;
        match self {
            ErrorsSplitEProcess => (Stage::Split, Errors, Method::EProcess),
            ErrorsSplitLooks => (Stage::Split, Errors, Method::ScheduledLooks),
            ErrorsSplitHistory => (Stage::Split, Errors, Method::HistoryLooks),
            ErrorsSplitOnset => (Stage::Split, Errors, Method::OnsetLooks),
            SlowSplitEProcess => (Stage::Split, Slow, Method::EProcess),
            SlowSplitLooks => (Stage::Split, Slow, Method::ScheduledLooks),
            ApproachingSplitLooks => (Stage::Split, Approaching, Method::ScheduledLooks),
            VerySlowSplitLooks => (Stage::Split, VerySlow, Method::ScheduledLooks),
            ErrorsBakeEProcess => (Stage::Bake, Errors, Method::EProcess),
            ErrorsBakeLooks => (Stage::Bake, Errors, Method::BakeLooks),
            ErrorsBakeOnset => (Stage::Bake, Errors, Method::OnsetLooks),
            SlowBakeEProcess => (Stage::Bake, Slow, Method::EProcess),
            SlowBakeLooks => (Stage::Bake, Slow, Method::BakeLooks),
        }
    }

    /// The `alpha_split` share (`CountTest`) the row draws on; very slow requests have a
    /// share of their own.
    fn share_group(self) -> Option<CountTest> {
        use BudgetRow::*;
        match self {
            ErrorsSplitEProcess | ErrorsSplitLooks | ErrorsSplitHistory | ErrorsSplitOnset => {
                Some(CountTest::ErrorsSplit)
            }
            SlowSplitEProcess | SlowSplitLooks | ApproachingSplitLooks => {
                Some(CountTest::SlowSplit)
            }
            ErrorsBakeEProcess | ErrorsBakeLooks | ErrorsBakeOnset => Some(CountTest::ErrorsBake),
            SlowBakeEProcess | SlowBakeLooks => Some(CountTest::SlowBake),
            VerySlowSplitLooks => None,
        }
    }
}

impl fmt::Display for BudgetRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name it is stored under (serde's snake_case), so the two cannot differ.
        f.write_str(&snake(self))
    }
}

/// One row of the budget for a policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Allocation {
    pub row: BudgetRow,
    pub stage: Stage,
    pub events: LookedEvents,
    pub method: Method,
    /// The row's fraction of `Policy::alpha`.
    pub share: f64,
    /// The row's α: the most it may add to the chance of a false rollback.
    pub alpha: f64,
}

/// A rule outside the budget that can stop or hold back a release, with its own rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Guard {
    pub name: &'static str,
    /// Its false-alarm rate, where it has one (`per` says of what).
    pub rate: Option<f64>,
    /// What the rate is per: "look", "rollout"; empty without a rate.
    pub per: &'static str,
    /// Whether it can roll back by itself (`false`: it only holds back a test in the budget).
    pub rolls_back: bool,
    pub reason: &'static str,
}

/// The whole budget of a policy: the rows (summing to `alpha` with `unallocated`) and the
/// guards outside it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Budget {
    pub alpha: f64,
    pub rows: Vec<Allocation>,
    /// What the `alpha_split` shares leave unspent (they may sum to less than 1).
    pub unallocated: f64,
    pub guards: Vec<Guard>,
}

impl Policy {
    /// The α budget of this policy: every test that can roll back with its α, and the
    /// guards outside it.
    pub fn budget(&self) -> Budget {
        let rows: Vec<Allocation> = BudgetRow::ALL
            .iter()
            .map(|&row| {
                let (stage, events, method) = row.parts();
                Allocation {
                    row,
                    stage,
                    events,
                    method,
                    share: self.share_of(row),
                    alpha: self.alpha_of(row),
                }
            })
            .collect();
        let shares: f64 = rows.iter().map(|r| r.share).sum();
        Budget {
            alpha: self.alpha,
            rows,
            unallocated: self.alpha * (1.0 - shares).max(0.0),
            guards: self.guards(),
        }
    }

    /// A row's α: its fraction of `alpha` (zero where the row is turned off).
    pub fn alpha_of(&self, row: BudgetRow) -> f64 {
        self.alpha * self.share_of(row)
    }

    /// A row's fraction of `alpha`. Each `alpha_split` share gives `look_share` to its exact
    /// looks and the rest to its e-process; of the 5xx split's looks, `history_share` goes to
    /// the history looks and `onset_share` to the onset looks (of the 5xx bake's looks too),
    /// and of the slow-request split's, `approach_share` to the approach
    /// looks, when the window before the rollout is read at all (the approach looks'
    /// burstiness needs `Burstiness::MIN_MINUTES` of it). Very slow requests have looks
    /// only. The e-process's share, which the exposure rule projects, depends on neither.
    pub fn share_of(&self, row: BudgetRow) -> f64 {
        let Some(group) = row.share_group() else {
            return self.alpha_split.very_slow_split;
        };
        let s = &self.alpha_split;
        let windowed = |share: f64, minutes: u32| {
            if self.history_minutes >= minutes {
                share
            } else {
                0.0
            }
        };
        let (share, windowed_share, onset_share) = match group {
            CountTest::ErrorsSplit => (
                s.errors_split,
                windowed(self.history_share, 1),
                self.onset_share,
            ),
            CountTest::SlowSplit => (
                s.slow_split,
                windowed(self.approach_share, Burstiness::MIN_MINUTES),
                0.0,
            ),
            CountTest::ErrorsBake => (s.errors_bake, 0.0, self.onset_share),
            CountTest::SlowBake => (s.slow_bake, 0.0, 0.0),
        };
        let looks = share * self.look_share;
        let windowed_looks = looks * windowed_share;
        let onset_looks = looks * onset_share;
        match row.parts().2 {
            Method::EProcess => share - looks,
            Method::HistoryLooks => windowed_looks,
            Method::OnsetLooks => onset_looks,
            Method::ScheduledLooks if row == BudgetRow::ApproachingSplitLooks => windowed_looks,
            Method::ScheduledLooks => looks - windowed_looks - onset_looks,
            Method::BakeLooks => looks - onset_looks,
        }
    }

    /// The configuration of one e-process (`ErrorsSplit`, `SlowSplit`, `ErrorsBake` or
    /// `SlowBake`): its row's α, the shared floors.
    pub fn test_config(&self, test: CountTest) -> RatioTestConfig {
        let row = match test {
            CountTest::ErrorsSplit => BudgetRow::ErrorsSplitEProcess,
            CountTest::SlowSplit => BudgetRow::SlowSplitEProcess,
            CountTest::ErrorsBake => BudgetRow::ErrorsBakeEProcess,
            CountTest::SlowBake => BudgetRow::SlowBakeEProcess,
        };
        RatioTestConfig {
            alpha: self.alpha_of(row),
            rho0: self.rho0,
            rho_tolerance: self.rho_tolerance,
            rho_detect: self.rho_detect,
            power: self.power,
        }
    }

    /// The scheduled looks of a split test (`ErrorsSplit` or `SlowSplit`) with their
    /// row's α (a bake test's looks are `bake_looks`).
    pub fn looks(&self, test: CountTest) -> ScheduledLooks {
        let row = match test {
            CountTest::SlowSplit | CountTest::SlowBake => BudgetRow::SlowSplitLooks,
            CountTest::ErrorsSplit | CountTest::ErrorsBake => BudgetRow::ErrorsSplitLooks,
        };
        ScheduledLooks::new(
            self.alpha_of(row),
            self.look_rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The onset looks of the 5xx split, with their row's α: the scheduled looks' null and
    /// events-a-minute limit, over the newest minutes alone.
    pub fn onset_looks(&self) -> OnsetLooks {
        OnsetLooks::new(
            self.alpha_of(BudgetRow::ErrorsSplitOnset),
            self.look_rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The exact looks of very slow requests, new vs old, with their row's α (all of
    /// `very_slow_split`): the same schedule and null as the other split tests' looks. Very
    /// slow requests are rare, so these looks run where the Poisson model holds, and the
    /// other latency tests cover the rest.
    pub fn very_slow_looks(&self) -> ScheduledLooks {
        ScheduledLooks::new(
            self.alpha_of(BudgetRow::VerySlowSplitLooks),
            self.look_rho0,
            self.look_max_events_per_minute
                .min(VERY_SLOW_MAX_EVENTS_PER_MINUTE),
        )
    }

    /// The exact looks of requests approaching the ceiling, new vs old, with their row's α:
    /// the same schedule as the other looks, against "ratio ≤ `approach_rho0`", fed counts
    /// scaled down by the burstiness of the window before the rollout and thinned to
    /// `SCALED_EVENTS_PER_MINUTE` (`BurstScale`), so their own skip limit is only a backstop.
    pub fn approach_looks(&self) -> ScheduledLooks {
        let mut looks = ScheduledLooks::new(
            self.alpha_of(BudgetRow::ApproachingSplitLooks),
            self.approach_rho0,
            SCALED_MAX_EVENTS_PER_MINUTE,
        );
        looks.scale_for_bursts(SCALED_MAX_EVENTS_PER_MINUTE);
        looks
    }

    /// The exact looks of a bake test (`ErrorsBake` or `SlowBake`) with their row's α,
    /// against "new ≤ `rho0` × the old version's split-time rate" (the e-process's floor: the
    /// bake has no concurrent control, so its margin absorbs drift between the split and the
    /// bake).
    pub fn bake_looks(&self, test: CountTest) -> BakeLooks {
        let row = match test {
            CountTest::SlowBake | CountTest::SlowSplit => BudgetRow::SlowBakeLooks,
            CountTest::ErrorsBake | CountTest::ErrorsSplit => BudgetRow::ErrorsBakeLooks,
        };
        BakeLooks::new(
            self.alpha_of(row),
            self.rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The onset looks of the 5xx bake, with their row's α: the bake looks' null, reference
    /// and scaling, over the newest bake minutes alone.
    pub fn bake_onset_looks(&self) -> BakeLooks {
        BakeLooks::onset(
            self.alpha_of(BudgetRow::ErrorsBakeOnset),
            self.rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The history looks of the 5xx split test with their row's α (none when
    /// `history_minutes` is 0).
    pub fn history_looks(&self) -> HistoryLooks {
        HistoryLooks::new(
            self.alpha_of(BudgetRow::ErrorsSplitHistory),
            self.history_margin,
            self.history_guard_alpha,
            self.look_rho0,
            self.look_max_events_per_minute,
        )
    }

    /// The rules outside the budget, with their rates where they have one.
    fn guards(&self) -> Vec<Guard> {
        vec![
            Guard {
                name: "5xx ceiling",
                rate: Some(CEILING_ALPHA),
                per: "look",
                rolls_back: true,
                reason: "an SLO line rather than a comparison: an exact binomial test of \
                         \"5xx share ≤ error_rate_ceiling\" on the new version's stored rows \
                         over the trailing window, once error_ceiling_min_rows are in (the \
                         rate is for a version exactly at the ceiling, far less below it), \
                         unless the old version's rows over the same minutes are over it too; \
                         once the window reaches the bake, the rows are counted for the \
                         bursts the old version showed before the rollout",
            },
            Guard {
                name: "p95 ceiling",
                rate: Some(CEILING_ALPHA),
                per: "look",
                rolls_back: true,
                reason: "an SLO line: p95 ≤ the ceiling exactly when at most 5% of requests \
                         are slower, so the same test of \"share over the ceiling ≤ 5%\", once \
                         latency_ceiling_min_rows are in, with the same shared-incident rule \
                         and bake counting, rejecting latency_consecutive windows in a row \
                         (each look's rate bounds the run's)",
            },
            Guard {
                name: "history guard",
                rate: Some(self.history_guard_alpha),
                per: "rollout",
                rolls_back: false,
                reason: "holds back the history looks: one rejects only where exact \
                         concurrent looks of new ≤ old reject at this level too, which bounds \
                         their false rollbacks by it whatever the old version's drift",
            },
            Guard {
                name: "drift check",
                rate: Some(DRIFT_CHECK_ALPHA),
                per: "look",
                rolls_back: false,
                reason: "holds back the history looks: one is skipped while the old version's \
                         own split-time counts depart from the baseline at this level",
            },
            Guard {
                name: "/healthz",
                rate: None,
                per: "",
                rolls_back: true,
                reason: "liveness, not statistics: healthz_failures consecutive failed probes \
                         of the new version",
            },
            Guard {
                name: "queue",
                rate: None,
                per: "",
                rolls_back: true,
                reason: "levels, not statistics: queue depth or retries over their thresholds \
                         for `consecutive` ticks (queue metrics are not per version)",
            },
        ]
    }
}

/// Where a tick stands in the schedule, for the spending schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedulePoint {
    /// The split step live (`Some`), or the bake (`None`).
    pub step: Option<usize>,
    /// How many split steps the schedule has (every step but the last, 100%, one).
    pub split_steps: usize,
    /// Minutes since the live step went live.
    pub elapsed_minutes: f64,
    /// The live step's dwell in minutes.
    pub dwell_minutes: u32,
    /// The step's end-of-dwell look is still to be taken.
    pub step_end_due: bool,
}

/// A look the schedule takes at a tick, with the share of its looks' α it may have spent by
/// then, together with the earlier looks (cumulative, never decreasing; 1 = all).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Spend {
    /// A look of the split's scheduled and history looks.
    Split { kind: LookKind, allowance: f64 },
    /// A look of the bake looks.
    Bake { allowance: f64 },
}

/// The closing look over the whole split (once every split minute is counted) spends all.
pub const CLOSING_ALLOWANCE: f64 = 1.0;

impl Policy {
    /// The spending schedule: the look a tick that counted fresh minutes takes, and how much
    /// of its α it may have spent. Of n split steps, step i's looks may have spent i/n
    /// before it, (i + s·(elapsed/dwell)²)/n during it (s = `look_interim_share`: small
    /// early, as large regressions show anyway), and (i + 1)/n from the end of its dwell;
    /// the last split step has no end look (the closing look, `CLOSING_ALLOWANCE`, spends
    /// the rest). The bake's looks spend s·(elapsed/dwell)² before the end of the bake's
    /// dwell and all of it from there, so the look on the tick that could complete the
    /// rollout spends the rest. Times come from the clock and the schedule, never from the
    /// counts. `None`: no look (past the split steps).
    pub fn spending(&self, at: SchedulePoint) -> Option<Spend> {
        let dwell = f64::from(at.dwell_minutes.max(1));
        let x = (at.elapsed_minutes / dwell).clamp(0.0, 1.0);
        let interim = self.look_interim_share * x * x;
        let Some(step) = at.step else {
            let allowance = if at.elapsed_minutes >= dwell {
                1.0
            } else {
                interim
            };
            return Some(Spend::Bake { allowance });
        };
        if step >= at.split_steps {
            return None;
        }
        let ended = step + 1 < at.split_steps && at.elapsed_minutes >= dwell;
        let (i, n) = (step as f64, at.split_steps as f64);
        let (kind, allowance) = if ended && at.step_end_due {
            (LookKind::StepEnd { step }, (i + 1.0) / n)
        } else if ended {
            (LookKind::Interim { step }, (i + 1.0) / n)
        } else {
            (LookKind::Interim { step }, (i + interim) / n)
        };
        Some(Spend::Split { kind, allowance })
    }
}

/// The budget as two Markdown tables (rows, then guards), as docs/statistics.md shows it.
impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| test | stage | events | method | share of α | α |")?;
        writeln!(f, "|---|---|---|---|---:|---:|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| `{}` | {} | {} | {} | {} | {} |",
                r.row,
                snake(&r.stage),
                snake(&r.events),
                snake(&r.method),
                decimal(r.share, 4),
                decimal(r.alpha, 6)
            )?;
        }
        let unallocated = if self.alpha > 0.0 {
            self.unallocated / self.alpha
        } else {
            0.0
        };
        writeln!(
            f,
            "| unallocated | | | | {} | {} |",
            decimal(unallocated, 4),
            decimal(self.unallocated, 6)
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| guard outside the budget | rate | per | rolls back | why |"
        )?;
        writeln!(f, "|---|---:|---|---|---|")?;
        for g in &self.guards {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} |",
                g.name,
                g.rate.map_or("none".to_string(), |r| decimal(r, 4)),
                if g.per.is_empty() { "" } else { g.per },
                if g.rolls_back { "yes" } else { "no" },
                g.reason
            )?;
        }
        Ok(())
    }
}

/// A value's serialized snake_case name (`e_process`).
fn snake(value: &impl Serialize) -> String {
    crate::json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `x` with at most `places` decimals, trailing zeros dropped ("0.0375", "0", "1").
fn decimal(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests;

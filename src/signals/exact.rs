//! A rollout's exact tests as data: each kind of look (scheduled, onset, history, bake) under the
//! budget row it draws its α from, in the budget's order.

use crate::policy::{BudgetRow, CountTest, Policy};
use crate::stats::{BakeLooks, ExactLooks, HistoryLooks, LookKind, OnsetLooks, ScheduledLooks};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One exact test, of whichever kind its row says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exact {
    /// New against old over the same minutes.
    Scheduled(ScheduledLooks),
    /// New against old over the newest few minutes alone.
    Onset(OnsetLooks),
    /// New against the old version's own rate before the rollout.
    History(HistoryLooks),
    /// The bake against the old version's rate over the split.
    Bake(BakeLooks),
}

impl Exact {
    /// What every kind shares.
    pub fn looks(&self) -> &dyn ExactLooks {
        match self {
            Exact::Scheduled(l) => l,
            Exact::Onset(l) => l,
            Exact::History(l) => l,
            Exact::Bake(l) => l,
        }
    }
}

/// The exact tests of one rollout, keyed by budget row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExactTests(BTreeMap<BudgetRow, Exact>);

impl ExactTests {
    /// Every exact test of `policy`, each with its row's α.
    pub fn new(policy: &Policy) -> Self {
        use BudgetRow::*;
        let tests = [
            (
                ErrorsSplitLooks,
                Exact::Scheduled(policy.looks(CountTest::ErrorsSplit)),
            ),
            (ErrorsSplitHistory, Exact::History(policy.history_looks())),
            (ErrorsSplitOnset, Exact::Onset(policy.onset_looks())),
            (
                SlowSplitLooks,
                Exact::Scheduled(policy.looks(CountTest::SlowSplit)),
            ),
            (
                VerySlowSplitLooks,
                Exact::Scheduled(policy.very_slow_looks()),
            ),
            (
                ApproachingSplitLooks,
                Exact::Scheduled(policy.approach_looks()),
            ),
            (
                ErrorsBakeLooks,
                Exact::Bake(policy.bake_looks(CountTest::ErrorsBake)),
            ),
            (ErrorsBakeOnset, Exact::Bake(policy.bake_onset_looks())),
            (
                SlowBakeLooks,
                Exact::Bake(policy.bake_looks(CountTest::SlowBake)),
            ),
        ];
        ExactTests(tests.into_iter().collect())
    }

    /// Gives the bake rows `policy`'s looks (a rollout stored before the bake looks existed
    /// has them at α 0).
    pub fn fund_bake(&mut self, policy: &Policy) {
        let fresh = ExactTests::new(policy);
        for (row, exact) in fresh.0 {
            if matches!(exact, Exact::Bake(_)) {
                self.0.insert(row, exact);
            }
        }
    }

    /// Each test with its row, in the budget's order (5xx before latency within a stage,
    /// the split before the bake).
    pub fn iter(&self) -> impl Iterator<Item = (BudgetRow, &dyn ExactLooks)> {
        self.0.iter().map(|(row, exact)| (*row, exact.looks()))
    }

    /// A look of every split test (scheduled, onset and history looks) of `kind` at
    /// `allowance` (onset looks spend per look, not on the schedule).
    pub fn split_look(&mut self, kind: LookKind, allowance: f64) {
        for exact in self.0.values_mut() {
            match exact {
                Exact::Scheduled(l) => {
                    l.look(kind, allowance);
                }
                Exact::Onset(l) => {
                    l.look(kind);
                }
                Exact::History(l) => {
                    l.look(kind, allowance);
                }
                Exact::Bake(_) => {}
            }
        }
    }

    /// When the bake starts (after the 5xx bake looks' `start`): the bake's onset looks take
    /// the 5xx bake looks' reference and burst scaling, which count the same split minutes,
    /// so the split's minutes are kept once in the stored state rather than twice.
    pub fn start_bake_onset(&mut self) {
        let Some(alpha) = self.bake(BudgetRow::ErrorsBakeOnset).map(|l| l.alpha()) else {
            return;
        };
        if let Some(onset) = self
            .bake(BudgetRow::ErrorsBakeLooks)
            .map(|l| l.onset_from(alpha))
        {
            self.0
                .insert(BudgetRow::ErrorsBakeOnset, Exact::Bake(onset));
        }
    }

    /// A look of every bake test at `allowance`.
    pub fn bake_look(&mut self, allowance: f64) {
        for exact in self.0.values_mut() {
            if let Exact::Bake(l) = exact {
                l.look(allowance);
            }
        }
    }

    /// The scheduled looks of `row`, if it holds some.
    pub fn scheduled(&self, row: BudgetRow) -> Option<&ScheduledLooks> {
        match self.0.get(&row)? {
            Exact::Scheduled(l) => Some(l),
            _ => None,
        }
    }

    /// See `scheduled`.
    pub fn scheduled_mut(&mut self, row: BudgetRow) -> Option<&mut ScheduledLooks> {
        match self.0.get_mut(&row)? {
            Exact::Scheduled(l) => Some(l),
            _ => None,
        }
    }

    /// The onset looks of `row`, if it holds some.
    pub fn onset_mut(&mut self, row: BudgetRow) -> Option<&mut OnsetLooks> {
        match self.0.get_mut(&row)? {
            Exact::Onset(l) => Some(l),
            _ => None,
        }
    }

    /// The history looks of `row`, if it holds some.
    pub fn history(&self, row: BudgetRow) -> Option<&HistoryLooks> {
        match self.0.get(&row)? {
            Exact::History(l) => Some(l),
            _ => None,
        }
    }

    /// See `history`.
    pub fn history_mut(&mut self, row: BudgetRow) -> Option<&mut HistoryLooks> {
        match self.0.get_mut(&row)? {
            Exact::History(l) => Some(l),
            _ => None,
        }
    }

    /// The bake looks of `row`, if it holds some.
    pub fn bake(&self, row: BudgetRow) -> Option<&BakeLooks> {
        match self.0.get(&row)? {
            Exact::Bake(l) => Some(l),
            _ => None,
        }
    }

    /// See `bake`.
    pub fn bake_mut(&mut self, row: BudgetRow) -> Option<&mut BakeLooks> {
        match self.0.get_mut(&row)? {
            Exact::Bake(l) => Some(l),
            _ => None,
        }
    }
}

//! Tests of the α budget: the rows sum to α, each test's α is its row's, the schedule spends
//! monotonically up to all, and docs/statistics.md shows the code's table.

use super::*;
use crate::policy::AlphaSplit;
use crate::policy::BudgetRow;
use crate::signals::SignalState;
use crate::stats::ExactLooks;
use crate::time::Timestamp;

/// Policies that move every share the rows are built from.
fn policies() -> Vec<Policy> {
    let d = Policy::default;
    vec![
        d(),
        Policy {
            history_minutes: 0,
            ..d()
        },
        Policy {
            history_minutes: Burstiness::MIN_MINUTES - 1,
            ..d()
        },
        Policy {
            look_share: 0.0,
            ..d()
        },
        Policy {
            alpha: 0.05,
            alpha_split: AlphaSplit {
                very_slow_split: 0.0,
                ..AlphaSplit::default()
            },
            ..d()
        },
        Policy {
            alpha: 0.003,
            look_share: 0.6,
            history_share: 0.4,
            approach_share: 0.2,
            ..d()
        },
        Policy {
            onset_share: 0.0,
            ..d()
        },
        Policy {
            history_share: 0.5,
            onset_share: 0.45,
            ..d()
        },
    ]
}

#[test]
fn the_rows_and_what_is_unallocated_sum_to_the_policys_alpha() {
    for policy in policies() {
        policy.validate().unwrap();
        let budget = policy.budget();
        let rows: f64 = budget.rows.iter().map(|r| r.alpha).sum();
        let total = rows + budget.unallocated;
        assert!(
            (total - policy.alpha).abs() < 1e-12,
            "rows {rows} + unallocated {} ≠ α {}",
            budget.unallocated,
            policy.alpha
        );
        assert_eq!(budget.rows.len(), BudgetRow::ALL.len());
        assert!(budget.rows.iter().all(|r| r.alpha >= 0.0));
    }
}

#[test]
fn shares_left_unspent_by_alpha_split_show_as_unallocated() {
    let policy = Policy {
        alpha_split: AlphaSplit {
            errors_split: 0.5,
            ..AlphaSplit::default()
        },
        ..Policy::default()
    };
    let budget = policy.budget();
    assert!((budget.unallocated - 0.3 * policy.alpha).abs() < 1e-12);
    assert!(budget
        .to_string()
        .contains("| unallocated | | | | 0.3 | 0.003 |"));
}

#[test]
fn turned_off_tests_have_rows_with_no_alpha_and_give_it_to_their_siblings() {
    let policy = Policy {
        history_minutes: 0,
        ..Policy::default()
    };
    assert_eq!(policy.alpha_of(BudgetRow::ErrorsSplitHistory), 0.0);
    assert_eq!(policy.alpha_of(BudgetRow::ApproachingSplitLooks), 0.0);
    let on = Policy::default();
    let looks = |p: &Policy, rows: &[BudgetRow]| rows.iter().map(|&r| p.alpha_of(r)).sum::<f64>();
    let errors = [BudgetRow::ErrorsSplitLooks, BudgetRow::ErrorsSplitHistory];
    assert!((looks(&policy, &errors) - looks(&on, &errors)).abs() < 1e-15);
    let no_very_slow = Policy {
        alpha_split: AlphaSplit {
            very_slow_split: 0.0,
            ..AlphaSplit::default()
        },
        ..Policy::default()
    };
    assert_eq!(no_very_slow.alpha_of(BudgetRow::VerySlowSplitLooks), 0.0);
}

#[test]
fn every_test_of_a_fresh_rollout_carries_its_rows_alpha() {
    for policy in policies() {
        let s = SignalState::new(&policy, Timestamp::from_millis(0));
        let row = |r| policy.alpha_of(r);
        for (r, looks) in s.looks.iter() {
            assert_eq!(looks.alpha(), row(r), "{r}");
        }
        assert_eq!(s.errors.config.alpha, row(BudgetRow::ErrorsSplitEProcess));
        assert_eq!(s.slow.config.alpha, row(BudgetRow::SlowSplitEProcess));
        let bake = policy.test_config(CountTest::ErrorsBake).alpha;
        assert_eq!(bake, row(BudgetRow::ErrorsBakeEProcess));
        let bake = policy.test_config(CountTest::SlowBake).alpha;
        assert_eq!(bake, row(BudgetRow::SlowBakeEProcess));
    }
}

#[test]
fn docs_statistics_shows_the_default_policys_budget() {
    let docs = include_str!("../../../docs/statistics.md");
    let table = Policy::default().budget().to_string();
    assert!(
        docs.contains(&table),
        "docs/statistics.md, \"The α budget\", must hold this table verbatim:\n{table}"
    );
}

/// Every tick of a split of `steps` steps (the last at 100%) with `dwell` minutes each, in
/// order: the spending schedule's answers.
fn split_spending(policy: &Policy, split_steps: usize, dwell: u32) -> Vec<Spend> {
    let mut out = Vec::new();
    for step in 0..split_steps {
        let mut end_due = true;
        for minute in 0..=dwell + 2 {
            let at = SchedulePoint {
                step: Some(step),
                split_steps,
                elapsed_minutes: f64::from(minute),
                dwell_minutes: dwell,
                step_end_due: end_due,
            };
            let spend = policy.spending(at).expect("a split step looks");
            if let Spend::Split {
                kind: LookKind::StepEnd { .. },
                ..
            } = spend
            {
                end_due = false;
            }
            out.push(spend);
        }
    }
    out
}

#[test]
fn split_looks_spend_a_never_decreasing_allowance_reaching_each_steps_slice_at_its_end() {
    let policy = Policy::default();
    for split_steps in [1, 2, 3, 5] {
        let spends = split_spending(&policy, split_steps, 10);
        let mut last = 0.0;
        let mut step_ends = 0;
        for spend in spends {
            let Spend::Split { kind, allowance } = spend else {
                panic!("a split tick takes a split look");
            };
            assert!(
                allowance >= last && allowance <= 1.0,
                "{allowance} after {last}"
            );
            last = allowance;
            if let LookKind::StepEnd { step } = kind {
                step_ends += 1;
                assert_eq!(allowance, (step as f64 + 1.0) / split_steps as f64);
            }
        }
        assert_eq!(
            step_ends,
            split_steps - 1,
            "every split step but the last ends with a look"
        );
        assert!(last < 1.0, "only the closing look spends all");
    }
}

#[test]
fn bake_looks_spend_the_interim_share_then_all_at_the_end_of_the_dwell() {
    let policy = Policy::default();
    let at = |elapsed: f64| SchedulePoint {
        step: None,
        split_steps: 2,
        elapsed_minutes: elapsed,
        dwell_minutes: 10,
        step_end_due: false,
    };
    let allowance = |elapsed| match policy.spending(at(elapsed)) {
        Some(Spend::Bake { allowance }) => allowance,
        other => panic!("a bake tick takes a bake look, got {other:?}"),
    };
    assert_eq!(allowance(0.0), 0.0);
    assert_eq!(allowance(5.0), policy.look_interim_share * 0.25);
    assert_eq!(allowance(10.0), 1.0);
    assert_eq!(allowance(25.0), 1.0);
}

#[test]
fn no_look_past_the_split_steps() {
    let at = SchedulePoint {
        step: Some(3),
        split_steps: 3,
        elapsed_minutes: 4.0,
        dwell_minutes: 10,
        step_end_due: true,
    };
    assert_eq!(Policy::default().spending(at), None);
}

#[test]
fn alpha_split_spends_exactly_the_whole_budget_by_default() {
    let policy = Policy::default();
    let anytime: f64 = CountTest::ALL
        .iter()
        .map(|t| policy.test_config(*t).alpha)
        .sum();
    let looks: f64 = [CountTest::ErrorsSplit, CountTest::SlowSplit]
        .iter()
        .map(|t| {
            let mut looks = policy.looks(*t);
            looks.look(LookKind::Closing, 1.0).map_or(0.0, |l| l.alpha)
        })
        .sum();
    let bake_looks: f64 = [CountTest::ErrorsBake, CountTest::SlowBake]
        .iter()
        .map(|t| policy.bake_looks(*t).alpha())
        .sum();
    // The bakes give `look_share` of their α to their exact looks, the 5xx bake's
    // `onset_share` of that to its onset looks.
    let bake_onset = policy.bake_onset_looks().alpha();
    assert!(
        (bake_onset - 0.01 * 0.05 * 0.75 * 0.15).abs() < 1e-12,
        "{bake_onset}"
    );
    assert!(
        (bake_looks + bake_onset - 0.01 * 0.08 * 0.75).abs() < 1e-12,
        "{bake_looks}"
    );
    let history = policy
        .history_looks()
        .look(LookKind::Closing, 1.0)
        .map_or(0.0, |l| l.alpha);
    let approach = policy
        .approach_looks()
        .look(LookKind::Closing, 1.0)
        .map_or(0.0, |l| l.alpha);
    let very_slow = policy
        .very_slow_looks()
        .look(LookKind::Closing, 1.0)
        .map_or(0.0, |l| l.alpha);
    assert!(
        (very_slow - 0.01 * 0.02).abs() < 1e-12,
        "very slow {very_slow}"
    );
    let onset = policy.onset_looks().alpha();
    let total = anytime + looks + bake_looks + bake_onset + history + approach + very_slow + onset;
    assert!((total - policy.alpha).abs() < 1e-12, "total {total}");
    // 5xx split: 0.8 of α; 0.75 of that to the looks, a quarter of which to the history
    // looks; the e-process keeps 0.25 whether or not there are history looks.
    assert!((policy.test_config(CountTest::ErrorsSplit).alpha - 0.002).abs() < 1e-12);
    let expected = 0.01 * 0.8 * 0.75 * 0.25;
    assert!((history - expected).abs() < 1e-12, "history {history}");
    // … and 0.15 of it to the onset looks.
    let expected = 0.01 * 0.8 * 0.75 * 0.15;
    assert!((onset - expected).abs() < 1e-12, "onset {onset}");
    // Slow requests: 0.1 of α; 0.75 of that to the looks, half of which to the approach looks.
    let expected = 0.01 * 0.1 * 0.75 * 0.5;
    assert!((approach - expected).abs() < 1e-12, "approach {approach}");

    // Without a window to read, the history looks' share goes back to the scheduled looks.
    let none = Policy {
        history_minutes: 0,
        ..Policy::default()
    };
    assert!((none.test_config(CountTest::ErrorsSplit).alpha - 0.002).abs() < 1e-12);
    let mut looks = none.looks(CountTest::ErrorsSplit);
    let closing = looks.look(LookKind::Closing, 1.0).unwrap().alpha;
    // (less the onset looks', which need no window)
    assert!((closing - 0.006 * 0.85).abs() < 1e-12, "{closing}");
    assert!(none.history_looks().latest().is_none());
    let mut off = none.history_looks();
    assert!(off.look(LookKind::Closing, 1.0).is_none());
    // The approach looks' burstiness comes from the window too: without it, their share
    // goes back to the slow-request looks.
    assert!(none.approach_looks().finished());
    let short = Policy {
        history_minutes: 29,
        ..Policy::default()
    };
    assert!(short.approach_looks().finished());
    let mut slow = short.looks(CountTest::SlowSplit);
    let closing = slow.look(LookKind::Closing, 1.0).unwrap().alpha;
    assert!((closing - 0.01 * 0.1 * 0.75).abs() < 1e-12, "{closing}");
    let mut slow = none.looks(CountTest::SlowSplit);
    let closing = slow.look(LookKind::Closing, 1.0).unwrap().alpha;
    assert!((closing - 0.01 * 0.1 * 0.75).abs() < 1e-12, "{closing}");
}

#[test]
fn very_slow_looks_use_their_share_and_turn_off_at_zero() {
    let policy = Policy::default();
    assert_eq!(policy.very_slow_ms(), 1000.0);
    let off = Policy {
        alpha_split: AlphaSplit {
            very_slow_split: 0.0,
            ..AlphaSplit::default()
        },
        ..Policy::default()
    };
    assert!(off.validate().is_ok());
    assert!(off.very_slow_looks().finished());
    assert!(!policy.very_slow_looks().finished());
}

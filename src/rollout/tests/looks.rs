//! The scheduled looks: when each is taken and what it spends, and the closing look
//! catching a regression the anytime floor lets through.

use super::*;
use crate::policy::BudgetRow;
use crate::stats::ExactLooks;
use crate::stats::LookKind;

#[test]
fn looks_follow_the_schedule_and_a_repeated_tick_takes_none() {
    let (s, _) = run(ramping(), 1..=9, HEALTHY);
    let interim = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .latest()
        .cloned()
        .expect("interim looks");
    assert_eq!(interim.kind, LookKind::Interim { step: 0 });
    // Nine ticks into a 10-minute dwell of step 1 of 2: (0 + ¼·0.9²)/2 of the budget.
    let p = &s.policy;
    let budget = p.alpha
        * p.alpha_split.errors_split
        * p.look_share
        * (1.0 - p.history_share - p.onset_share);
    assert!((interim.alpha - budget * 0.25 * 0.81 / 2.0).abs() < 1e-12);
    let (s, _) = run(s, 10..=10, HEALTHY);
    let end = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .latest()
        .cloned()
        .expect("step-end look");
    assert_eq!(end.kind, LookKind::StepEnd { step: 0 });
    assert!((end.alpha - budget / 2.0).abs() < 1e-12 && !end.rejected);
    let count = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .count();
    // The same tick again takes no look.
    let obs = observe(&s, at(10), HEALTHY, &s.deployment.live);
    let (s, _) = step(s, Input::Tick(obs), at(10));
    assert_eq!(
        s.signals
            .looks
            .scheduled(BudgetRow::ErrorsSplitLooks)
            .unwrap()
            .count(),
        count
    );
    let (s, _) = run(s, 11..=19, HEALTHY);
    let last = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .latest()
        .expect("50% step looks");
    assert_eq!(last.kind, LookKind::Interim { step: 1 });
    assert!(last.alpha > end.alpha && last.alpha < budget);
    let (s, _) = run(s, 20..=22, HEALTHY);
    let closing = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .latest()
        .expect("closing look");
    assert!(closing.closing() && (closing.alpha - budget).abs() < 1e-12);
    assert_eq!(s.phase, Phase::Baking);
}

#[test]
fn closing_look_rolls_back_a_regression_the_anytime_floor_lets_through() {
    // ×1.5 (2% → 3% 5xx) at 10 rps: exactly the e-process's floor rho0 = 1.5, so only the
    // exact looks (null: ratio ≤ 1) can see it; the closing look does, once the whole split
    // is counted (minute 19 is visible at minute 22), after the promotion to 100%.
    let worse = Traffic {
        rps: 10.0,
        new_errors: 0.03,
        old_errors: 0.02,
        new_p95_ms: 120.0,
    };
    let (s, _) = run(ramping(), 1..=21, worse);
    assert_eq!(
        s.phase,
        Phase::Baking,
        "promoted on schedule, not yet judged"
    );
    assert!(!s.signals.errors.summary().regression);
    let (s, actions) = run(s, 22..=22, worse);
    assert!(rolled_back(&s), "{:?}", s.phase);
    let look = s
        .signals
        .looks
        .scheduled(BudgetRow::ErrorsSplitLooks)
        .unwrap()
        .rejected()
        .expect("closing look rejected");
    assert!(look.closing() && look.p_value <= look.alpha);
    let rollback = rollback_notice(&actions);
    let text = format!("{:?}", rollback.details);
    assert!(text.contains("closing look"), "{text}");
}

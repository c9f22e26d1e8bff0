//! Tests of looks in words.

use crate::stats::{LookKind, ScheduledLooks};

#[test]
fn a_look_past_the_exact_looks_total_says_so_rather_than_blaming_the_minute() {
    use crate::stats::PairCounts;
    let mut looks = ScheduledLooks::new(0.01, 1.0, 30.0);
    assert!(looks.scale_for_bursts(5_000.0));
    let minute = PairCounts {
        new_total: 600.0,
        new_bad: 20.0,
        old_total: 5400.0,
        old_bad: 180.0,
    };
    // 200 events a minute, far under the 5,000 backstop; 101 minutes pass 20,000 in all.
    for _ in 0..101 {
        looks.observe(minute);
    }
    let look = looks
        .look(LookKind::Interim { step: 0 }, 0.5)
        .expect("a look");
    let said = look.to_string();
    assert!(
        said.contains("skipped, 20200 bad events in all (limit 20000)"),
        "{said}"
    );
}

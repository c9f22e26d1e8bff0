//! Tests of looks in words.

use crate::stats::{ExactLooks, LookKind, ScheduledLooks};

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

#[test]
fn an_onset_look_names_the_minutes_it_judged() {
    use crate::stats::{OnsetLooks, PairCounts};
    let mut looks = OnsetLooks::new(0.001, 1.0, 30.0);
    for new_bad in [3.0, 3.0, 15.0, 15.0, 15.0] {
        looks.observe(PairCounts {
            new_total: 3000.0,
            new_bad,
            old_total: 3000.0,
            old_bad: 3.0,
        });
        looks.look(LookKind::Interim { step: 1 });
    }
    let said = looks.latest().expect("a look").to_string();
    assert!(
        said.starts_with("onset look 5 over the split's newest 3 minutes: 45 of 54 bad events"),
        "{said}"
    );
}

#[test]
fn a_bake_onset_look_names_the_bake_minutes_it_judged() {
    use crate::stats::{BakeLooks, Reference};
    let mut looks = BakeLooks::onset(0.001, 1.5, 30.0);
    looks.start(Reference {
        minutes: 20,
        requests: 120_000.0,
        bad: 120.0,
    });
    for bad in [6.0, 30.0] {
        looks.observe(6000.0, bad);
        looks.look(0.0);
    }
    let said = looks.latest().expect("a look").to_string();
    assert!(
        said.starts_with("bake onset look 2 over the newest minute: 30/6000"),
        "{said}"
    );
}

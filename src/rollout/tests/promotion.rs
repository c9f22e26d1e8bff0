//! Promotion along the ramp: a step is promoted after its dwell (counted from the confirmed
//! write), on evidence only (the e-process's or the looks' power), once per tick.

use super::*;

#[test]
fn promotes_after_dwell_with_evidence() {
    let (s, actions) = run(ramping(), 1..=9, HEALTHY);
    assert_eq!(
        s.phase,
        Phase::Ramping { step: 0 },
        "dwell not over at 9 min"
    );
    assert!(writes(&actions).is_empty());
    let (s, actions) = run(s, 10..=10, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
    let ws = writes(&actions);
    assert_eq!(ws.len(), 1);
    assert_eq!(percents(&ws[0].1), vec![("new", 50.0), ("old", 50.0)]);
}

#[test]
fn dwell_counts_from_confirmation_not_from_the_write() {
    let (mut s, actions) = first_split_written(Policy::default());
    // The write is confirmed three minutes late; ticks meanwhile see the old split, and the
    // resent write (minute 2) is not answered either.
    for m in 1..=2 {
        let obs = observe(&s, at(m), HEALTHY, &[stable()]);
        s = step(s, Input::Tick(obs), at(m)).0;
    }
    assert!(s.clock.live_since.is_none());
    let (s, _) = confirm(s, &actions, at(3));
    assert_eq!(s.clock.live_since, Some(at(3)));
    let (s, _) = run(s, 4..=12, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 0 }, "only 9 min live");
    let (s, _) = run(s, 13..=13, HEALTHY);
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
}

#[test]
fn never_promotes_on_missing_data() {
    type Spoil = fn(&mut Observations);
    let cases: Vec<(&str, Spoil)> = vec![
        ("counts query failed", |o| {
            o.counts = Some(Fetched::Failed {
                why: "SQL 500".into(),
            })
        }),
        ("counts not fetched", |o| o.counts = None),
        ("deployment read failed", |o| {
            o.deployment = Some(Fetched::Failed {
                why: "API 502".into(),
            })
        }),
        ("healthz not probed", |o| o.healthz = None),
        ("healthz answered by old", |o| {
            o.healthz = Some(answered_by_old())
        }),
        ("no new-version traffic", |o| {
            if let Some(Fetched::Ok(w)) = o.counts.as_mut() {
                for m in &mut w.minutes {
                    m.new = VersionCounts::default();
                }
            }
        }),
        ("empty window", |o| {
            if let Some(Fetched::Ok(w)) = o.counts.as_mut() {
                w.minutes.clear();
            }
        }),
    ];
    for (name, spoil) in cases {
        let (mut s, _) = run(ramping(), 1..=9, HEALTHY);
        for m in 10..=14 {
            let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
            spoil(&mut obs);
            let (next, actions) = step(s, Input::Tick(obs), at(m));
            assert!(writes(&actions).is_empty(), "{name}: wrote at minute {m}");
            assert_eq!(next.phase, Phase::Ramping { step: 0 }, "{name}");
            s = next;
        }
    }
}

#[test]
fn same_tick_twice_does_not_double_advance() {
    let (s, _) = run(ramping(), 1..=9, HEALTHY);
    let obs = observe(&s, at(10), HEALTHY, &s.deployment.live);
    let (once, first) = step(s, Input::Tick(obs.clone()), at(10));
    assert_eq!(once.phase, Phase::Ramping { step: 1 });
    let (once, read) = confirm(once, &first, at(10));
    assert_eq!(writes(&read).len(), 1);
    let (twice, second) = step(once.clone(), Input::Tick(obs), at(10));
    assert!(second.is_empty(), "second delivery emitted {second:?}");
    assert_eq!(twice.signals, once.signals, "nothing counted twice");
    assert_eq!(twice.phase, once.phase);
}

#[test]
fn holding_notice_is_sent_once_per_step() {
    let (mut s, _) = run(ramping(), 1..=9, HEALTHY);
    let mut holding = 0;
    for m in 10..=14 {
        let mut obs = observe(&s, at(m), HEALTHY, &s.deployment.live);
        obs.healthz = Some(answered_by_old());
        let (next, actions) = step(s, Input::Tick(obs), at(m));
        holding += notices(&actions)
            .iter()
            .filter(|n| matches!(n.kind, EventKind::Holding { .. }))
            .count();
        s = next;
    }
    assert_eq!(holding, 1);
}

#[test]
fn the_looks_power_counts_as_promotion_evidence_where_the_e_process_falls_short() {
    // 6 rps at 0.1% 5xx: by the end of the 10% step the new version has served about 290
    // requests. The e-process's exposure rule projects too little power at its α for that;
    // the step-end look (α 0.45% × ½) would have caught a ×10 regression (5% against the
    // 0.5% floor) with probability ≥ 90%, so the step is promoted on time.
    let slow = Traffic {
        rps: 6.0,
        new_errors: 0.001,
        old_errors: 0.001,
        new_p95_ms: 120.0,
    };
    let (s, _) = run(ramping(), 1..=10, slow);
    assert_eq!(
        s.phase,
        Phase::Ramping { step: 1 },
        "promoted at the dwell's end"
    );
    assert!(
        !s.signals.errors.summary().exposure_met,
        "not by the e-process alone"
    );

    // Without looks the same release holds at 10%.
    let (held, actions) = first_split_written(Policy {
        look_share: 0.0,
        ..Policy::default()
    });
    let held = confirm(held, &actions, T0).0;
    let (held, _) = run(held, 1..=10, slow);
    assert_eq!(
        held.phase,
        Phase::Ramping { step: 0 },
        "holds without the looks"
    );
}

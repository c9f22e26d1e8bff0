//! What a tick asks for and counts: the counts query runs from the first uncounted minute
//! to the ingestion lag, and each minute is counted once.

use super::*;

#[test]
fn plan_queries_from_first_uncounted_minute_to_now_minus_lag() {
    let s = ramping();
    let q = plan(&s, at(5).plus_minutes(0)).counts.expect("query");
    assert_eq!((q.from, q.to), (at(0), at(3)));
    assert_eq!(q.latency_from, at(-2));
    assert_eq!(q.slow_above_ms, 250.0);
    assert!(plan(&s, at(2)).counts.is_none(), "nothing complete yet");
    let (done, _) = step(s, operator(Command::Abort, "ops", None), at(5));
    let (done, _) = confirm(done, &[], at(5));
    assert!(matches!(done.phase, Phase::RollingBack { .. }));
    assert!(plan(&done, at(6)).counts.is_none());
}

#[test]
fn late_overlapping_window_counts_each_minute_once() {
    let (s, _) = run(ramping(), 1..=5, HEALTHY);
    let before = s.signals.step_totals.new.requests;
    let next = s.signals.next_minute.expect("counting");
    // A late tick re-reports two already-counted minutes plus one new one.
    let minute = |m: Timestamp| MinuteCounts {
        minute: m,
        new: counts(600.0, 0.01),
        old: counts(5400.0, 0.01),
        sample_interval: 1.0,
    };
    let window = CountsWindow {
        from: next.plus_minutes(-2),
        to: next.plus_minutes(1),
        minutes: (-2..=0).map(|i| minute(next.plus_minutes(i))).collect(),
        new_latency: VersionLatency::default(),
        old_latency: VersionLatency::default(),
    };
    let obs = Observations {
        counts: Some(Fetched::Ok(window)),
        ..Observations::default()
    };
    let (s, _) = step(s, Input::Tick(obs), at(8));
    assert_eq!(s.signals.step_totals.new.requests, before + 600.0);
    assert_eq!(s.signals.next_minute, Some(next.plus_minutes(1)));
}

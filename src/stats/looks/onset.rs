//! Onset looks: tests of the split's most recent minutes alone, so that a regression
//! that starts after minutes of healthy data is judged on the minutes since it started and
//! not diluted by the healthy ones before. Each look tests every window that ends at the
//! newest counted minute, 1 to `ONSET_WINDOW_MINUTES` long; the union over the windows and
//! the funded looks is paid in α (Bonferroni). Method: docs/statistics.md, "Onset looks".

use crate::stats::counts::round_count;
use crate::stats::outcome::{Against, ExactLooks, LookKind, LookOutcome, Skipped};
use crate::stats::special::binomial_upper_tail;
use crate::stats::PairCounts;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The longest window a look tests, in counted minutes. A regression's onset is at most this
/// many minutes before the newest minute for the look to see it alone; older onsets are the
/// scheduled looks' (their cumulative sums grow with it).
pub const ONSET_WINDOW_MINUTES: usize = 8;
/// Looks funded: each of the first `ONSET_MAX_LOOKS` looks with a fresh minute tests its
/// windows at `alpha / (ONSET_WINDOW_MINUTES × ONSET_MAX_LOOKS)`; after them none is taken
/// (a split held for longer than the schedule is the other tests').
pub const ONSET_MAX_LOOKS: u32 = 40;

/// One counted minute as fed: the new and the old version's requests, the bad events of
/// both, and the new version's. Stored as a 4-element array: it is most of these looks'
/// state, which every tick decodes and encodes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Minute(f64, f64, u64, u64);

impl Minute {
    fn new_requests(&self) -> f64 {
        self.0
    }

    fn old_requests(&self) -> f64 {
        self.1
    }

    fn events(&self) -> u64 {
        self.2
    }

    fn new_bad(&self) -> u64 {
        self.3
    }

    /// The chance under "ratio ≤ `rho0`" that one of the minute's bad events is the new
    /// version's.
    fn p0(&self, rho0: f64) -> f64 {
        let q = self.0 / (self.0 + self.1);
        rho0 * q / (rho0 * q + 1.0 - q)
    }
}

/// The onset looks of one count signal over one rollout's split.
///
/// Given each minute's bad events of both versions and the new version's share of requests,
/// the new version's count is binomial with p0 = ρ0q/(ρ0q + 1 − q) under "ratio ≤ ρ0",
/// independently across minutes (statistics.md, "The count test"); a window's count is their
/// sum, tested against a binomial bound on its tail (`Window::p_value_bound`). Every window
/// of every funded look is one test at `alpha / (ONSET_WINDOW_MINUTES × ONSET_MAX_LOOKS)`, so all of them together
/// falsely reject with probability at most `alpha` whenever the null holds in every minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OnsetLooks {
    /// α of all the looks together (0: no looks).
    alpha: f64,
    /// Null: ratio ≤ `rho0`.
    rho0: f64,
    /// A window averaging more bad events a minute is skipped (as the scheduled looks skip).
    max_events_per_minute: f64,
    /// Fed counts scaled for burstiness (`BurstScale`), as the scheduled looks are.
    scaled: bool,
    /// The newest counted minutes, oldest first; at most `ONSET_WINDOW_MINUTES`.
    recent: VecDeque<Minute>,
    /// Minutes counted.
    minutes: u32,
    /// `minutes` when the latest look was taken.
    minutes_at_last_look: u32,
    /// Looks taken.
    looks: u32,
    /// The latest look (once one rejects, no other is taken).
    latest: Option<LookOutcome>,
}

impl ExactLooks for OnsetLooks {
    fn alpha(&self) -> f64 {
        self.alpha
    }

    fn latest(&self) -> Option<&LookOutcome> {
        self.latest.as_ref()
    }
}

impl OnsetLooks {
    /// Looks sharing `alpha` against "ratio ≤ `rho0`", a window skipped while it averages
    /// more than `max_events_per_minute` bad events a minute. `alpha` 0 takes no looks.
    pub fn new(alpha: f64, rho0: f64, max_events_per_minute: f64) -> Self {
        OnsetLooks {
            alpha,
            rho0,
            max_events_per_minute,
            ..Self::default()
        }
    }

    /// Marks the looks as fed counts scaled for burstiness and raises the events-a-minute
    /// limit to `limit` (as `ScheduledLooks::scale_for_bursts`). Refused (false) once a
    /// minute has been counted.
    pub fn scale_for_bursts(&mut self, limit: f64) -> bool {
        if self.minutes > 0 {
            return false;
        }
        self.max_events_per_minute = self.max_events_per_minute.max(limit);
        self.scaled = true;
        true
    }

    /// The level of each window's test.
    pub fn test_alpha(&self) -> f64 {
        self.alpha / (ONSET_WINDOW_MINUTES as f64 * f64::from(ONSET_MAX_LOOKS))
    }

    /// True once a look rejected, every funded look was taken, or none can be (α 0).
    pub fn finished(&self) -> bool {
        self.alpha <= 0.0
            || self.looks >= ONSET_MAX_LOOKS
            || self.latest.as_ref().is_some_and(|l| l.rejected)
    }

    /// Counts one split minute as fed (scaled where these looks are). Minutes where one
    /// version served nothing carry no evidence and are ignored.
    pub fn observe(&mut self, minute: PairCounts) {
        if minute.new_share().is_none() || !minute.is_valid() || self.finished() {
            return;
        }
        let (new_bad, old_bad) = (round_count(minute.new_bad), round_count(minute.old_bad));
        self.minutes += 1;
        self.recent.push_back(Minute(
            minute.new_total,
            minute.old_total,
            new_bad + old_bad,
            new_bad,
        ));
        while self.recent.len() > ONSET_WINDOW_MINUTES {
            self.recent.pop_front();
        }
    }

    /// Tests every window ending at the newest minute and records the one with the smallest
    /// p-value as this look (`kind` is where the schedule is). `None` when the looks are
    /// finished or no minute was counted since the last look.
    pub fn look(&mut self, kind: LookKind) -> Option<&LookOutcome> {
        if self.finished() || self.minutes == self.minutes_at_last_look {
            return None;
        }
        self.looks += 1;
        self.minutes_at_last_look = self.minutes;
        let alpha = self.test_alpha();
        let mut best: Option<Window> = None;
        let mut skipped = None;
        let mut window = Window::default();
        for m in self.recent.iter().rev() {
            window.add(m, self.rho0);
            let per_minute = window.null_events(self.rho0) / f64::from(window.minutes);
            if per_minute > self.max_events_per_minute {
                skipped.get_or_insert(Skipped::TooManyEvents {
                    per_minute,
                    limit: self.max_events_per_minute,
                });
                continue;
            }
            if window.events == 0 {
                continue;
            }
            window.p_value = window.p_value_bound();
            if best.as_ref().is_none_or(|b| window.p_value < b.p_value) {
                best = Some(window.clone());
            }
        }
        let tested = best.is_some();
        let w = best.unwrap_or(window);
        let skipped = if tested {
            None
        } else {
            Some(skipped.unwrap_or(Skipped::NoEvents))
        };
        let p_value = if tested { w.p_value } else { 1.0 };
        self.latest = Some(LookOutcome {
            kind,
            number: self.looks,
            new_bad: w.new_bad,
            null_mean: w.null_mean,
            p_value,
            alpha,
            rejected: tested && p_value <= alpha,
            skipped,
            scaled: self.scaled,
            divisor: None,
            against: Against::Recent {
                minutes: w.minutes,
                events: w.events,
                rho0: self.rho0,
            },
        });
        self.latest.as_ref()
    }
}

/// The newest minutes summed, back to some onset.
#[derive(Clone, Debug, Default)]
struct Window {
    minutes: u32,
    events: u64,
    new_bad: u64,
    null_mean: f64,
    new_requests: f64,
    old_requests: f64,
    p_value: f64,
}

impl Window {
    fn add(&mut self, m: &Minute, rho0: f64) {
        self.minutes += 1;
        self.events += m.events();
        self.new_bad += m.new_bad();
        self.null_mean += m.events() as f64 * m.p0(rho0);
        self.new_requests += m.new_requests();
        self.old_requests += m.old_requests();
    }

    /// A p-value for the window's new-version count: the upper tail of Binomial(events, p̄),
    /// p̄ the window's mean null share. The count is a sum of binomials with the minutes'
    /// shares (Poisson-binomial), whose tail at or beyond its mean + 1 is at most that
    /// binomial's (Hoeffding 1956, "On the distribution of the number of successes in
    /// independent trials", Theorem 4), so this is never below the exact p-value, equals it
    /// where the shares are equal (within a step), and costs a continued fraction rather
    /// than a convolution. Closer to the mean it is 1.
    fn p_value_bound(&self) -> f64 {
        let mean = self.null_mean;
        if (self.new_bad as f64) < mean + 1.0 || self.events == 0 {
            return 1.0;
        }
        binomial_upper_tail(self.events, mean / self.events as f64, self.new_bad)
    }

    /// Bad events of both versions the null expects: the old version's rate over the window
    /// at `rho0` × it on the new version's requests. Whether a window is too busy for the
    /// Poisson model is a matter of that rate, not of the count, which a regression inflates.
    fn null_events(&self, rho0: f64) -> f64 {
        let old_bad = (self.events - self.new_bad) as f64;
        if self.old_requests <= 0.0 {
            return self.events as f64;
        }
        old_bad / self.old_requests * (self.old_requests + rho0 * self.new_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Rng;

    fn minute(new_total: f64, new_bad: f64, old_total: f64, old_bad: f64) -> PairCounts {
        PairCounts {
            new_total,
            new_bad,
            old_total,
            old_bad,
        }
    }

    #[test]
    fn a_regression_after_healthy_minutes_is_judged_on_the_minutes_since_it_started() {
        let mut looks = OnsetLooks::new(0.001, 1.0, 200.0);
        // 15 healthy minutes at an even split, 6 bad events a minute each side's half.
        for _ in 0..15 {
            looks.observe(minute(3000.0, 3.0, 3000.0, 3.0));
            assert!(!looks.look(LookKind::Interim { step: 1 }).unwrap().rejected);
        }
        // ×5 from here: 15 against 3 a minute.
        looks.observe(minute(3000.0, 15.0, 3000.0, 3.0));
        looks.look(LookKind::Interim { step: 1 });
        looks.observe(minute(3000.0, 15.0, 3000.0, 3.0));
        looks.look(LookKind::Interim { step: 1 });
        looks.observe(minute(3000.0, 15.0, 3000.0, 3.0));
        let look = looks.look(LookKind::Interim { step: 1 }).unwrap();
        assert!(look.rejected, "{look:?}");
        match look.against {
            Against::Recent {
                minutes, events, ..
            } => {
                assert_eq!((minutes, events), (3, 54), "the window since the onset");
            }
            _ => panic!("{look:?}"),
        }
        assert!(
            looks.look(LookKind::Interim { step: 1 }).is_none(),
            "finished"
        );
    }

    #[test]
    fn the_binomial_bound_is_never_below_the_exact_tail() {
        use super::super::pmf::Pmf;
        let mut rng = Rng::from_seed(19);
        for _ in 0..300 {
            let minutes = 1 + rng.next_u64() % 8;
            let mut window = Window::default();
            let mut pmf = Pmf::one();
            for _ in 0..minutes {
                let q = 0.02 + 0.9 * rng.uniform();
                let events = rng.next_u64() % 40;
                let m = Minute(6000.0 * q, 6000.0 * (1.0 - q), events, 0);
                window.add(&m, 1.0);
                pmf = pmf.convolve(&Pmf::binomial(events, m.p0(1.0)));
            }
            for k in 0..=window.events {
                window.new_bad = k;
                let (bound, exact) = (window.p_value_bound(), pmf.mass_from(k));
                assert!(
                    bound >= exact - 1e-12,
                    "{k} of {window:?}: {bound} < {exact}"
                );
            }
        }
    }

    #[test]
    fn a_look_without_a_fresh_minute_or_past_the_funded_looks_is_not_taken() {
        let mut looks = OnsetLooks::new(0.001, 1.0, 200.0);
        assert!(looks.look(LookKind::Interim { step: 0 }).is_none());
        for _ in 0..ONSET_MAX_LOOKS {
            looks.observe(minute(100.0, 0.0, 900.0, 1.0));
            assert!(looks.look(LookKind::Interim { step: 0 }).is_some());
            assert!(looks.look(LookKind::Interim { step: 0 }).is_none());
        }
        looks.observe(minute(100.0, 0.0, 900.0, 1.0));
        assert!(looks.look(LookKind::Interim { step: 0 }).is_none());
    }

    #[test]
    fn busy_windows_are_skipped_and_quiet_ones_still_tested() {
        let mut looks = OnsetLooks::new(0.001, 1.0, 30.0);
        // The old version alone runs at 40 a minute: busy whatever the new one does.
        looks.observe(minute(500.0, 10.0, 500.0, 40.0));
        let look = looks.look(LookKind::Interim { step: 0 }).unwrap().clone();
        assert!(matches!(look.skipped, Some(Skipped::TooManyEvents { .. })));
        looks.observe(minute(500.0, 2.0, 500.0, 2.0));
        let look = looks.look(LookKind::Interim { step: 0 }).unwrap();
        assert_eq!(look.skipped, None);
        assert!(matches!(look.against, Against::Recent { minutes: 1, .. }));
    }

    #[test]
    fn a_regression_that_multiplies_the_bad_events_does_not_turn_its_own_look_off() {
        let mut looks = OnsetLooks::new(0.001, 1.0, 30.0);
        // ×20 at an even split: 60 against 3 a minute, over the raw limit of 30 in all,
        // but the null's rate (the old version's, on both) is 6 a minute.
        looks.observe(minute(3000.0, 60.0, 3000.0, 3.0));
        let look = looks.look(LookKind::Interim { step: 1 }).unwrap();
        assert_eq!(look.skipped, None);
        assert!(look.rejected, "{look:?}");
    }

    #[test]
    fn a_window_s_distribution_holds_its_busy_minutes_too() {
        let mut looks = OnsetLooks::new(0.001, 1.0, 30.0);
        // A quiet minute at an even split, then the minute 100% went live: the old version's
        // few requests make its rate look busy on its own, so that window is skipped; the
        // two-minute window is not, and its null distribution must hold both minutes.
        looks.observe(minute(3000.0, 2.0, 3000.0, 2.0));
        looks.observe(minute(6000.0, 4.0, 10.0, 0.0));
        looks.observe(minute(5990.0, 4.0, 10.0, 1.0));
        let look = looks.look(LookKind::Interim { step: 1 }).unwrap();
        assert!(!look.rejected, "{look:?}");
        assert!(look.p_value > 0.1, "{look:?}");
    }

    /// Under the null, at the per-window level the union bound asks for, the looks of many
    /// healthy splits reject no more often than their α (here raised so it can be seen).
    #[test]
    fn healthy_splits_are_rejected_at_most_at_alpha() {
        let runs = 4000;
        let alpha = 0.2;
        let mut rng = Rng::from_seed(7);
        let mut rejected = 0;
        for _ in 0..runs {
            let mut looks = OnsetLooks::new(alpha, 1.0, 200.0);
            for m in 0..ONSET_MAX_LOOKS {
                let q = if m < 10 { 0.1 } else { 0.5 };
                let events = rng.poisson(6.0);
                let new_bad = rng.binomial(events, q) as f64;
                let old_bad = events as f64 - new_bad;
                looks.observe(minute(6000.0 * q, new_bad, 6000.0 * (1.0 - q), old_bad));
                if looks
                    .look(LookKind::Interim { step: 0 })
                    .is_some_and(|l| l.rejected)
                {
                    rejected += 1;
                    break;
                }
            }
        }
        let rate = rejected as f64 / runs as f64;
        assert!(rate <= alpha, "{rate}");
        assert!(
            rate > 0.0,
            "the level is not so conservative that nothing ever rejects"
        );
    }
}

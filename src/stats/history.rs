//! The baseline-history look: the new version's split-time bad events against the old
//! version's own rate over the hours before the rollout, with a drift margin, and rejecting
//! only when a concurrent comparison agrees. Pure and sync. Method and validity:
//! docs/statistics.md, "The baseline-history look".

use super::counts::round_count;
use super::looks::MAX_EVENTS;
use super::outcome::{Against, ExactLooks, LookKind, LookOutcome, Skipped};
use super::special::binomial_upper_tail;
use super::spending::spend;
use super::{PairCounts, ScheduledLooks};
use serde::{Deserialize, Serialize};

/// The old version's counts over the minutes before the rollout (per sample, like the split's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Minutes of the window that had requests.
    pub minutes: u32,
    /// Requests the old version served.
    pub requests: f64,
    /// Of those, bad (5xx, or slower than the ceiling).
    pub bad: f64,
}

/// The history looks of one count signal over one rollout's split.
///
/// Counts are Poisson with rates proportional to requests. Given n = k + h (k the new
/// version's bad events over the split, h the old version's over the baseline window), k is
/// binomial with p = λ₁N₁/(λ₁N₁ + λₕNₕ), so "λ₁ ≤ margin × λₕ" is tested exactly by the
/// binomial tail at p₀ = margin·N₁/(margin·N₁ + Nₕ). That null holds while the old version's
/// rate during the split has drifted up by less than `margin` since the window; beyond that
/// a look can reject only when the `guard` (exact concurrent looks of "new ≤ `guard_rho0` ×
/// old" at `guard_alpha`, the same boundary machinery and caveats as `ScheduledLooks`) has
/// rejected too, so the chance of a false rollback through this look stays within
/// `guard_alpha` however large the drift, as far as the guard itself is valid; and a look is
/// skipped while the old version's own split-time counts show the drift
/// (`DRIFT_CHECK_ALPHA`), which keeps it far below that when the drift is visible. Looks
/// are taken at step ends and at the closing look; each spends `alpha` times the allowance
/// added since the previous one (Bonferroni), so together they spend at most `alpha`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryLooks {
    /// α of all the history looks together (0: none).
    alpha: f64,
    /// Drift margin: the null is "new rate ≤ margin × the baseline's rate".
    margin: f64,
    /// See `Policy::look_max_events_per_minute`; applies to the baseline window too.
    max_events_per_minute: f64,
    /// The old version before the rollout, once read.
    baseline: Option<Baseline>,
    /// Exact concurrent looks at the guard's α, fed the same minutes and looks.
    guard: ScheduledLooks,
    /// The new version's requests and bad events over the split minutes (per sample).
    new_requests: f64,
    new_bad: u64,
    /// The old version's over the same minutes (the drift check).
    old_requests: f64,
    old_bad: u64,
    /// Split minutes counted (both versions served) and their bad events, for the
    /// events-a-minute limit (checked here, not only through the guard's look, which is not
    /// taken on a tick without fresh minutes).
    minutes: u32,
    /// Allowance spent by the history looks so far.
    spent: f64,
    /// The latest history look (the rejecting one, once one rejects).
    latest: Option<LookOutcome>,
}

/// Level of the drift check: a history look is skipped while the old version's split-time
/// bad events reject "old ≤ margin × baseline" at this level.
pub const DRIFT_CHECK_ALPHA: f64 = 0.05;

impl Baseline {
    /// Adds one minute of the old version's requests and bad events.
    pub fn add(&mut self, requests: f64, bad: f64) {
        self.minutes += 1;
        self.requests += requests;
        self.bad += bad;
    }

    /// Finite counts with some requests: something a look can compare against.
    pub(super) fn is_usable(&self) -> bool {
        self.requests.is_finite() && self.requests > 0.0 && self.bad.is_finite() && self.bad >= 0.0
    }

    /// Exact p-value of `bad` events over `requests` against "rate ≤ margin × this one's",
    /// conditional on those events plus this one's (rounded up: more reference events only
    /// make the test more cautious).
    pub(super) fn exceedance(&self, margin: f64, bad: u64, requests: f64) -> f64 {
        rate_exceedance((self.bad, self.requests), margin, bad, requests)
    }
}

/// Exact p-value of `bad` events over `requests` against "rate ≤ margin × the old version's",
/// the old version's (bad, requests) counted elsewhere, conditional on both sides' events
/// (the old side's rounded up: more of them only make the test more cautious). The history
/// looks' baseline and the bake looks' reference both test this way.
pub(super) fn rate_exceedance(old: (f64, f64), margin: f64, bad: u64, requests: f64) -> f64 {
    let (old_bad, old_requests) = old;
    let h = round_count(old_bad.ceil());
    let p0 = margin * requests / (margin * requests + old_requests);
    binomial_upper_tail(bad.saturating_add(h), p0, bad)
}

impl ExactLooks for HistoryLooks {
    fn alpha(&self) -> f64 {
        self.alpha
    }

    fn latest(&self) -> Option<&LookOutcome> {
        self.latest.as_ref()
    }
}

impl HistoryLooks {
    /// History looks sharing `alpha` against "new ≤ `margin` × baseline", guarded by exact
    /// concurrent looks of "new ≤ `guard_rho0` × old" at `guard_alpha`.
    pub fn new(
        alpha: f64,
        margin: f64,
        guard_alpha: f64,
        guard_rho0: f64,
        max_events_per_minute: f64,
    ) -> Self {
        HistoryLooks {
            alpha,
            margin,
            max_events_per_minute,
            guard: ScheduledLooks::new(guard_alpha, guard_rho0, max_events_per_minute),
            ..Self::default()
        }
    }

    /// Sets the baseline once; a window without requests is no baseline.
    pub fn set_baseline(&mut self, baseline: Baseline) {
        if self.baseline.is_none() && baseline.is_usable() {
            self.baseline = Some(baseline);
        }
    }

    /// The baseline, once read.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    fn finished(&self) -> bool {
        self.alpha <= 0.0
            || self
                .latest
                .as_ref()
                .is_some_and(|l| l.rejected || l.kind == LookKind::Closing)
    }

    /// Counts one split minute (as `ScheduledLooks::observe`).
    pub fn observe(&mut self, minute: PairCounts) {
        if self.finished() || minute.new_share().is_none() || !minute.is_valid() {
            return;
        }
        self.guard.observe(minute);
        self.new_requests += minute.new_total;
        self.new_bad = self.new_bad.saturating_add(round_count(minute.new_bad));
        self.old_requests += minute.old_total;
        self.old_bad = self.old_bad.saturating_add(round_count(minute.old_bad));
        self.minutes += 1;
    }

    /// Takes the guard's look of `kind` at `allowance` and, at a step end or the closing
    /// look, a history look spending `alpha` × the allowance added since the last one.
    /// Returns the history look, if one was taken.
    pub fn look(&mut self, kind: LookKind, allowance: f64) -> Option<&LookOutcome> {
        if self.finished() {
            return None;
        }
        self.guard.look(kind, allowance);
        if matches!(kind, LookKind::Interim { .. }) {
            return None;
        }
        let allowance = if kind == LookKind::Closing {
            1.0
        } else {
            allowance
        };
        let alpha = spend(self.alpha, &mut self.spent, allowance);
        let guard_rejected = self.guard.rejected().is_some();
        let null_mean = self.baseline.map_or(0.0, |b| {
            self.margin * self.new_requests * b.bad / b.requests
        });
        let skipped = self.skip_reason();
        let p_value = match (&skipped, self.baseline) {
            (None, Some(b)) => b.exceedance(self.margin, self.new_bad, self.new_requests),
            _ => 1.0,
        };
        self.latest = Some(LookOutcome {
            kind,
            // The guard takes every look the history looks take, and the interims too.
            number: self.guard.latest().map_or(0, |l| l.number),
            new_bad: self.new_bad,
            null_mean,
            p_value,
            alpha,
            rejected: skipped.is_none() && alpha > 0.0 && p_value <= alpha && guard_rejected,
            skipped,
            scaled: false,
            divisor: None,
            against: Against::Baseline {
                new_requests: self.new_requests,
                baseline: self.baseline,
                margin: self.margin,
                guard_alpha: self.guard_alpha(),
                guard_rejected,
            },
        });
        self.latest.as_ref()
    }

    fn guard_alpha(&self) -> f64 {
        self.guard.alpha()
    }

    fn skip_reason(&self) -> Option<Skipped> {
        let Some(baseline) = self.baseline else {
            return Some(Skipped::NoBaseline);
        };
        let split_events = self.new_bad.saturating_add(self.old_bad) as f64;
        let split = split_events / f64::from(self.minutes.max(1));
        let window = baseline.bad / f64::from(baseline.minutes.max(1));
        let per_minute = split.max(window);
        if per_minute > self.max_events_per_minute || split_events > MAX_EVENTS as f64 {
            return Some(Skipped::TooManyEvents {
                per_minute,
                limit: self.max_events_per_minute,
            });
        }
        if self.new_bad == 0 {
            return Some(Skipped::NoEvents);
        }
        let drift_p = baseline.exceedance(self.margin, self.old_bad, self.old_requests);
        (drift_p <= DRIFT_CHECK_ALPHA).then_some(Skipped::Drifted {
            old_bad: self.old_bad,
            old_requests: self.old_requests,
            p_value: drift_p,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::minute;

    fn baseline(requests: f64, bad: f64) -> Baseline {
        Baseline {
            minutes: 180,
            requests,
            bad,
        }
    }

    #[test]
    fn p_value_is_the_exact_binomial_tail_of_the_new_versions_share() {
        // 4 new-version events over 1,000 requests; 2 over 10,000 baseline requests; margin
        // 1: p0 = 1000/11000 = 1/11, n = 6, P(X ≥ 4) = Σ_{k≥4} C(6,k) p0^k (1-p0)^(6-k).
        let mut looks = HistoryLooks::new(0.01, 1.0, 0.5, 1.0, 30.0);
        looks.set_baseline(baseline(10_000.0, 2.0));
        looks.observe(minute(1000.0, 4.0, 1000.0, 0.0));
        let look = looks.look(LookKind::Closing, 1.0).unwrap().clone();
        let p: f64 = 1.0 / 11.0;
        let exact: f64 = (4..=6)
            .map(|k| {
                let choose = [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0][k as usize];
                choose * p.powi(k) * (1.0 - p).powi(6 - k)
            })
            .sum();
        assert!(
            (look.p_value - exact).abs() < 1e-12,
            "{} vs {exact}",
            look.p_value
        );
        assert!((look.null_mean - 0.2).abs() < 1e-12);
    }

    #[test]
    fn rejects_a_large_regression_only_with_the_guard_and_without_visible_drift() {
        // 8 new-version 5xx over 360 requests against 0.1% before the rollout: far beyond
        // 1.5 × the baseline. The old version served 0 bad events during the split, so the
        // guard (new ≤ old, 50%) rejects and so does the history look.
        let mut looks = HistoryLooks::new(0.002, 1.5, 0.05, 1.0, 30.0);
        looks.set_baseline(baseline(10_800.0, 11.0));
        looks.observe(minute(360.0, 8.0, 840.0, 0.0));
        let look = looks.look(LookKind::Closing, 1.0).unwrap();
        assert!(
            look.guard_rejected() && look.p_value < 0.002 && look.rejected,
            "{look:?}"
        );

        // One new-version 5xx in 1,000 requests against none in ten million before the
        // rollout is far above the baseline (p ≈ 1.5e-4), but one event cannot make the
        // concurrent guard reject: nothing is rejected.
        let mut lone = HistoryLooks::new(0.002, 1.5, 0.05, 1.0, 30.0);
        lone.set_baseline(baseline(1e7, 0.0));
        lone.observe(minute(1000.0, 1.0, 1000.0, 0.0));
        let look = lone.look(LookKind::Closing, 1.0).unwrap();
        assert!(
            look.p_value < 0.002 && !look.guard_rejected() && !look.rejected,
            "{look:?}"
        );

        // The same new-version counts as first, but the old version is as bad during the
        // split (an incident both share): its own counts show the drift from the baseline,
        // and the look is skipped.
        let mut shared = HistoryLooks::new(0.002, 1.5, 0.05, 1.0, 30.0);
        shared.set_baseline(baseline(10_800.0, 11.0));
        shared.observe(minute(360.0, 8.0, 840.0, 19.0));
        let look = shared.look(LookKind::Closing, 1.0).unwrap();
        assert!(
            matches!(look.skipped, Some(Skipped::Drifted { old_bad: 19, .. })),
            "{look:?}"
        );
        assert!(!look.rejected);
    }

    #[test]
    fn looks_spend_only_the_allowance_added_since_the_last_and_interims_none() {
        let mut looks = HistoryLooks::new(0.01, 1.5, 0.05, 1.0, 30.0);
        looks.set_baseline(baseline(10_000.0, 10.0));
        looks.observe(minute(100.0, 0.0, 900.0, 1.0));
        assert!(looks.look(LookKind::Interim { step: 0 }, 0.1).is_none());
        let first = looks.look(LookKind::StepEnd { step: 0 }, 0.5).unwrap();
        assert!((first.alpha - 0.005).abs() < 1e-15, "{first:?}");
        assert_eq!(first.skipped, Some(Skipped::NoEvents));
        looks.observe(minute(500.0, 1.0, 500.0, 1.0));
        let closing = looks.look(LookKind::Closing, 0.7).unwrap();
        assert!((closing.alpha - 0.005).abs() < 1e-15, "{closing:?}");
        assert!(looks.look(LookKind::Closing, 1.0).is_none(), "finished");
    }

    #[test]
    fn nothing_is_tested_without_a_baseline_or_with_too_many_events() {
        let mut none = HistoryLooks::new(0.01, 1.5, 0.05, 1.0, 30.0);
        none.set_baseline(baseline(0.0, 0.0));
        none.observe(minute(360.0, 8.0, 840.0, 0.0));
        let look = none.look(LookKind::Closing, 1.0).unwrap();
        assert_eq!(look.skipped, Some(Skipped::NoBaseline));
        assert!(!look.rejected);

        let mut busy = HistoryLooks::new(0.01, 1.5, 0.05, 1.0, 30.0);
        busy.set_baseline(baseline(1e7, 180.0 * 40.0));
        busy.observe(minute(360.0, 8.0, 840.0, 0.0));
        let look = busy.look(LookKind::Closing, 1.0).unwrap();
        assert!(matches!(look.skipped, Some(Skipped::TooManyEvents { .. })));
        assert!(!look.rejected);
    }

    #[test]
    fn too_many_split_events_skip_a_look_even_when_the_guard_takes_none() {
        // 40 bad events a minute in the split (over the limit of 30). The guard's interim
        // look on the same minutes is taken first, so at the step end it has nothing fresh
        // and takes no look; the history look must still see the rate and skip.
        let mut looks = HistoryLooks::new(0.01, 1.5, 0.05, 1.0, 30.0);
        looks.set_baseline(baseline(1e6, 100.0));
        looks.observe(minute(100.0, 30.0, 900.0, 10.0));
        assert!(looks.look(LookKind::Interim { step: 0 }, 0.2).is_none());
        let look = looks.look(LookKind::StepEnd { step: 0 }, 0.5).unwrap();
        assert!(
            matches!(look.skipped, Some(Skipped::TooManyEvents { per_minute, .. }) if per_minute == 40.0),
            "{look:?}"
        );
        assert!(!look.rejected);
    }

    /// The fast seeded check of `rollout-sim --validity`'s history looks cells: seeded
    /// healthy splits at the baseline's own rate reject within the looks' α; with both
    /// versions drifted to 3 × the baseline's rate (beyond the margin), the guard keeps false
    /// rejections within its α.
    #[test]
    fn false_rejections_stay_within_alpha_and_within_the_guards_alpha_under_drift() {
        use crate::sim::rng::Rng;
        use crate::sim::validity::models::history_looks_reject;
        use crate::sim::validity::{limit, rate};
        let mut rng = Rng::from_seed(1);
        let runs = 400;
        let stationary = rate(runs, || history_looks_reject(&mut rng, 1.0));
        let drifted = rate(runs, || history_looks_reject(&mut rng, 3.0));
        assert!(stationary <= limit(0.05, runs), "stationary {stationary}");
        assert!(drifted <= limit(0.05, runs), "drifted {drifted}");
        assert!(
            drifted > stationary,
            "drift beyond the margin is what the guard is for"
        );
    }
}

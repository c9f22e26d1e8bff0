//! The bake's exact looks: at 100% the new version's bad events since the bake began against
//! the old version's rate over the split (the same reference as `BakeTest`), with the
//! practical-significance floor as margin, each look spending the allowance added since the
//! last (Bonferroni); on a busy or bursty service both sides' sums are scaled for
//! burstiness first. Pure and sync. Method and validity: docs/statistics.md, "The bake".

use super::counts::round_count;
use super::history::rate_exceedance;
use super::looks::{MAX_EVENTS, ONSET_MAX_LOOKS, ONSET_WINDOW_MINUTES};
use super::outcome::{Against, ExactLooks, LookKind, LookOutcome, Skipped};
use super::power::conditional_power;
use super::special::normal_cdf;
use super::spending::spend;
use super::{Burstiness, SeriesTotals};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The bake looks of one count signal.
///
/// Counts are Poisson with rates proportional to requests. Given n = k + h (k the new
/// version's bad events over the bake so far, h the old version's over the split), k is
/// binomial with p = λ₁N₁/(λ₁N₁ + λₒNₒ), so "λ₁ ≤ margin × λₒ" is tested exactly by the
/// binomial tail at p₀ = margin·N₁/(margin·N₁ + Nₒ), as the history looks do with their
/// window. The e-process (`BakeTest`) pays for not knowing the reference rate by taking the
/// worst rate its evidence allows; conditioning on n pays nothing, which is what lets a
/// regression that appears in the bake be caught in the few minutes before it completes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BakeLooks {
    /// α of all the bake looks together (0: none).
    alpha: f64,
    /// The null is "new rate ≤ margin × the reference's".
    margin: f64,
    /// Skip when the bake or the reference averaged more bad events a minute than this.
    max_events_per_minute: f64,
    /// The old version over the split, set when the bake starts.
    reference: Option<Reference>,
    /// The new version's requests and bad events over the bake minutes (per sample, raw).
    new_requests: f64,
    new_bad: u64,
    minutes: u32,
    /// `minutes` when the latest look was taken.
    minutes_at_last_look: u32,
    /// Allowance spent so far.
    spent: f64,
    /// The latest look (the rejecting one, once one rejects).
    latest: Option<LookOutcome>,
    /// Burst scaling of both sides (`scale_for_bursts`; `None`: raw counts).
    burst_scaling: Option<BakeScaling>,
    /// A rollout stored when each minute was scaled alone kept that scaling under this name.
    /// Its sums are scaled ones and its limit is the backstop, so new minutes can be neither
    /// added to them raw nor tested raw: its looks stop (the e-process carries its bake).
    #[serde(default, rename = "scaling", skip_serializing)]
    per_minute_scaling: Option<serde::de::IgnoredAny>,
    /// Split minutes offered to `observe_reference`, scaled or not.
    reference_minutes: u32,
    /// Onset looks (`BakeLooks::onset`): each look tests the newest 1 to
    /// `ONSET_WINDOW_MINUTES` bake minutes alone, each window at α ÷ (`ONSET_WINDOW_MINUTES`
    /// × `ONSET_MAX_LOOKS`), in place of the bake so far on the spending schedule.
    onset: bool,
    /// The newest bake minutes as `(requests, bad)` (per sample, raw); onset looks only.
    recent: VecDeque<(f64, f64)>,
    /// Onset looks taken (the first `ONSET_MAX_LOOKS` are funded).
    onset_looks: u32,
}

/// A sum of bake minutes as a look tested it (`BakeLooks::test`).
struct Tested {
    new_requests: f64,
    new_bad: u64,
    divisor: Option<f64>,
    null_mean: f64,
    p_value: f64,
    skipped: Option<Skipped>,
}

/// The scaling of the bake looks' two sides: each side's raw sums, divided when tested by
/// the inflation of a sum over that many minutes (`SeriesTotals::divisor`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct BakeScaling {
    /// The old version's burstiness before the rollout.
    bursts: Burstiness,
    /// Expected events a minute kept at most (after scaling).
    events_per_minute: f64,
    /// The old version's split minutes (they become the reference).
    reference: SeriesTotals,
    /// The new version's bake minutes.
    bake: SeriesTotals,
}

impl BakeScaling {
    /// The old version's rate the nulls take: over the split, at least the window's (a
    /// rate that rose since the window would otherwise shrink the inflation).
    fn reference_rate(&self) -> f64 {
        self.reference.rate().max(self.bursts.rate)
    }

    /// The split's sum scaled: `events_per_minute` and `max_events` bound what it keeps.
    fn reference(&self, events_per_minute: f64, max_events: f64) -> Reference {
        let r = &self.reference;
        let divisor = r.divisor(
            &self.bursts,
            self.reference_rate(),
            events_per_minute,
            max_events,
        );
        // Rounded up: a higher reference rate only makes the looks more cautious.
        let (requests, bad) = r.scaled(divisor, f64::ceil);
        Reference {
            minutes: r.minutes,
            requests,
            bad,
        }
    }
}

/// The bake's burst scaling for its e-process (`BakeLooks::e_process_scaling`): the
/// reference already scaled, and one divisor for every bake minute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EProcessScaling {
    pub reference: Reference,
    pub bake_divisor: f64,
}

/// The old version's counts over the split: what the bake looks (and the bake e-process)
/// compare the new version's rate at 100% with. Per sample, like the split's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Split minutes counted.
    pub minutes: u32,
    /// Requests the old version served.
    pub requests: f64,
    /// Of those, bad (5xx, or slower than the ceiling).
    pub bad: f64,
}

impl Reference {
    /// Finite counts with some requests: something a look can compare against.
    fn is_usable(&self) -> bool {
        self.requests.is_finite() && self.requests > 0.0 && self.bad.is_finite() && self.bad >= 0.0
    }

    /// Exact p-value of `bad` events over `requests` against "rate ≤ margin × this one's".
    fn exceedance(&self, margin: f64, bad: u64, requests: f64) -> f64 {
        rate_exceedance((self.bad, self.requests), margin, bad, requests)
    }
}

impl ExactLooks for BakeLooks {
    fn alpha(&self) -> f64 {
        self.alpha
    }

    fn latest(&self) -> Option<&LookOutcome> {
        self.latest.as_ref()
    }
}

impl BakeLooks {
    /// Bake looks sharing `alpha` against "new ≤ `margin` × reference".
    pub fn new(alpha: f64, margin: f64, max_events_per_minute: f64) -> Self {
        BakeLooks {
            alpha,
            margin,
            max_events_per_minute,
            ..Self::default()
        }
    }

    /// Onset looks of the bake: the same null, reference and scaling, but each look tests
    /// the newest 1 to `ONSET_WINDOW_MINUTES` bake minutes alone, every window at `alpha` ÷
    /// (`ONSET_WINDOW_MINUTES` × `ONSET_MAX_LOOKS`) (Bonferroni over the windows of the
    /// funded looks), so a regression that starts after healthy bake minutes is judged on
    /// the minutes since (docs/statistics.md, "Onset looks").
    pub fn onset(alpha: f64, margin: f64, max_events_per_minute: f64) -> Self {
        BakeLooks {
            onset: true,
            ..Self::new(alpha, margin, max_events_per_minute)
        }
    }

    /// Onset looks at `alpha` on these looks' reference and burst scaling, counting no bake
    /// minute yet: taken when the bake starts, after `start`.
    pub fn onset_from(&self, alpha: f64) -> BakeLooks {
        BakeLooks {
            alpha,
            margin: self.margin,
            max_events_per_minute: self.max_events_per_minute,
            reference: self.reference,
            burst_scaling: self.burst_scaling.map(|s| BakeScaling {
                bake: SeriesTotals::default(),
                ..s
            }),
            reference_minutes: self.reference_minutes,
            onset: true,
            ..BakeLooks::default()
        }
    }

    /// The level of each of an onset look's windows (all of `alpha` for the other looks).
    pub fn window_alpha(&self) -> f64 {
        self.alpha / (ONSET_WINDOW_MINUTES as f64 * f64::from(ONSET_MAX_LOOKS))
    }

    /// Scales both sides for `bursts` (the old version's burstiness before the rollout), each
    /// side's sum by its inflation and thinned to `events_per_minute`, and raises the
    /// events-a-minute limit to `limit`, a backstop. Only before the split's first minute is
    /// counted (`observe_reference`), so a reference is never half raw; returns whether the
    /// looks are scaled.
    pub fn scale_for_bursts(
        &mut self,
        bursts: Burstiness,
        events_per_minute: f64,
        limit: f64,
    ) -> bool {
        if self.burst_scaling.is_some() || self.reference.is_some() || self.reference_minutes > 0 {
            return self.burst_scaling.is_some();
        }
        self.max_events_per_minute = self.max_events_per_minute.max(limit);
        self.burst_scaling = Some(BakeScaling {
            bursts,
            events_per_minute,
            reference: SeriesTotals::default(),
            bake: SeriesTotals::default(),
        });
        true
    }

    /// Counts one split minute of the old version (per sample) into the scaled reference;
    /// nothing without scaling (the reference is then the split's raw totals, given to
    /// `start`) or once the bake has started.
    pub fn observe_reference(&mut self, old_total: f64, old_bad: f64) {
        let valid = old_total.is_finite() && old_bad.is_finite() && old_bad >= 0.0;
        if self.reference.is_some() || !valid || old_total <= 0.0 {
            return;
        }
        self.reference_minutes += 1;
        if let Some(scaling) = self.burst_scaling.as_mut() {
            scaling.reference.add(old_total, old_bad);
        }
    }

    /// Sets the reference once, when the bake starts: the split's `raw` totals, or when
    /// scaled the minutes counted by `observe_reference`, their sum divided by its inflation
    /// and thinned to `events_per_minute` and to half the looks' `MAX_EVENTS` (so that a long
    /// split leaves the bake room). One without requests is none.
    pub fn start(&mut self, raw: Reference) {
        if self.reference.is_some() {
            return;
        }
        let reference = self.burst_scaling.map_or(raw, |s| {
            s.reference(s.events_per_minute, MAX_EVENTS as f64 / 2.0)
        });
        if reference.is_usable() {
            self.reference = Some(reference);
        }
    }

    /// For the bake's e-process, when the looks are scaled: the reference divided by its
    /// inflation (not thinned), and one divisor for every bake minute, the inflation of a
    /// sum over `horizon_minutes` bake minutes at the window's requests a minute and the
    /// null's rate. Over fewer minutes that divisor is too large, which is cautious; over
    /// more, bursts that outlast the horizon are under-corrected.
    pub fn e_process_scaling(&self, horizon_minutes: u32) -> Option<EProcessScaling> {
        let s = self.burst_scaling.as_ref()?;
        let reference = s.reference(f64::INFINITY, f64::INFINITY);
        let per_minute = if s.bursts.rate > 0.0 {
            s.bursts.mean_events / s.bursts.rate
        } else {
            0.0
        };
        let minutes = horizon_minutes.max(1);
        let horizon = SeriesTotals {
            minutes,
            requests: per_minute * f64::from(minutes),
            events: 0.0,
            requests_sq: per_minute * per_minute * f64::from(minutes),
        };
        let bake_divisor = horizon.divisor(
            &s.bursts,
            self.margin * s.reference_rate(),
            f64::INFINITY,
            f64::INFINITY,
        );
        Some(EProcessScaling {
            reference,
            bake_divisor,
        })
    }

    fn finished(&self) -> bool {
        self.alpha <= 0.0
            || self.per_minute_scaling.is_some()
            || (self.onset && self.onset_looks >= ONSET_MAX_LOOKS)
            || self
                .latest
                .as_ref()
                .is_some_and(|l| l.rejected || l.closing())
    }

    /// Counts one bake minute of the new version (per sample; invalid counts are ignored).
    pub fn observe(&mut self, new_total: f64, new_bad: f64) {
        let valid = [new_total, new_bad]
            .iter()
            .all(|c| c.is_finite() && *c >= 0.0);
        if self.finished() || !valid || new_total <= 0.0 {
            return;
        }
        if let Some(scaling) = self.burst_scaling.as_mut() {
            scaling.bake.add(new_total, new_bad);
        }
        self.new_requests += new_total;
        self.new_bad = self.new_bad.saturating_add(round_count(new_bad));
        self.minutes += 1;
        if self.onset {
            self.recent.push_back((new_total, new_bad));
            while self.recent.len() > ONSET_WINDOW_MINUTES {
                self.recent.pop_front();
            }
        }
    }

    /// What the looks test of the bake: its requests and bad events, and when scaled the
    /// divisor of its sum (the inflation at the null's largest rate, `margin` × the
    /// reference's rate, over the bake's minutes so far; thinned to `events_per_minute`
    /// and half of `MAX_EVENTS`), recomputed at each look.
    fn tested(&self) -> (f64, u64, Option<f64>) {
        match self.burst_scaling.as_ref() {
            Some(s) => self.tested_sum(&s.bake),
            None => (self.new_requests, self.new_bad, None),
        }
    }

    /// `sum` of bake minutes as tested: raw, or divided by its own inflation where the looks
    /// are burst-scaled.
    fn tested_sum(&self, sum: &SeriesTotals) -> (f64, u64, Option<f64>) {
        match self.burst_scaling.as_ref() {
            Some(s) => {
                let divisor = sum.divisor(
                    &s.bursts,
                    self.margin * s.reference_rate(),
                    s.events_per_minute,
                    MAX_EVENTS as f64 / 2.0,
                );
                // Rounded down, the cautious way for the bake's side.
                let (requests, bad) = sum.scaled(divisor, f64::floor);
                (requests, round_count(bad), Some(divisor))
            }
            None => (sum.requests, round_count(sum.events), None),
        }
    }

    /// Takes a look that may have spent `alpha × allowance` with the earlier ones (`allowance`
    /// in [0, 1], never decreasing; 1 closes the looks), spending the increment. `None` when
    /// finished or when no minute was counted since the last look.
    pub fn look(&mut self, allowance: f64) -> Option<&LookOutcome> {
        if self.finished() || self.minutes == self.minutes_at_last_look {
            return None;
        }
        if self.onset {
            return self.onset_look();
        }
        let alpha = spend(self.alpha, &mut self.spent, allowance);
        self.minutes_at_last_look = self.minutes;
        let tested = self.test(self.tested(), self.minutes);
        let number = self.latest.as_ref().map_or(1, |l| l.number + 1);
        let against = Against::Reference {
            new_requests: tested.new_requests,
            reference: self.reference,
            margin: self.margin,
        };
        let kind = LookKind::Bake {
            closing: self.spent >= 1.0,
        };
        self.record(kind, number, alpha, tested, against)
    }

    /// An onset look: every window of the newest bake minutes, 1 to `ONSET_WINDOW_MINUTES`
    /// long, tested as the bake so far is (scaled by its own sum's inflation where the looks
    /// are burst-scaled); the window with the smallest p-value is the look.
    fn onset_look(&mut self) -> Option<&LookOutcome> {
        self.onset_looks += 1;
        self.minutes_at_last_look = self.minutes;
        let alpha = self.window_alpha();
        let mut sum = SeriesTotals::default();
        let mut best: Option<(Tested, u32)> = None;
        let mut skipped = None;
        for &(requests, bad) in self.recent.iter().rev() {
            sum.add(requests, bad);
            let tested = self.test(self.tested_sum(&sum), sum.minutes);
            if let Some(why) = tested.skipped {
                skipped.get_or_insert(why);
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(b, _)| tested.p_value < b.p_value)
            {
                best = Some((tested, sum.minutes));
            }
        }
        // No window tested: the whole window as counted, with the first reason met.
        let (tested, minutes) = best.unwrap_or_else(|| {
            let untested = Tested {
                new_requests: sum.requests,
                new_bad: round_count(sum.events),
                divisor: None,
                null_mean: 0.0,
                p_value: 1.0,
                skipped: Some(skipped.unwrap_or(Skipped::NoEvents)),
            };
            (untested, sum.minutes)
        });
        let against = Against::RecentReference {
            minutes,
            new_requests: tested.new_requests,
            reference: self.reference,
            margin: self.margin,
        };
        let kind = LookKind::Bake { closing: false };
        self.record(kind, self.onset_looks, alpha, tested, against)
    }

    /// `(new_requests, new_bad, divisor)` over `minutes` bake minutes, as a look tests it:
    /// the null's expectation, why it is skipped if it is, and its exact p-value (1 when
    /// skipped).
    fn test(
        &self,
        (new_requests, new_bad, divisor): (f64, u64, Option<f64>),
        minutes: u32,
    ) -> Tested {
        let null_mean = self.null_mean(new_requests);
        let skipped = self.skip_reason(new_bad, null_mean, minutes);
        let p_value = match (&skipped, self.reference) {
            (None, Some(r)) => r.exceedance(self.margin, new_bad, new_requests),
            _ => 1.0,
        };
        Tested {
            new_requests,
            new_bad,
            divisor,
            null_mean,
            p_value,
            skipped,
        }
    }

    /// Records `tested` at `alpha` as the latest look and returns it.
    fn record(
        &mut self,
        kind: LookKind,
        number: u32,
        alpha: f64,
        tested: Tested,
        against: Against,
    ) -> Option<&LookOutcome> {
        self.latest = Some(LookOutcome {
            kind,
            number,
            new_bad: tested.new_bad,
            null_mean: tested.null_mean,
            p_value: tested.p_value,
            alpha,
            rejected: tested.skipped.is_none() && alpha > 0.0 && tested.p_value <= alpha,
            skipped: tested.skipped,
            scaled: tested.divisor.is_some(),
            divisor: tested.divisor,
            against,
        });
        self.latest.as_ref()
    }

    /// The chance that the latest look, at its α, would have rejected a new version at
    /// `rho` × `rate` events per request with the reference at `rate`. Raw: the exact
    /// `conditional_power`. Burst-scaled: the look's divisor does not depend on the bake's
    /// count, so under that hypothesis the look would divide the same way, and the raw sum
    /// would have mean m = `rho`·`rate`·requests and the variance m + c²ₛm² the scaling
    /// assumes; the power is the normal chance that it reaches the look's critical count
    /// times the divisor (`scaled_power`). `None` before a look, once one rejected, or when
    /// the latest look had no reference or too many events to test.
    pub fn detection_power(&self, rate: f64, rho: f64) -> Option<f64> {
        let latest = self.latest.as_ref()?;
        let untestable = matches!(
            latest.skipped,
            Some(Skipped::TooManyEvents { .. } | Skipped::NoReference)
        );
        if latest.rejected || untestable {
            return None;
        }
        let Against::Reference {
            new_requests,
            reference: Some(reference),
            ..
        } = latest.against
        else {
            return None;
        };
        match (self.burst_scaling.as_ref(), latest.divisor) {
            (Some(s), Some(divisor)) => {
                Some(self.scaled_power(s, latest, new_requests, &reference, divisor, rho * rate))
            }
            _ => Some(conditional_power(
                new_requests,
                reference.requests,
                rate,
                rho,
                self.margin,
                latest.alpha,
            )),
        }
    }

    /// See `detection_power`: the bake's raw sum at `rate` events per request against the
    /// smallest scaled count the look would have rejected, times its `divisor`.
    fn scaled_power(
        &self,
        s: &BakeScaling,
        look: &LookOutcome,
        new_requests: f64,
        reference: &Reference,
        divisor: f64,
        rate: f64,
    ) -> f64 {
        let rejects = |k: u64| reference.exceedance(self.margin, k, new_requests) <= look.alpha;
        // The smallest rejecting count: double past it, then bisect (the p-value falls as
        // the count rises).
        let mut high = (look.null_mean.ceil() as u64).max(1);
        while !rejects(high) {
            if high > MAX_EVENTS {
                return 0.0;
            }
            high *= 2;
        }
        let mut low = 0;
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if rejects(mid) {
                high = mid;
            } else {
                low = mid;
            }
        }
        let mean = rate * s.bake.requests;
        let c2 = s.bursts.c2_over(s.bake.effective_minutes());
        let sd = (mean + c2 * mean * mean).sqrt();
        // The scaled count is whole, rounded down: it reaches `high` once the raw sum
        // reaches `high` × the divisor.
        let needed = high as f64 * divisor;
        if sd <= 0.0 {
            return if mean >= needed { 1.0 } else { 0.0 };
        }
        normal_cdf((mean - needed) / sd)
    }

    /// Bad events the null expects of `new_requests` at `margin` × the reference's rate.
    fn null_mean(&self, new_requests: f64) -> f64 {
        self.reference
            .map_or(0.0, |r| self.margin * new_requests * r.bad / r.requests)
    }

    /// Why a look with `new_bad` bad events in the bake (as tested, `null_mean` of them
    /// expected at the null's rate) tests nothing, if it does. The bake is busy when the
    /// null's rate makes it so, not the count: a regression that multiplies the bad events
    /// must not turn its own test off (the count decides nothing about whether the Poisson
    /// model holds under the null; only the rate it would run at does).
    fn skip_reason(&self, new_bad: u64, null_mean: f64, minutes: u32) -> Option<Skipped> {
        let Some(reference) = self.reference else {
            return Some(Skipped::NoReference);
        };
        let bake = null_mean / f64::from(minutes.max(1));
        let split = reference.bad / f64::from(reference.minutes.max(1));
        let per_minute = bake.max(split);
        let events = new_bad as f64 + reference.bad;
        if per_minute > self.max_events_per_minute || events > MAX_EVENTS as f64 {
            return Some(Skipped::TooManyEvents {
                per_minute,
                limit: self.max_events_per_minute,
            });
        }
        (new_bad == 0).then_some(Skipped::NoEvents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Rng;
    use crate::sim::validity::models::{self, Bake};
    use crate::sim::validity::{limit, rate};

    fn reference(requests: f64, bad: f64) -> Reference {
        Reference {
            minutes: 20,
            requests,
            bad,
        }
    }

    /// The bake of `x5-100rps-in-bake`, run 0: three healthy minutes, then four at ×5.
    fn fed(looks: &mut BakeLooks) {
        looks.start(reference(84_139.0, 96.0));
        for (requests, bad) in [
            (6012.0, 7.0),
            (6068.0, 4.0),
            (6039.0, 6.0),
            (5961.0, 27.0),
            (5909.0, 32.0),
            (6094.0, 33.0),
            (6068.0, 23.0),
        ] {
            looks.observe(requests, bad);
        }
    }

    #[test]
    fn a_regression_that_appears_in_the_bake_is_rejected_where_the_e_process_was_not() {
        // The e-process's e-value there was 131 against a threshold of 2,000.
        let mut looks = BakeLooks::new(0.01 * 0.05 * 0.75, 1.5, 30.0);
        fed(&mut looks);
        let look = looks.look(1.0).expect("a look").clone();
        assert_eq!((look.new_bad, look.number), (132, 1));
        assert!(look.closing() && look.rejected, "{look:?}");
        assert!(look.p_value < 1e-5, "{}", look.p_value);
        assert!((look.null_mean - 1.5 * 42_151.0 * 96.0 / 84_139.0).abs() < 1e-9);
        assert!(looks.look(1.0).is_none(), "latched");
    }

    #[test]
    fn the_p_value_is_the_binomial_tail_given_both_counts() {
        let mut looks = BakeLooks::new(0.05, 1.0, 30.0);
        looks.start(reference(1000.0, 1.0));
        looks.observe(1000.0, 2.0);
        // n = 3, p0 = 1/2: P(X ≥ 2) = 4/8.
        let look = looks.look(1.0).unwrap();
        assert!((look.p_value - 0.5).abs() < 1e-12, "{}", look.p_value);
        assert!(!look.rejected);
    }

    #[test]
    fn looks_spend_increments_and_only_on_fresh_minutes() {
        let mut looks = BakeLooks::new(0.001, 1.5, 30.0);
        looks.start(reference(84_139.0, 96.0));
        looks.observe(6000.0, 6.0);
        let first = looks.look(0.1).unwrap().alpha;
        assert!((first - 0.0001).abs() < 1e-15);
        assert!(looks.look(0.2).is_none(), "no new minute");
        looks.observe(6000.0, 6.0);
        let second = looks.look(0.05).unwrap().alpha;
        assert_eq!(second, 0.0, "an allowance never goes back");
        looks.observe(6000.0, 6.0);
        let closing = looks.look(1.0).unwrap().clone();
        assert!((closing.alpha - 0.0009).abs() < 1e-15);
        assert_eq!(closing.number, 3);
        assert!(!closing.rejected);
    }

    #[test]
    fn nothing_is_tested_without_a_reference_events_or_within_the_poisson_limit() {
        let mut none = BakeLooks::new(0.001, 1.5, 30.0);
        none.observe(6000.0, 60.0);
        let look = none.look(1.0).unwrap();
        assert_eq!(look.skipped, Some(Skipped::NoReference));
        assert!(!look.rejected);

        let mut quiet = BakeLooks::new(0.001, 1.5, 30.0);
        quiet.start(reference(84_139.0, 96.0));
        quiet.observe(6000.0, 0.0);
        assert_eq!(quiet.look(0.5).unwrap().skipped, Some(Skipped::NoEvents));

        // Busy at the null's rate (the reference's 2.4% × 1.5 × 6,000 requests: 214 a minute).
        let mut busy = BakeLooks::new(0.001, 1.5, 30.0);
        busy.start(reference(84_139.0, 2_000.0));
        busy.observe(6000.0, 150.0);
        let look = busy.look(1.0).unwrap();
        assert!(matches!(look.skipped, Some(Skipped::TooManyEvents { .. })));
        assert!(!look.rejected);

        let mut off = BakeLooks::new(0.0, 1.5, 30.0);
        fed(&mut off);
        assert!(off.look(1.0).is_none());
    }

    #[test]
    fn onset_looks_judge_a_regression_in_the_bake_on_the_minutes_since_it_started() {
        // x5-100rps-in-bake, run 0, at the default policy's onset α (0.0009 × 0.05 / 0.8):
        // the bake looks so far sum the healthy minutes; the onset looks do not.
        let alpha = 0.01 * 0.05 * 0.75 * 0.15;
        let mut onset = BakeLooks::onset(alpha, 1.5, 30.0);
        onset.start(reference(84_139.0, 96.0));
        let mut rejected_at = None;
        for (minute, (requests, bad)) in [
            (6012.0, 7.0),
            (6068.0, 4.0),
            (6039.0, 6.0),
            (5961.0, 27.0),
            (5909.0, 32.0),
            (6094.0, 33.0),
        ]
        .into_iter()
        .enumerate()
        {
            onset.observe(requests, bad);
            let look = onset.look(0.0).expect("a fresh minute, a look").clone();
            assert!((look.alpha - alpha / 320.0).abs() < 1e-18);
            if look.rejected {
                assert!(matches!(
                    look.against,
                    Against::RecentReference { minutes: 1..=2, .. }
                ));
                rejected_at = Some(minute);
                break;
            }
        }
        assert_eq!(rejected_at, Some(4), "the second minute at ×5");
    }

    #[test]
    fn onset_looks_taken_at_the_bake_start_judge_on_the_bake_looks_reference_and_scaling() {
        let held = Bake::healthy(0.05, 0.09, 10);
        let mut rng = Rng::from_seed(3);
        let looks = held.looks(&mut rng);
        let onset = looks.onset_from(0.01);
        assert_eq!(onset.reference, looks.reference);
        let (scaling, own) = (looks.burst_scaling.unwrap(), onset.burst_scaling.unwrap());
        assert_eq!(
            (own.bursts, own.reference),
            (scaling.bursts, scaling.reference)
        );
        assert_eq!(
            own.bake,
            SeriesTotals::default(),
            "no bake minute counted yet"
        );
        assert!(onset.onset && onset.recent.is_empty() && onset.latest.is_none());
        assert_eq!(onset.window_alpha(), 0.01 / 320.0);
    }

    #[test]
    fn onset_looks_of_healthy_bakes_reject_at_most_at_alpha() {
        let runs = 3000;
        let alpha = 0.2;
        let mut rng = Rng::from_seed(11);
        let mut rejected = 0;
        for _ in 0..runs {
            let mut onset = BakeLooks::onset(alpha, 1.0, 30.0);
            // A reference of 20 minutes at 6 a minute, the bake at the same rate.
            onset.start(reference(120_000.0, rng.poisson(120.0) as f64));
            for _ in 0..ONSET_MAX_LOOKS {
                onset.observe(6000.0, rng.poisson(6.0) as f64);
                if onset.look(0.0).is_some_and(|l| l.rejected) {
                    rejected += 1;
                    break;
                }
            }
        }
        let rate = rejected as f64 / runs as f64;
        assert!(rate <= alpha, "{rate}");
        assert!(rate > 0.0, "{rate}");
    }

    #[test]
    fn a_regression_that_multiplies_the_bad_events_does_not_turn_its_own_look_off() {
        // 400 bad events a minute where the null expects 10: over the raw limit of 30, but
        // the rate under test is quiet, so the look tests (and rejects).
        let mut looks = BakeLooks::new(0.001, 1.5, 30.0);
        looks.start(reference(84_139.0, 96.0));
        looks.observe(6000.0, 400.0);
        let look = looks.look(1.0).unwrap();
        assert_eq!(look.skipped, None);
        assert!(look.rejected);
    }

    #[test]
    fn burst_scaled_looks_catch_a_regression_on_a_service_too_busy_for_raw_ones() {
        let mut rng = Rng::from_seed(5);
        // ×5 from the fifth bake minute: 300 events a minute against 60, at the gate's
        // margin of 1.5.
        let raw = {
            let mut looks = BakeLooks::new(0.0003, 1.5, 30.0);
            looks.start(reference(84_000.0, 840.0));
            for minute in 1..=8 {
                looks.observe(6000.0, if minute >= 5 { 300.0 } else { 60.0 });
                looks.look(if minute == 8 { 1.0 } else { 0.1 });
            }
            looks
        };
        let look = raw.latest().expect("a look");
        assert!(
            matches!(look.skipped, Some(Skipped::TooManyEvents { .. })) && !look.rejected,
            "{look:?}"
        );
        let bake = Bake {
            alpha: 0.0003,
            margin: 1.5,
            cv2: 0.01,
            ratio: 5.0,
            from: 5,
            raw: false,
            block: 1,
        };
        let scaled = bake.looks(&mut rng);
        let look = scaled.rejected().expect("rejected");
        assert!(look.scaled && look.skipped.is_none(), "{look:?}");
        // Bursts of CV 10%, independent from minute to minute, at 90 expected events a
        // minute (60 at the null's 1.5): over the 7 minutes to the rejecting look, c² of the
        // sum is 0.01 / 7, and its 630 expected events make its variance 1.9 times its
        // mean; the estimate's upper bound (25 blocks of 7 minutes) adds its margin.
        assert_eq!(look.number, 7);
        let divisor = look.divisor.expect("a divisor");
        assert!(divisor > 1.9 && divisor < 6.0, "{divisor} {look:?}");
    }

    #[test]
    fn scaling_starts_only_before_the_split_is_counted_so_no_reference_is_half_raw() {
        let bursts = Burstiness::estimate(vec![(6000.0, 60.0); 40]).unwrap();
        let mut late = BakeLooks::new(0.001, 1.5, 30.0);
        late.observe_reference(5400.0, 54.0);
        assert!(!late.scale_for_bursts(bursts, 200.0, 5_000.0));
        late.start(reference(5400.0, 54.0));
        late.observe(6000.0, 60.0);
        let look = late.look(1.0).unwrap();
        assert!(!look.scaled && look.divisor.is_none(), "{look:?}");
        assert!(
            matches!(look.against, Against::Reference { reference: Some(r), .. } if r == reference(5400.0, 54.0))
        );

        // In time: the reference is the scaled split minutes, not the raw totals given.
        let mut early = BakeLooks::new(0.001, 1.5, 30.0);
        assert!(early.scale_for_bursts(bursts, 200.0, 5_000.0));
        early.observe_reference(5400.0, 54.0);
        early.start(reference(5400.0, 54.0));
        let r = early.reference.expect("a reference");
        let inflation = 1.0 + bursts.c2_upper * 54.0;
        assert_eq!(r.minutes, 1);
        assert!((r.requests - 5400.0 / inflation).abs() < 1e-9, "{r:?}");
        // Rounded up: a higher reference rate is the cautious side.
        assert_eq!(r.bad, (54.0 / inflation).ceil());
    }

    #[test]
    fn bake_look_power_grows_with_the_bake_and_stops_where_the_looks_do() {
        let mut looks = BakeLooks::new(0.0003, 1.5, 30.0);
        assert!(looks.detection_power(0.001, 3.0).is_none(), "no look yet");
        looks.start(reference(60_000.0, 60.0));
        looks.observe(3000.0, 3.0);
        looks.look(0.1);
        let early = looks.detection_power(0.001, 3.0).expect("a look");
        for _ in 0..5 {
            looks.observe(3000.0, 3.0);
        }
        looks.look(0.5);
        let later = looks.detection_power(0.001, 3.0).expect("a look");
        assert!(early < later && later < 1.0, "{early} {later}");
        let look = looks.latest().unwrap();
        let exact = conditional_power(
            look.new_requests().unwrap(),
            60_000.0,
            0.001,
            3.0,
            1.5,
            look.alpha,
        );
        assert_eq!(later, exact);
        // A look skipped for too many events a minute says nothing.
        looks.observe(3000.0, 3000.0);
        looks.look(0.6);
        assert!(looks.detection_power(0.001, 3.0).is_none());
        // Nor does one that rejected: the verdict is made.
        let mut rejected = BakeLooks::new(0.01 * 0.05 * 0.75, 1.5, 30.0);
        fed(&mut rejected);
        rejected.look(1.0);
        assert!(rejected.rejected().is_some());
        assert!(rejected.detection_power(0.01, 10.0).is_none());
    }

    #[test]
    fn scaled_look_power_counts_the_bursts_a_hypothetical_regression_would_bring() {
        // A healthy busy bake with bursts of CV 30% held 10 minutes: its closing look.
        let mut rng = Rng::from_seed(41);
        let bake = Bake {
            alpha: 0.0003,
            margin: 1.5,
            cv2: 0.09,
            ratio: 1.0,
            from: 1,
            raw: false,
            block: 10,
        };
        let looks = bake.looks(&mut rng);
        let look = looks.latest().expect("a look").clone();
        assert!(look.scaled && !look.rejected, "{look:?}");
        let power = |rho: f64| looks.detection_power(0.01, rho).expect("a power");
        let powers = [1.0, 2.0, 3.0, 5.0, 25.0].map(power);
        assert!(powers.windows(2).all(|w| w[0] <= w[1]), "{powers:?}");
        // At the old rate nothing is caught; ×25 is caught however the 8 minutes burst
        // together (c² of their sum about 0.09, so ±30%).
        assert!(powers[0] < 0.01 && powers[4] > 0.99, "{powers:?}");
        // Bursts cost power: ×2 (a third over the margin) is far from sure, where the raw
        // Poisson counts alone would make it so.
        let raw = conditional_power(
            look.new_requests().unwrap() * look.divisor.unwrap(),
            84_000.0,
            0.01,
            2.0,
            1.5,
            look.alpha,
        );
        assert!(powers[1] < 0.5 && raw > 0.99, "{powers:?} {raw}");
    }

    #[test]
    fn looks_stored_when_each_minute_was_scaled_alone_stop_rather_than_mix_raw_and_scaled() {
        let bursts = Burstiness::estimate(vec![(6000.0, 60.0); 40]).unwrap();
        let mut looks = BakeLooks::new(0.001, 1.5, 30.0);
        assert!(looks.scale_for_bursts(bursts, 200.0, 5_000.0));
        let mut stored = serde_json::to_value(&looks).unwrap();
        let fields = stored.as_object_mut().unwrap();
        fields.remove("burst_scaling");
        // The earlier shape: per-minute scalers and a scaled reference.
        fields.insert(
            "scaling".into(),
            serde_json::json!({"reference": {"carry": 0.1}, "scaled_reference": {}, "bake": {}}),
        );
        let mut read: BakeLooks = serde_json::from_value(stored).expect("reads");
        assert!(read.e_process_scaling(30).is_none());
        assert_eq!(read.alpha(), 0.001);
        // Its sums were scaled ones and its limit the backstop: it looks no more.
        read.start(reference(84_139.0, 96.0));
        read.observe(6000.0, 400.0);
        assert!(read.look(1.0).is_none());
        // Written back, it keeps no trace of the old key, and stays stopped only while
        // read from the old state.
        let written = serde_json::to_value(&read).unwrap();
        assert!(written.get("scaling").is_none(), "{written}");
        // A state written by this version reads back with its looks running.
        let mut fresh: BakeLooks =
            serde_json::from_value(serde_json::to_value(&looks).unwrap()).expect("reads");
        fresh.start(reference(84_139.0, 96.0));
        fresh.observe(6000.0, 60.0);
        assert!(fresh.look(1.0).is_some());
    }

    /// The fast seeded check of `rollout-sim --validity`'s bake looks cells.
    #[test]
    fn healthy_bakes_are_rejected_by_the_looks_within_alpha() {
        let mut rng = Rng::from_seed(1);
        let runs = 2000;
        let healthy = rate(runs, || models::bake_looks_reject(&mut rng));
        assert!(healthy <= limit(0.05, runs), "{healthy}");
        // Discrete and Bonferroni, so below α, but the looks do spend it.
        assert!(healthy > 0.02, "{healthy}");
    }

    /// The fast seeded check of `rollout-sim --validity`'s burst-scaled bake cells: shared
    /// bursts of CV 30% held for 10 minutes, the new version at the null's boundary.
    #[test]
    fn burst_scaled_bakes_keep_their_alpha_under_bursts_that_break_raw_ones() {
        let mut rng = Rng::from_seed(1);
        let scaled = Bake::healthy(0.05, 0.09, 10);
        let raw = Bake {
            raw: true,
            ..scaled
        };
        let runs = 200;
        let looks = rate(runs, || scaled.looks_reject(&mut rng));
        let looks_raw = rate(runs, || raw.looks_reject(&mut rng));
        assert!(looks <= limit(0.05, runs), "looks {looks}");
        assert!(looks_raw > 2.5 * 0.05, "raw looks {looks_raw}");
        let e_process = rate(20, || scaled.e_process_rejects(&mut rng));
        assert!(e_process <= limit(0.05, 20), "e-process {e_process}");
    }
}

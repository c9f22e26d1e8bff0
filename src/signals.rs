//! The rollout's running evidence: which minutes have been counted (each exactly once), the
//! sequential tests they feed, the debounce streaks, and the per-tick assessment that turns
//! them into one verdict per signal. Idempotent: a repeated tick adds nothing.

use crate::observe::{
    CountsWindow, Fetched, MinuteCounts, Observations, Probe, StoredRows, VersionCounts,
};
use crate::policy::{
    Breach, BudgetRow, ConcurrentShare, CountTest, Gap, LookedEvents, Policy, Signal, Verdict,
    CLOSING_ALLOWANCE, SCALED_EVENTS_PER_MINUTE, SCALED_MAX_EVENTS_PER_MINUTE,
};
use crate::stats::{
    BakeLooks, BakeTest, Baseline, BurstScale, Burstiness, ExactLooks, LookKind, LookOutcome,
    PairCounts, RatioSummary, RatioTest, Reference, ScheduledLooks, DEFAULT_BASE_RATE_FLOOR,
};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

mod exact;
pub use exact::{Exact, ExactTests};

/// Failed reads of the baseline window before the history looks give up.
pub const MAX_HISTORY_FAILURES: u32 = 3;

/// The bake e-process's burst-scaling horizon for a rollout stored before the bake step's
/// `max_minutes` was kept: the default schedule's (10-minute bake, 3 × dwell).
const DEFAULT_BAKE_HORIZON: u32 = 30;

/// Cumulative evidence for one rollout. Bounded in size: the tests are fixed-size and
/// `recent` holds at most `Policy::window_minutes` minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalState {
    /// First minute not yet counted; `None` until traffic starts moving.
    pub next_minute: Option<Timestamp>,
    /// First minute served wholly at 100%: minutes from here feed the bake tests.
    pub bake_from: Option<Timestamp>,
    /// The most minutes the bake can last before the rollout pauses for evidence (the bake
    /// step's `max_minutes`): the horizon of the bake e-process's burst scaling. 0: not
    /// known (a rollout stored before it was kept), then `DEFAULT_BAKE_HORIZON`.
    pub bake_horizon: u32,
    /// 5xx, new vs old, over every split minute of the rollout (one e-process throughout).
    pub errors: RatioTest,
    /// Requests slower than the latency ceiling, new vs old.
    pub slow: RatioTest,
    /// 5xx at 100% against the old version's split-time rate; created at the first bake minute.
    pub errors_bake: Option<BakeTest>,
    /// Slow requests at 100% against the old version's split-time rate.
    pub slow_bake: Option<BakeTest>,
    /// Split minutes counted (the bake looks' reference spans them).
    pub split_minutes: u32,
    /// The exact tests (scheduled, history and bake looks), keyed by budget row. The
    /// approach looks count nothing until the window before the rollout has been read.
    pub looks: ExactTests,
    /// The old version's burstiness in approaching requests over the window before the
    /// rollout, as the scaling of split minutes (`None`: not read yet, or too few minutes
    /// to tell).
    pub approach_bursts: Option<BurstScale>,
    /// The scaling of split minutes for the 5xx and slow-request looks, when the window
    /// before the rollout ran at half their events-a-minute limit or more (`None`: they
    /// test raw counts under that limit, as below it the Poisson model holds).
    pub errors_bursts: Option<BurstScale>,
    /// See `errors_bursts`.
    pub slow_bursts: Option<BurstScale>,
    /// The latest split step whose end-of-dwell look was taken.
    pub last_step_look: Option<usize>,
    /// Whether the baseline window has been read, and how often reading it failed.
    pub history_read: bool,
    pub history_failures: u32,
    /// The latest counted minutes: the trailing window of the 5xx and p95 ceilings.
    pub recent: VecDeque<MinuteCounts>,
    /// The old version's burstiness in 5xx and slow rows over the window before the
    /// rollout, which the ceilings allow for where the old version has too few rows in the
    /// trailing window to tell a burst shared by both from the release (the bake).
    pub ceiling_bursts: CeilingBursts,
    /// Totals since the current step began (for reports).
    pub step_totals: PairTotals,
    /// Consecutive failed `/healthz` probes.
    pub healthz_failures: u32,
    /// Minute index of the last probe counted (one per minute).
    pub last_probe_minute: Option<i64>,
    /// Consecutive judged trailing windows over the p95 ceiling.
    pub latency_breaches: u32,
    /// End of the last trailing window judged against the p95 ceiling.
    pub last_latency_to: Option<Timestamp>,
    /// Consecutive ticks over a queue threshold.
    pub queue_breaches: u32,
    /// Minute index of the last queue reading counted.
    pub last_queue_minute: Option<i64>,
    /// When the last minute with new-version traffic was counted (or the clock was reset).
    pub last_evidence_at: Timestamp,
}

/// The old version's burstiness in stored rows over the window before the rollout, per
/// ceiling (`None`: not read, or too few minutes to tell).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CeilingBursts {
    /// 5xx rows.
    pub errors: Option<Burstiness>,
    /// Rows over the latency ceiling.
    pub slow: Option<Burstiness>,
}

/// Both versions' totals over some minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairTotals {
    /// The new version.
    pub new: VersionCounts,
    /// The old version.
    pub old: VersionCounts,
}

impl PairTotals {
    fn add(&mut self, minute: &MinuteCounts) {
        for (sum, part) in [(&mut self.new, &minute.new), (&mut self.old, &minute.old)] {
            sum.requests += part.requests;
            sum.errors += part.errors;
            sum.slow += part.slow;
            sum.very_slow += part.very_slow;
            sum.approaching += part.approaching;
            sum.stored.rows += part.stored.rows;
            sum.stored.errors += part.stored.errors;
            sum.stored.slow += part.stored.slow;
        }
    }
}

/// What one tick added (for the audit event and the verdicts of this tick).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TickFacts {
    /// Minutes counted by this tick.
    pub minutes_counted: u32,
    /// Totals of those minutes.
    pub counted: PairTotals,
    /// Why the counts gave nothing this tick, if they did not.
    pub counts_gap: Option<Gap>,
    /// The p95 ceiling check of this tick's trailing window, if judged.
    pub latency: Option<Breach>,
    /// The queue check of this tick, if read.
    pub queue: Option<Breach>,
    /// Why the queue metrics failed this tick, if they did.
    pub queue_failed: Option<String>,
    /// Why reading the baseline window before the rollout failed this tick, if it did.
    pub history_failed: Option<String>,
    /// The probe result counted this tick.
    pub probe: Option<Probe>,
    /// Each version's p95 (ms) over the tick's trailing latency window, when it had
    /// requests (for the status page's p95 chart; the verdicts use `latency`).
    pub p95_ms: Option<VersionsP95>,
}

/// p95 latency (ms) of each version over one window; `None` without requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionsP95 {
    pub new: Option<f64>,
    pub old: Option<f64>,
}

/// One verdict per signal for this tick, with the test numbers behind them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// `/healthz`.
    pub healthz: Verdict,
    /// 5xx: sequential test, ceiling, this tick's data.
    pub errors: Verdict,
    /// Latency: slow-request test, p95 ceiling (debounced).
    pub latency: Verdict,
    /// Queue, when watched.
    pub queue: Option<Verdict>,
    /// 5xx test numbers (split test while ramping; bake test while baking).
    pub errors_test: Option<RatioSummary>,
    /// Slow-request test numbers.
    pub slow_test: Option<RatioSummary>,
    /// The latest look of each exact test that has taken one, by its budget row.
    pub looks: BTreeMap<BudgetRow, LookOutcome>,
    /// Trailing-window totals behind the 5xx and p95 ceilings.
    pub window: PairTotals,
}

impl Assessment {
    /// The verdicts that can roll the new version back (queue is judged apart).
    pub fn version_verdicts(&self) -> [&Verdict; 3] {
        [&self.healthz, &self.errors, &self.latency]
    }
}

impl SignalState {
    /// Fresh evidence for a rollout under `policy`; the evidence clock starts at `now`.
    pub fn new(policy: &Policy, now: Timestamp) -> Self {
        SignalState {
            next_minute: None,
            bake_from: None,
            bake_horizon: 0,
            errors: RatioTest::new(policy.test_config(CountTest::ErrorsSplit)),
            slow: RatioTest::new(policy.test_config(CountTest::SlowSplit)),
            errors_bake: None,
            slow_bake: None,
            split_minutes: 0,
            looks: ExactTests::new(policy),
            approach_bursts: None,
            errors_bursts: None,
            slow_bursts: None,
            last_step_look: None,
            history_read: false,
            history_failures: 0,
            recent: VecDeque::new(),
            ceiling_bursts: CeilingBursts::default(),
            step_totals: PairTotals::default(),
            healthz_failures: 0,
            last_probe_minute: None,
            latency_breaches: 0,
            last_latency_to: None,
            queue_breaches: 0,
            last_queue_minute: None,
            last_evidence_at: now,
        }
    }

    /// Starts counting at the minute containing `now` (when traffic first moves).
    pub fn start_counting(&mut self, now: Timestamp) {
        if self.next_minute.is_none() {
            self.next_minute = Some(now.floor_minute());
        }
    }

    /// A new step began: reset per-step totals and the evidence clock.
    pub fn begin_step(&mut self, now: Timestamp) {
        self.step_totals = PairTotals::default();
        self.last_evidence_at = now;
    }

    /// The 100% split went live at `now`: the minute it happened still has both versions,
    /// so bake minutes start with the next one. The bake may last up to `horizon_minutes`.
    pub fn begin_bake(&mut self, now: Timestamp, horizon_minutes: u32) {
        if self.bake_from.is_none() {
            self.bake_from = Some(now.floor_minute().plus_minutes(1));
            self.bake_horizon = horizon_minutes;
        }
    }

    /// A scheduled look of every split test (see `ScheduledLooks::look`); the tick decides
    /// when and with what allowance. A `StepEnd` look is taken once per step.
    pub fn look(&mut self, kind: LookKind, allowance: f64) {
        if let LookKind::StepEnd { step } = kind {
            if !self.step_end_due(step) {
                return;
            }
            self.last_step_look = Some(step);
        }
        self.looks.split_look(kind, allowance);
    }

    /// The baseline window is still to be read (`MAX_HISTORY_FAILURES` failures give up:
    /// the history looks then test nothing, and everything else goes on).
    pub fn history_wanted(&self) -> bool {
        !self.history_read && self.history_failures < MAX_HISTORY_FAILURES
    }

    /// A look of both bake tests' exact looks at `allowance` (see `BakeLooks::look`).
    pub fn bake_look(&mut self, allowance: f64) {
        self.looks.bake_look(allowance);
    }

    /// Reads the old version's minutes before the rollout: its 5xx into the history looks'
    /// baseline; the burstiness of its approaching requests for the approach looks, of its
    /// 5xx and slow requests for those looks where they are busy (`burst_scale_for`), and of
    /// its 5xx and slow rows for the ceilings (`ceiling_bursts`).
    fn ingest_history(
        &mut self,
        policy: &Policy,
        history: Option<&Fetched<CountsWindow>>,
        facts: &mut TickFacts,
    ) {
        match history {
            _ if !self.history_wanted() => {}
            None => {}
            Some(Fetched::Failed { why }) => {
                self.history_failures += 1;
                facts.history_failed = Some(why.clone());
            }
            Some(Fetched::Ok(window)) => {
                self.history_read = true;
                let in_window = |m: &&MinuteCounts| m.minute >= window.from && m.minute < window.to;
                let mut errors = Baseline::default();
                for m in window.minutes.iter().filter(in_window) {
                    let counts = pair(m, |c| c.errors);
                    if counts.old_total > 0.0 {
                        errors.add(counts.old_total, counts.old_bad);
                    }
                }
                if let Some(history) = self.looks.history_mut(BudgetRow::ErrorsSplitHistory) {
                    history.set_baseline(errors);
                }
                let bursts = |events: fn(&VersionCounts) -> f64| {
                    Burstiness::estimate(
                        window
                            .minutes
                            .iter()
                            .filter(in_window)
                            .map(|m| pair(m, events))
                            .map(|c| (c.old_total, c.old_bad)),
                    )
                };
                let rows = |bad: fn(&StoredRows) -> f64| {
                    Burstiness::estimate(
                        window
                            .minutes
                            .iter()
                            .filter(in_window)
                            .map(|m| (m.old.stored.rows, bad(&m.old.stored))),
                    )
                };
                self.ceiling_bursts = CeilingBursts {
                    errors: rows(|r| r.errors),
                    slow: rows(|r| r.slow),
                };
                self.approach_bursts = bursts(|c| c.approaching)
                    .map(|bursts| BurstScale::new(bursts, SCALED_EVENTS_PER_MINUTE));
                let (errors, slow) = (bursts(|c| c.errors), bursts(|c| c.slow));
                let looks = &mut self.looks;
                self.errors_bursts = burst_scale_for(
                    policy,
                    looks.scheduled_mut(BudgetRow::ErrorsSplitLooks),
                    errors,
                );
                self.slow_bursts =
                    burst_scale_for(policy, looks.scheduled_mut(BudgetRow::SlowSplitLooks), slow);
                // The onset looks count what the 5xx looks count, so they scale with them.
                if let (Some(_), Some(onset)) = (
                    self.errors_bursts.as_ref(),
                    looks.onset_mut(BudgetRow::ErrorsSplitOnset),
                ) {
                    onset.scale_for_bursts(SCALED_MAX_EVENTS_PER_MINUTE);
                }
                // The bake's sums are scaled where the split looks are (the bake runs at
                // about the window's rate, where raw looks would skip) and wherever the
                // window's sums over blocks of minutes were plainly bursty: across minutes
                // nothing cancels, and bursts that outlast a minute matter most there.
                for (split_scaled, bursts, row) in [
                    (
                        self.errors_bursts.is_some(),
                        errors,
                        BudgetRow::ErrorsBakeLooks,
                    ),
                    (self.slow_bursts.is_some(), slow, BudgetRow::SlowBakeLooks),
                ] {
                    let bursts = bursts.filter(|b| split_scaled || b.is_bursty_in_blocks());
                    if let (Some(bursts), Some(looks)) = (bursts, self.looks.bake_mut(row)) {
                        looks.scale_for_bursts(
                            bursts,
                            SCALED_EVENTS_PER_MINUTE,
                            SCALED_MAX_EVENTS_PER_MINUTE,
                        );
                    }
                }
            }
        }
    }

    /// The end-of-dwell look of split step `step` is still to be taken.
    pub fn step_end_due(&self, step: usize) -> bool {
        self.last_step_look.is_none_or(|done| done < step)
    }

    /// Once every whole split minute is counted (all minutes before the one in which 100%
    /// went live, which is mostly bake), the closing look over the split. Its time is the
    /// promotion's, not the data's.
    fn take_closing_look(&mut self) {
        let (Some(from), Some(next)) = (self.bake_from, self.next_minute) else {
            return;
        };
        if next >= from.plus_minutes(-1) {
            self.look(LookKind::Closing, CLOSING_ALLOWANCE);
        }
    }

    /// Folds one tick's observations in. Minutes already counted, outside the reported
    /// window, or newer than `now − ingestion lag` are ignored, so a repeated tick adds
    /// nothing; streaks move at most once per minute.
    pub fn ingest(&mut self, policy: &Policy, obs: &Observations, now: Timestamp) -> TickFacts {
        let mut facts = TickFacts::default();
        let tick_minute = now.minute_index();
        if let Some(probe) = &obs.healthz {
            if self.last_probe_minute.is_none_or(|m| tick_minute > m) {
                self.last_probe_minute = Some(tick_minute);
                match probe {
                    Probe::Ok => self.healthz_failures = 0,
                    Probe::Failed { .. } => self.healthz_failures += 1,
                    Probe::WrongVersion { .. } => {}
                }
                facts.probe = Some(probe.clone());
            }
        }
        self.ingest_history(policy, obs.history.as_ref(), &mut facts);
        self.ingest_counts(policy, obs.counts.as_ref(), now, &mut facts);
        if let Some(Fetched::Failed { why }) = &obs.queue {
            facts.queue_failed = Some(why.clone());
        }
        if let (Some(thresholds), Some(Fetched::Ok(metrics))) = (&policy.queue, &obs.queue) {
            if self.last_queue_minute.is_none_or(|m| tick_minute > m) {
                self.last_queue_minute = Some(tick_minute);
                let breach = Policy::judge_queue(thresholds, metrics);
                match breach {
                    Breach::Over(_) => self.queue_breaches += 1,
                    Breach::Within => self.queue_breaches = 0,
                    Breach::TooFew { .. } => {}
                }
                facts.queue = Some(breach);
            }
        }
        facts
    }

    fn ingest_counts(
        &mut self,
        policy: &Policy,
        counts: Option<&Fetched<crate::observe::CountsWindow>>,
        now: Timestamp,
        facts: &mut TickFacts,
    ) {
        let window = match counts {
            None => {
                facts.counts_gap = Some(Gap::NotObserved {
                    signal: Signal::Errors,
                });
                return;
            }
            Some(Fetched::Failed { why }) => {
                facts.counts_gap = Some(Gap::SourceFailed {
                    signal: Signal::Errors,
                    why: why.clone(),
                });
                return;
            }
            Some(Fetched::Ok(window)) => window,
        };
        facts.p95_ms = Some(VersionsP95 {
            new: window.new_latency.p95_ms,
            old: window.old_latency.p95_ms,
        });
        let Some(next) = self.next_minute else {
            facts.counts_gap = Some(Gap::NoNewMinutes);
            return;
        };
        let limit = now
            .plus_minutes(-i64::from(policy.ingestion_lag_minutes))
            .floor_minute();
        let end = window.to.floor_minute().min(limit);
        // A window that starts after the first uncounted minute would skip minutes silently.
        if window.from.floor_minute() > next {
            facts.counts_gap = Some(Gap::SourceFailed {
                signal: Signal::Errors,
                why: format!("window starts at {}, after {next}", window.from),
            });
            return;
        }
        if end <= next {
            facts.counts_gap = Some(Gap::NoNewMinutes);
            return;
        }
        let mut minutes: Vec<&MinuteCounts> = window
            .minutes
            .iter()
            .filter(|m| m.minute >= next && m.minute < end)
            .collect();
        minutes.sort_by_key(|m| m.minute);
        minutes.dedup_by_key(|m| m.minute);
        for minute in minutes {
            self.count_minute(policy, minute);
            facts.counted.add(minute);
        }
        facts.minutes_counted =
            u32::try_from(end.minute_index() - next.minute_index()).unwrap_or(0);
        self.next_minute = Some(end);
        self.take_closing_look();
        if facts.counted.new.requests > 0.0 {
            self.last_evidence_at = now;
        } else {
            facts.counts_gap = Some(Gap::TooFewRequests {
                signal: Signal::Errors,
                have: 0.0,
                need: 1.0,
            });
        }
        if self.last_latency_to.is_none_or(|t| end > t) {
            self.last_latency_to = Some(end);
            let recent = self.window();
            let breach = policy.judge_latency_ceiling(
                &recent.new.stored,
                self.concurrent_share(|r| r.slow),
                self.recent.len(),
                self.ceiling_bursts.slow.as_ref(),
            );
            match breach {
                Breach::Over(_) => self.latency_breaches += 1,
                Breach::Within => self.latency_breaches = 0,
                Breach::TooFew { .. } => {}
            }
            facts.latency = Some(breach);
        }
    }

    /// Both versions' totals over the trailing window (`recent`), stored rows included.
    fn window(&self) -> PairTotals {
        self.recent.iter().fold(PairTotals::default(), |mut t, m| {
            t.add(m);
            t
        })
    }

    /// The old version over the trailing window, for the ceilings' shared-incident rule:
    /// its rows, and its share of `bad` rows with each minute weighted by the new version's
    /// rows in it. `None` once the window reaches the bake, where the old version no longer
    /// serves every minute.
    fn concurrent_share(&self, bad: fn(&StoredRows) -> f64) -> Option<ConcurrentShare> {
        let newest = self.recent.back().map(|m| m.minute);
        if let (Some(from), Some(newest)) = (self.bake_from, newest) {
            if newest >= from {
                return None;
            }
        }
        let (mut rows, mut weighted, mut weight) = (0.0, 0.0, 0.0);
        for m in &self.recent {
            let (new, old) = (&m.new.stored, &m.old.stored);
            rows += old.rows;
            if old.rows > 0.0 {
                weighted += new.rows * bad(old) / old.rows;
                weight += new.rows;
            }
        }
        let share = if weight > 0.0 { weighted / weight } else { 0.0 };
        Some(ConcurrentShare { rows, share })
    }

    fn count_minute(&mut self, policy: &Policy, minute: &MinuteCounts) {
        self.step_totals.add(minute);
        self.recent.push_back(*minute);
        let keep_from = minute
            .minute
            .plus_minutes(1 - i64::from(policy.window_minutes));
        while self.recent.front().is_some_and(|m| m.minute < keep_from) {
            self.recent.pop_front();
        }
        let baking = self.bake_from.is_some_and(|from| minute.minute >= from);
        if !baking {
            let (errors, slow) = (pair(minute, |c| c.errors), pair(minute, |c| c.slow));
            if errors.old_total > 0.0 {
                self.split_minutes += 1;
            }
            self.errors.observe(errors);
            self.slow.observe(slow);
            let rho0 = policy.look_rho0;
            let looks = &mut self.looks;
            if let Some(l) = looks.scheduled_mut(BudgetRow::ErrorsSplitLooks) {
                let fed = observe_split(l, self.errors_bursts.as_mut(), errors, rho0);
                if let Some(onset) = looks.onset_mut(BudgetRow::ErrorsSplitOnset) {
                    onset.observe(fed);
                }
            }
            if let Some(l) = looks.scheduled_mut(BudgetRow::SlowSplitLooks) {
                observe_split(l, self.slow_bursts.as_mut(), slow, rho0);
            }
            if let Some(l) = looks.scheduled_mut(BudgetRow::VerySlowSplitLooks) {
                l.observe(pair(minute, |c| c.very_slow));
            }
            if let Some(l) = looks.bake_mut(BudgetRow::ErrorsBakeLooks) {
                l.observe_reference(errors.old_total, errors.old_bad);
            }
            if let Some(l) = looks.bake_mut(BudgetRow::SlowBakeLooks) {
                l.observe_reference(slow.old_total, slow.old_bad);
            }
            // The approach looks count nothing until their scaling is known.
            if let (Some(scale), Some(l)) = (
                self.approach_bursts.as_mut(),
                looks.scheduled_mut(BudgetRow::ApproachingSplitLooks),
            ) {
                let approaching = pair(minute, |c| c.approaching);
                observe_split(l, Some(scale), approaching, policy.approach_rho0);
            }
            if let Some(l) = looks.history_mut(BudgetRow::ErrorsSplitHistory) {
                l.observe(errors);
            }
            return;
        }
        if self.errors_bake.is_none() {
            // The reference is the old version's rate over every split minute of the rollout.
            let (errors, slow) = (self.errors.summary(), self.slow.summary());
            let reference = |s: &RatioSummary| Reference {
                minutes: self.split_minutes,
                requests: s.old_total,
                bad: s.old_bad,
            };
            // A rollout stored before the bake looks existed has them at α 0 while its bake
            // e-processes get only their share: give it the policy's looks now.
            let looks = &mut self.looks;
            let unfunded = |l: Option<&BakeLooks>| l.is_none_or(|l| l.alpha() <= 0.0);
            if unfunded(looks.bake(BudgetRow::ErrorsBakeLooks))
                && unfunded(looks.bake(BudgetRow::SlowBakeLooks))
            {
                looks.fund_bake(policy);
            }
            let horizon = match self.bake_horizon {
                0 => DEFAULT_BAKE_HORIZON,
                minutes => minutes,
            };
            // Where the bake looks' sums are burst-scaled, the e-process's are too.
            let mut bake_test = |test: CountTest, split: &RatioSummary, row: BudgetRow| {
                let config = policy.test_config(test);
                let scaling = looks.bake_mut(row).and_then(|l| {
                    l.start(reference(split));
                    l.e_process_scaling(horizon)
                });
                match scaling {
                    Some(scaling) => {
                        BakeTest::new(config, scaling.reference.bad, scaling.reference.requests)
                            .with_burst_scaling(scaling.bake_divisor, horizon)
                    }
                    None => BakeTest::new(config, split.old_bad, split.old_total),
                }
            };
            self.errors_bake = Some(bake_test(
                CountTest::ErrorsBake,
                &errors,
                BudgetRow::ErrorsBakeLooks,
            ));
            self.slow_bake = Some(bake_test(
                CountTest::SlowBake,
                &slow,
                BudgetRow::SlowBakeLooks,
            ));
            self.looks.start_bake_onset();
        }
        for (events, test, row) in [
            (
                pair(minute, |c| c.errors),
                self.errors_bake.as_mut(),
                BudgetRow::ErrorsBakeLooks,
            ),
            (
                pair(minute, |c| c.slow),
                self.slow_bake.as_mut(),
                BudgetRow::SlowBakeLooks,
            ),
        ] {
            if let Some(test) = test {
                test.observe(events.new_total, events.new_bad);
            }
            for row in with_onset(row) {
                if let Some(looks) = self.looks.bake_mut(row) {
                    looks.observe(events.new_total, events.new_bad);
                }
            }
        }
    }

    /// This tick's verdicts. `baking` selects which tests give promotion evidence; a
    /// regression in any test is unhealthy whatever the stage (late split minutes still count).
    pub fn assess(&self, policy: &Policy, facts: &TickFacts, baking: bool) -> Assessment {
        let healthz = policy.judge_healthz(self.healthz_failures, facts.probe.as_ref());
        let window = self.window();
        let mut split = (self.errors.summary(), self.slow.summary());
        let rho = policy.rho_detect;
        for (summary, row) in [
            (&mut split.0, BudgetRow::ErrorsSplitLooks),
            (&mut split.1, BudgetRow::SlowSplitLooks),
        ] {
            let (new, old) = (summary.new_total, summary.old_total);
            let looks = self.looks.scheduled(row);
            looks_exposure(policy, summary, |rate| {
                looks.and_then(|l| l.detection_power(new, old, rate, rho))
            });
        }
        let mut bake = (
            self.errors_bake.as_ref().map(BakeTest::summary),
            self.slow_bake.as_ref().map(BakeTest::summary),
        );
        for (summary, row) in [
            (bake.0.as_mut(), BudgetRow::ErrorsBakeLooks),
            (bake.1.as_mut(), BudgetRow::SlowBakeLooks),
        ] {
            if let (Some(summary), Some(looks)) = (summary, self.looks.bake(row)) {
                looks_exposure(policy, summary, |rate| looks.detection_power(rate, rho));
            }
        }
        let (errors_test, slow_test) = if baking {
            bake.clone()
        } else {
            (Some(split.0.clone()), Some(split.1.clone()))
        };
        let mut errors =
            self.errors_verdict(policy, facts, &window, &split.0, &bake.0, &errors_test);
        let mut latency = self.latency_verdict(policy, facts, &split.1, &bake.1, &slow_test);
        let mut looks = BTreeMap::new();
        for (row, exact) in self.looks.iter() {
            if let Some(look) = exact.rejected() {
                let verdict = policy.judge_look(row, look);
                match row.parts().1 {
                    LookedEvents::Errors => errors = errors.worst(verdict),
                    _ => latency = latency.worst(verdict),
                }
            }
            if let Some(look) = exact.latest() {
                looks.insert(row, look.clone());
            }
        }
        let queue = policy.queue.as_ref().map(|t| self.queue_verdict(t, facts));
        Assessment {
            healthz,
            errors,
            latency,
            queue,
            errors_test,
            slow_test,
            looks,
            window,
        }
    }

    fn errors_verdict(
        &self,
        policy: &Policy,
        facts: &TickFacts,
        window: &PairTotals,
        split: &RatioSummary,
        bake: &Option<RatioSummary>,
        stage: &Option<RatioSummary>,
    ) -> Verdict {
        let mut verdict = regressions(policy, Signal::Errors, split, bake);
        let ceiling = policy.judge_error_ceiling(
            &window.new.stored,
            self.concurrent_share(|r| r.errors),
            self.recent.len(),
            self.ceiling_bursts.errors.as_ref(),
        );
        if let Breach::Over(reason) = ceiling {
            verdict = verdict.worst(Verdict::unhealthy(reason));
        }
        verdict.worst(evidence(policy, Signal::Errors, facts, stage))
    }

    fn latency_verdict(
        &self,
        policy: &Policy,
        facts: &TickFacts,
        split: &RatioSummary,
        bake: &Option<RatioSummary>,
        stage: &Option<RatioSummary>,
    ) -> Verdict {
        let verdict = regressions(policy, Signal::Latency, split, bake);
        let latest = match &facts.latency {
            Some(Breach::Over(reason)) => Some(reason.clone()),
            _ => None,
        };
        let debounced = match latest {
            Some(reason) if self.latency_breaches >= policy.latency_consecutive => {
                Verdict::unhealthy(reason)
            }
            Some(reason) => Verdict::inconclusive(Gap::Debouncing {
                signal: Signal::Latency,
                breaches: self.latency_breaches,
                needed: policy.latency_consecutive,
                detail: reason.detail,
            }),
            None => Verdict::Healthy,
        };
        verdict
            .worst(debounced)
            .worst(evidence(policy, Signal::Latency, facts, stage))
    }

    fn queue_verdict(
        &self,
        thresholds: &crate::policy::QueueThresholds,
        facts: &TickFacts,
    ) -> Verdict {
        match &facts.queue {
            None => Verdict::inconclusive(match &facts.queue_failed {
                Some(why) => Gap::SourceFailed {
                    signal: Signal::Queue,
                    why: why.clone(),
                },
                None => Gap::NotObserved {
                    signal: Signal::Queue,
                },
            }),
            Some(Breach::Over(reason)) if self.queue_breaches >= thresholds.consecutive => {
                Verdict::unhealthy(reason.clone())
            }
            Some(Breach::Over(reason)) => Verdict::inconclusive(Gap::Debouncing {
                signal: Signal::Queue,
                breaches: self.queue_breaches,
                needed: thresholds.consecutive,
                detail: reason.detail.clone(),
            }),
            Some(Breach::Within) => Verdict::Healthy,
            Some(Breach::TooFew { have, need }) => Verdict::inconclusive(Gap::TooFewRequests {
                signal: Signal::Queue,
                have: *have,
                need: *need,
            }),
        }
    }
}

/// Unhealthy if the split test or the bake test has rejected; healthy otherwise (the
/// evidence part is judged separately).
fn regressions(
    policy: &Policy,
    signal: Signal,
    split: &RatioSummary,
    bake: &Option<RatioSummary>,
) -> Verdict {
    let mut verdict = Verdict::Healthy;
    for summary in std::iter::once(split).chain(bake.as_ref()) {
        if summary.regression {
            verdict = verdict.worst(policy.judge_count_test(signal, summary));
        }
    }
    verdict
}

/// Positive evidence from this tick: fresh minutes with new-version traffic, and the stage's
/// test showing a tight bound or enough exposure.
fn evidence(
    policy: &Policy,
    signal: Signal,
    facts: &TickFacts,
    stage: &Option<RatioSummary>,
) -> Verdict {
    if let Some(gap) = &facts.counts_gap {
        return Verdict::inconclusive(gap.clone().for_signal(signal));
    }
    match stage {
        Some(summary) => policy.judge_evidence(signal, summary),
        // Only the bake's tests can be missing: the split's exist from the start.
        None => Verdict::inconclusive(Gap::BakeNotStarted { signal }),
    }
}

/// The exposure rule, counting exact looks too: when the e-process's projection falls
/// short, a new version at `rho_detect` × the pooled rate (floored like the e-process's)
/// that the looks, at the α spent so far, would have caught with probability ≥ `power`
/// (`power_at` that rate) meets it as well (docs/statistics.md, "Exposure rule"). The
/// split's scheduled looks count for the split; the bake's looks for the bake, where the
/// e-process's projection falls short for long when its counts are burst-scaled for the
/// bake's whole horizon.
fn looks_exposure(
    policy: &Policy,
    summary: &mut RatioSummary,
    power_at: impl FnOnce(f64) -> Option<f64>,
) {
    if summary.exposure_met {
        return;
    }
    let rate = summary.assumed_base_rate(DEFAULT_BASE_RATE_FLOOR);
    if power_at(rate).is_some_and(|p| p >= policy.power) {
        summary.exposure_met = true;
        summary.new_requests_needed = 0.0;
    }
}

/// The scaling for a split test's exact looks, from the old version's burstiness over the
/// window before the rollout: where that window averaged at least half the looks'
/// events-a-minute limit, or was plainly bursty (`Burstiness::is_bursty`); elsewhere raw
/// counts keep the looks exact and every event whole. Only while the looks have counted
/// nothing (`ScheduledLooks::scale_for_bursts`). Scaled counts are thinned to
/// `SCALED_EVENTS_PER_MINUTE`, so the limit rises to `SCALED_MAX_EVENTS_PER_MINUTE`, a
/// backstop as for the approach looks.
fn burst_scale_for(
    policy: &Policy,
    looks: Option<&mut ScheduledLooks>,
    bursts: Option<Burstiness>,
) -> Option<BurstScale> {
    let busy = |b: &Burstiness| b.mean_events >= policy.look_max_events_per_minute / 2.0;
    let bursts = bursts.filter(|b| busy(b) || b.is_bursty())?;
    looks?
        .scale_for_bursts(SCALED_MAX_EVENTS_PER_MINUTE)
        .then(|| BurstScale::new(bursts, SCALED_EVENTS_PER_MINUTE))
}

/// Counts one split minute into `looks`: scaled for burstiness under the null "ratio ≤
/// `rho0`" when `scale` is set, raw otherwise. Returns the counts as fed.
fn observe_split(
    looks: &mut ScheduledLooks,
    scale: Option<&mut BurstScale>,
    counts: PairCounts,
    rho0: f64,
) -> PairCounts {
    match scale {
        Some(scale) => {
            let scaled = scale.scale(counts, rho0);
            looks.observe_scaled(counts, scaled);
            scaled
        }
        None => {
            looks.observe(counts);
            counts
        }
    }
}

/// A bake looks row with its onset looks' row, which counts the same minutes the same way.
fn with_onset(row: BudgetRow) -> impl Iterator<Item = BudgetRow> {
    let onset = (row == BudgetRow::ErrorsBakeLooks).then_some(BudgetRow::ErrorsBakeOnset);
    std::iter::once(row).chain(onset)
}

fn pair(minute: &MinuteCounts, bad: impl Fn(&VersionCounts) -> f64) -> PairCounts {
    PairCounts {
        new_total: minute.new.requests,
        new_bad: bad(&minute.new),
        old_total: minute.old.requests,
        old_bad: bad(&minute.old),
    }
    .per_sample(minute.sample_interval)
}

#[cfg(test)]
mod tests;

//! Comparator gates, each from its documented defaults, driven through the same world and
//! schedule as ours: Flagger-style per-minute checks, a trailing-window threshold (Google's
//! cloud-run-release-manager) and a fixed-horizon z-test re-run every minute. They see the
//! same minutes as ours (Analytics Engine ingestion lag included) and promote per schedule.

use super::rng::Rng;
use super::run::{finish, RunOutcome};
use super::scenario::Scenario;
use super::traffic::{tick_time, World};
use crate::policy::{CountTest, Policy, Signal};
use crate::stats::{conditional_power, ExactLooks, PairCounts, RatioTest, DEFAULT_BASE_RATE_FLOOR};

/// Flagger's builtin `request-success-rate` threshold (`thresholdRange.min: 99`).
pub const FLAGGER_MIN_SUCCESS_PERCENT: f64 = 99.0;
/// Flagger's builtin `request-duration` threshold: P99 ≤ 500 ms.
pub const FLAGGER_MAX_P99_MS: f64 = 500.0;
/// cloud-run-release-manager `-max-error-rate` default (percent).
pub const WINDOW_MAX_ERROR_PERCENT: f64 = 1.0;
/// cloud-run-release-manager `-min-requests` default.
pub const WINDOW_MIN_REQUESTS: f64 = 100.0;
/// cloud-run-release-manager `-healthcheck-offset` default (minutes of metrics looked at).
pub const WINDOW_MINUTES: u32 = 30;
/// One-sided z for the fixed-horizon gate: α = 1% split evenly over 5xx and slow requests,
/// so one look alone would falsely fire ≤ 1%; every extra look adds to that.
pub const FIXED_Z_CRITICAL: f64 = 2.575_829_3;

/// One check's outcome for a comparator.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    /// Healthy: may promote once the dwell is over.
    Pass,
    /// A failed check (Flagger counts these toward its threshold).
    Fail(Signal),
    /// Not enough data: neither promote nor roll back.
    Wait,
    /// Roll back now.
    RollBack(Signal),
}

/// Runs a comparator gate once.
pub fn run_comparator(scenario: &Scenario, comparator: Comparator, rng: Rng) -> RunOutcome {
    let mut world = World::new(scenario, rng);
    let mut rule = Rule::new(comparator);
    let steps = scenario.schedule.steps();
    let lag = scenario.policy.ingestion_lag_minutes;
    let mut outcome = RunOutcome::default();
    let mut evidence = Evidence::new(scenario);
    let (mut stage, mut live_since, mut failed) = (0usize, 0u32, 0u32);
    world.set_share(tick_time(0), steps[0].percent.as_f64() / 100.0);
    for tick in 1..=scenario.minutes {
        world.advance_to(tick_time(tick));
        let visible_end = tick.saturating_sub(lag);
        let check = rule.check(&mut world, scenario, tick, visible_end);
        let dwell_over = tick - live_since >= steps[stage].dwell_minutes;
        let rollback = match check {
            Check::RollBack(signal) => Some(signal),
            Check::Fail(signal) => {
                failed += 1;
                (failed >= rule.failed_checks_to_roll_back()).then_some(signal)
            }
            Check::Pass if dwell_over => {
                outcome.promotions += 1;
                if !evidence.supports(&world, visible_end, stage) {
                    outcome.unsupported_promotions += 1;
                }
                if stage + 1 == steps.len() {
                    outcome.completed_at = Some(tick);
                    break;
                }
                stage += 1;
                live_since = tick;
                world.set_share(tick_time(tick), steps[stage].percent.as_f64() / 100.0);
                None
            }
            Check::Wait if dwell_over => {
                outcome.held = true;
                None
            }
            Check::Pass | Check::Wait => None,
        };
        if let Some(signal) = rollback {
            outcome.rolled_back_at = Some(tick);
            outcome.rollback_signal = Some(signal);
            outcome.rolled_back_in_first_step = stage == 0;
            world.set_share(tick_time(tick), 0.0);
            break;
        }
    }
    finish(&mut world, scenario, &mut outcome);
    outcome
}

/// The yardstick for "promotion without evidence", the same for every gate: our 5xx split
/// test (its exposure rule or its upper bound, as the policy configures them) fed the minutes
/// the gate could have seen. Comparators do not consult it; it only judges their promotions.
struct Evidence {
    test: RatioTest,
    /// First minute not yet fed.
    next: u32,
    /// The scenario's policy, for the looks part of the rule, with our 5xx looks' α and
    /// how many split steps share it.
    policy: Policy,
    looks_alpha: f64,
    split_steps: usize,
}

impl Evidence {
    fn new(scenario: &Scenario) -> Self {
        let policy = &scenario.policy;
        Evidence {
            test: RatioTest::new(policy.test_config(CountTest::ErrorsSplit)),
            next: 0,
            looks_alpha: policy.looks(CountTest::ErrorsSplit).alpha(),
            policy: policy.clone(),
            split_steps: scenario.schedule.steps().len().saturating_sub(1).max(1),
        }
    }

    /// Feeds minutes up to `visible_end` (stored rows: what the core tests after dividing by
    /// the sample interval) and says whether the evidence would allow a promotion out of
    /// schedule step `stage`: our rule, the e-process's bound or exposure, or the looks' power
    /// at the α our looks would have spent by the end of that step (fixed-sample, as ours).
    fn supports(&mut self, world: &World<'_>, visible_end: u32, stage: usize) -> bool {
        while self.next < visible_end {
            if let Some(m) = world.minutes.get(self.next as usize) {
                self.test.observe(PairCounts {
                    new_total: m.stored_new.requests as f64,
                    new_bad: m.stored_new.errors as f64,
                    old_total: m.stored_old.requests as f64,
                    old_bad: m.stored_old.errors as f64,
                });
            }
            self.next += 1;
        }
        let summary = self.test.summary();
        if summary.exposure_met || summary.upper_bound < self.policy.rho_tolerance {
            return true;
        }
        let policy = &self.policy;
        let requests = summary.new_total + summary.old_total;
        let events = summary.new_bad + summary.old_bad;
        let per_minute = events / f64::from(self.next.max(1));
        if requests <= 0.0 || per_minute > policy.look_max_events_per_minute {
            return false;
        }
        let allowance = ((stage + 1) as f64 / self.split_steps as f64).min(1.0);
        let power = conditional_power(
            summary.new_total,
            summary.old_total,
            summary.assumed_base_rate(DEFAULT_BASE_RATE_FLOOR),
            policy.rho_detect,
            policy.look_rho0,
            self.looks_alpha * allowance,
        );
        power >= policy.power
    }
}

/// The comparators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparator {
    /// Flagger-style, rolling back after `threshold` failed checks.
    Flagger { threshold: u32 },
    /// Trailing-window threshold.
    Window,
    /// Fixed-horizon z-test every minute.
    FixedZ,
}

/// The comparators' decision rules with their running state.
enum Rule {
    /// Flagger: the newest minute's success rate and P99; `threshold` failed checks (in all,
    /// not in a row: Flagger's `failedChecks` only resets on a new revision) roll back.
    Flagger { threshold: u32 },
    /// Trailing window: error rate over the last `WINDOW_MINUTES` once there are enough
    /// requests, and p95 against the team's ceiling (the manager's `-latency-p95` flag).
    Window,
    /// Cumulative one-sided two-proportion z-tests, new vs old, every minute.
    FixedZ(ZTotals),
}

/// Running sums for the fixed-horizon gate.
#[derive(Default)]
struct ZTotals {
    /// First minute not yet added.
    next: u32,
    /// (requests, 5xx, slow) of the new and old version over split minutes.
    split_new: [f64; 3],
    split_old: [f64; 3],
    /// The new version over minutes it served alone (the bake).
    bake_new: [f64; 3],
}

impl Rule {
    fn new(comparator: Comparator) -> Rule {
        match comparator {
            Comparator::Flagger { threshold } => Rule::Flagger { threshold },
            Comparator::Window => Rule::Window,
            Comparator::FixedZ => Rule::FixedZ(ZTotals::default()),
        }
    }

    fn failed_checks_to_roll_back(&self) -> u32 {
        match self {
            Rule::Flagger { threshold } => *threshold,
            _ => u32::MAX,
        }
    }

    /// The check at `tick`, over minutes `< visible_end` (older than the ingestion lag).
    fn check(
        &mut self,
        world: &mut World<'_>,
        scenario: &Scenario,
        tick: u32,
        visible_end: u32,
    ) -> Check {
        // Before the first split minute is visible there is nothing to check yet (Flagger
        // only starts analysing one interval after the canary gets traffic).
        if visible_end == 0 {
            return Check::Wait;
        }
        match self {
            Rule::Flagger { .. } => flagger(world, tick, visible_end - 1),
            Rule::Window => window(world, scenario, tick, visible_end),
            Rule::FixedZ(totals) => fixed_z(world, totals, tick, visible_end),
        }
    }
}

fn flagger(world: &mut World<'_>, tick: u32, minute: u32) -> Check {
    if world.metrics_down(tick) {
        return Check::Fail(Signal::Errors);
    }
    let (new, _) = world.read_minute(minute, tick);
    // "no values found" is a failed check in Flagger.
    if new.requests <= 0.0 {
        return Check::Fail(Signal::Errors);
    }
    let success_percent = 100.0 * (1.0 - new.errors / new.requests);
    if success_percent < FLAGGER_MIN_SUCCESS_PERCENT {
        return Check::Fail(Signal::Errors);
    }
    let (latency, _) = world.quantiles(minute, minute + 1, 0.99);
    if latency.p95_ms.is_some_and(|p99| p99 > FLAGGER_MAX_P99_MS) {
        return Check::Fail(Signal::Latency);
    }
    Check::Pass
}

fn window(world: &mut World<'_>, scenario: &Scenario, tick: u32, visible_end: u32) -> Check {
    if world.metrics_down(tick) {
        return Check::Wait;
    }
    let from = visible_end.saturating_sub(WINDOW_MINUTES);
    let (mut requests, mut errors) = (0.0, 0.0);
    for minute in from..visible_end {
        let (new, _) = world.read_minute(minute, tick);
        requests += new.requests;
        errors += new.errors;
    }
    if requests < WINDOW_MIN_REQUESTS {
        return Check::Wait;
    }
    if 100.0 * errors / requests > WINDOW_MAX_ERROR_PERCENT {
        return Check::RollBack(Signal::Errors);
    }
    let (latency, _) = world.latency(from, visible_end);
    let ceiling = scenario.policy.latency_p95_ceiling_ms;
    if latency.p95_ms.is_some_and(|p95| p95 > ceiling) {
        return Check::RollBack(Signal::Latency);
    }
    Check::Pass
}

fn fixed_z(world: &mut World<'_>, t: &mut ZTotals, tick: u32, visible_end: u32) -> Check {
    if world.metrics_down(tick) {
        return Check::Wait;
    }
    while t.next < visible_end {
        let (new, old) = world.read_minute(t.next, tick);
        let add = |sum: &mut [f64; 3], c: &crate::observe::VersionCounts| {
            sum[0] += c.requests;
            sum[1] += c.errors;
            sum[2] += c.slow;
        };
        if old.requests > 0.0 {
            add(&mut t.split_new, &new);
            add(&mut t.split_old, &old);
        } else {
            add(&mut t.bake_new, &new);
        }
        t.next += 1;
    }
    for (index, signal) in [(1, Signal::Errors), (2, Signal::Latency)] {
        let old = (t.split_old[index], t.split_old[0]);
        let split = z_two_proportions((t.split_new[index], t.split_new[0]), old);
        let bake = z_two_proportions((t.bake_new[index], t.bake_new[0]), old);
        if split > FIXED_Z_CRITICAL || bake > FIXED_Z_CRITICAL {
            return Check::RollBack(signal);
        }
    }
    Check::Pass
}

/// One-sided pooled two-proportion z statistic of (bad, total) `a` over `b`; 0 when either
/// side has no requests or no bad events were seen at all.
fn z_two_proportions(a: (f64, f64), b: (f64, f64)) -> f64 {
    let ((xa, na), (xb, nb)) = (a, b);
    if na <= 0.0 || nb <= 0.0 {
        return 0.0;
    }
    let pooled = (xa + xb) / (na + nb);
    let var = pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb);
    if var <= 0.0 {
        return 0.0;
    }
    (xa / na - xb / nb) / var.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_statistic_matches_a_hand_computation() {
        // 30/1000 vs 20/1000: pooled 0.025, se = sqrt(0.025·0.975·0.002) = 0.006982.
        let z = z_two_proportions((30.0, 1000.0), (20.0, 1000.0));
        assert!((z - 0.01 / 0.006_982_1).abs() < 1e-3, "{z}");
        assert_eq!(z_two_proportions((0.0, 10.0), (0.0, 10.0)), 0.0);
        assert_eq!(z_two_proportions((1.0, 0.0), (0.0, 10.0)), 0.0);
    }
}

//! The oracles: likelihood-ratio tests for a regression whose size they know. The statistic
//! is the likelihood ratio of "which version did each bad event come from" under the true
//! per-minute rate ratios (5xx and slow requests) against ratio 1, summed over the
//! schedule's split; it is conditional on each minute's totals, while its critical values
//! are calibrated by simulating the same scenario with a healthy candidate, which is how it
//! knows the base rate. The **oracle** judges it once at the end of the split against the
//! (1 − α) quantile, randomized at ties, so its size is α on the calibration runs. Its
//! time-to-detect is the first minute at which the oracle calibrated for that minute's
//! exposure (its own critical value) rejects: not a test a gate could run, since looking
//! every minute at α each adds up (`every_minute_size` says how much). The **anytime
//! oracle** is one it could: the same statistic against one threshold for the whole split,
//! set so that a healthy candidate crosses it at some minute in α of the calibration runs
//! (a one-sided sequential probability ratio test, truncated at the end of the split).
//! Both read minutes as a gate does: after the ingestion lag, and not while Analytics Engine
//! is down. Neither is a proven limit: the statistic is not the likelihood ratio of all the
//! data.

use super::rng::Rng;
use super::scenario::Scenario;
use super::traffic::{tick_time, World};
use serde::Serialize;

/// Stream ids for the oracle's runs (apart from the gates' 1..=5).
const NULL_STREAM: u64 = 101;
const ALTERNATIVE_STREAM: u64 = 102;

/// Ratio used when the baseline's rate is 0 and the candidate's is not (a bad event from the
/// old version then has likelihood 0 under the alternative; keep the statistic finite).
const RATIO_CAP: f64 = 1e6;

/// What the oracle achieves in one regression scenario.
#[derive(Clone, Debug, Serialize)]
pub struct OracleReport {
    /// Runs under the alternative.
    pub runs: usize,
    /// Runs under the null that set the critical value.
    pub calibration_runs: usize,
    /// The critical value of the log-likelihood ratio at the end of the split.
    pub critical: f64,
    /// Probability of rejecting when the statistic equals `critical` exactly.
    pub tie_probability: f64,
    /// Size achieved on the calibration runs (α by construction).
    pub size: f64,
    /// Power at the end of the split.
    pub detection: f64,
    /// Power at the end of the first step.
    pub first_step_detection: f64,
    /// Per run, the tick at which the oracle for the exposure seen by then first rejected
    /// (`None`: not by the end of the split).
    pub detect_ticks: Vec<Option<u32>>,
    /// Chance that a healthy candidate is rejected at some minute by that every-minute rule
    /// (its size over the whole split; α only if a single minute were judged).
    pub every_minute_size: f64,
    /// The anytime oracle's size over the whole split on the calibration runs (α).
    pub anytime_size: f64,
    /// The anytime oracle's power by the end of the split.
    pub anytime_detection: f64,
    /// Per run, the tick at which the anytime oracle crossed its threshold.
    pub anytime_detect_ticks: Vec<Option<u32>>,
    /// The true 5xx and slow-request rate ratios (new/old) after the candidate changes.
    pub error_ratio: f64,
    /// See `error_ratio`.
    pub slow_ratio: f64,
}

/// Per-minute log-likelihood-ratio terms for one bad-event signal at true ratio `rho` and
/// share `q`: a new-version event adds `a`, an old-version event `b`.
fn terms(rho: f64, q: f64) -> (f64, f64) {
    let p = rho * q / (rho * q + 1.0 - q);
    ((p / q).ln(), ((1.0 - p) / (1.0 - q)).ln())
}

fn ratio(new: f64, old: f64) -> f64 {
    if old > 0.0 {
        new / old
    } else if new > 0.0 {
        RATIO_CAP
    } else {
        1.0
    }
}

/// The oracle for `scenario`, or `None` when the candidate does not differ from the baseline
/// during the split (a healthy scenario, or one whose change comes after the split).
pub fn evaluate(
    scenario: &Scenario,
    runs: usize,
    calibration_runs: usize,
    seed: u64,
) -> Option<OracleReport> {
    let split = scenario.split_minutes();
    let changes_late = scenario
        .candidate_changes_at_min
        .is_some_and(|at| at >= split);
    if scenario.is_healthy() || changes_late || split == 0 {
        return None;
    }
    let probe = World::new(scenario, Rng::from_seed(0));
    let (base_slow, cand_slow) = probe.slow_rates();
    let error_ratio = ratio(scenario.candidate.error_rate, scenario.baseline.error_rate);
    let slow_ratio = ratio(cand_slow, base_slow);
    let null = scenario.null_variant();
    let name = super::rng::hash_name(&scenario.name);
    let oracle = Statistic {
        error_ratio,
        slow_ratio,
    };
    // Under the null nothing changes, but the alternative's ratios still weigh the events
    // from the minute the candidate would have changed.
    let null_paths: Vec<Vec<f64>> = (0..calibration_runs)
        .map(|run| {
            let rng = Rng::derive(seed, &[name, NULL_STREAM, run as u64]);
            oracle.path(&null, scenario, rng)
        })
        .collect();
    let alpha = scenario.policy.alpha;
    let critical = per_minute_critical(&null_paths, split as usize, alpha);
    let at_end = critical[split as usize - 1];
    let finals: Vec<f64> = null_paths.iter().map(|p| p[split as usize - 1]).collect();
    let size = rejection_rate(&finals, at_end.0, at_end.1);
    let every_minute_size = size_over_the_split(&null_paths, &critical);
    let anytime = vec![anytime_threshold(&null_paths, alpha); split as usize];
    let anytime_size = size_over_the_split(&null_paths, &anytime);
    let first_step = scenario.schedule.steps()[0].dwell_minutes.clamp(1, split) as usize;
    let lag = scenario.policy.ingestion_lag_minutes;
    let readable = |tick: u32| !scenario.metrics_down(tick);
    let seen = Visibility {
        lag,
        horizon: scenario.minutes.max(split + lag),
        readable: &readable,
    };
    let mut detection = 0.0;
    let mut first_step_detection = 0.0;
    let mut detect_ticks = Vec::new();
    let mut anytime_detect_ticks = Vec::new();
    for run in 0..runs {
        let mut rng = Rng::derive(seed, &[name, ALTERNATIVE_STREAM, run as u64]);
        let coin = rng.uniform();
        let path = oracle.path(scenario, scenario, rng);
        detection += reject_weight(path[split as usize - 1], at_end.0, at_end.1);
        let (c1, g1) = critical[first_step - 1];
        first_step_detection += reject_weight(path[first_step - 1], c1, g1);
        detect_ticks.push(first_crossing(&path, &critical, coin, &seen));
        anytime_detect_ticks.push(first_crossing(&path, &anytime, coin, &seen));
    }
    let detected = |ticks: &[Option<u32>]| ticks.iter().flatten().count() as f64;
    Some(OracleReport {
        runs,
        calibration_runs,
        critical: at_end.0,
        tie_probability: at_end.1,
        size,
        detection: detection / runs.max(1) as f64,
        first_step_detection: first_step_detection / runs.max(1) as f64,
        detect_ticks,
        every_minute_size,
        anytime_size,
        anytime_detection: detected(&anytime_detect_ticks) / runs.max(1) as f64,
        anytime_detect_ticks,
        error_ratio,
        slow_ratio,
    })
}

/// Values within this distance are ties (the statistic is a sum of a few logs at low counts).
const TIE: f64 = 1e-9;

/// `(c, γ)` with P(L > c) + γ·P(L = c) = α on the sorted (descending) null values.
fn critical_value(sorted_desc: &[f64], alpha: f64) -> (f64, f64) {
    let n = sorted_desc.len();
    if n == 0 {
        return (f64::INFINITY, 0.0);
    }
    let budget = alpha * n as f64;
    let index = (budget.floor() as usize).min(n - 1);
    let c = sorted_desc[index];
    let above = sorted_desc.iter().filter(|v| **v > c + TIE).count() as f64;
    let at = sorted_desc
        .iter()
        .filter(|v| (**v - c).abs() <= TIE)
        .count() as f64;
    let gamma = ((budget - above) / at).clamp(0.0, 1.0);
    (c, gamma)
}

fn reject_weight(value: f64, critical: f64, gamma: f64) -> f64 {
    if value > critical + TIE {
        1.0
    } else if (value - critical).abs() <= TIE {
        gamma
    } else {
        0.0
    }
}

fn rejection_rate(values: &[f64], critical: f64, gamma: f64) -> f64 {
    values
        .iter()
        .map(|v| reject_weight(*v, critical, gamma))
        .sum::<f64>()
        / values.len().max(1) as f64
}

/// One calibrated test per exposure: `(c, γ)` at index t − 1 for the first t of `minutes`
/// split minutes, each at `alpha` on its own.
fn per_minute_critical(null_paths: &[Vec<f64>], minutes: usize, alpha: f64) -> Vec<(f64, f64)> {
    (0..minutes)
        .map(|t| {
            let mut values: Vec<f64> = null_paths.iter().map(|p| p[t]).collect();
            values.sort_by(|a, b| b.total_cmp(a));
            critical_value(&values, alpha)
        })
        .collect()
}

/// The anytime oracle's `(c, γ)`: the (1 − α) quantile of each null path's maximum, so a
/// null path crosses c at some minute with probability exactly α (randomized at ties). It is
/// at or above every minute's own critical value, with no larger γ where they are equal, so
/// on every path it crosses no earlier than the every-minute rule.
fn anytime_threshold(null_paths: &[Vec<f64>], alpha: f64) -> (f64, f64) {
    let mut maxima: Vec<f64> = null_paths
        .iter()
        .map(|p| p.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    maxima.sort_by(|a, b| b.total_cmp(a));
    critical_value(&maxima, alpha)
}

/// Chance over the coin that `path` crosses `critical[t]` at some minute t: 1 when it
/// exceeds one, else the largest tie probability among the minutes it ties.
fn every_minute_weight(path: &[f64], critical: &[(f64, f64)]) -> f64 {
    path.iter()
        .zip(critical)
        .map(|(v, (c, g))| reject_weight(*v, *c, *g))
        .fold(0.0, f64::max)
}

/// Share of `paths` that cross `thresholds` at some minute (over each path's coin).
fn size_over_the_split(paths: &[Vec<f64>], thresholds: &[(f64, f64)]) -> f64 {
    paths
        .iter()
        .map(|p| every_minute_weight(p, thresholds))
        .sum::<f64>()
        / paths.len().max(1) as f64
}

/// What the oracles can read, and when: as for every gate, at tick k the minutes before
/// k − `lag`, and only on ticks where Analytics Engine answers (`readable`).
struct Visibility<'a> {
    lag: u32,
    /// The last tick.
    horizon: u32,
    readable: &'a dyn Fn(u32) -> bool,
}

/// The first tick at which `path` is seen to cross `thresholds` with this run's `coin`. Each
/// minute is judged against its own threshold at the first readable tick that shows it, so
/// without outages at the tick it becomes visible, and after one at the first tick that
/// can read again (the statistic is known then, but no test could act on it earlier).
fn first_crossing(
    path: &[f64],
    thresholds: &[(f64, f64)],
    coin: f64,
    visibility: &Visibility,
) -> Option<u32> {
    let split = path.len() as u32;
    let mut judged = 0;
    for tick in 1..=visibility.horizon {
        if !(visibility.readable)(tick) {
            continue;
        }
        let seen = tick.saturating_sub(visibility.lag).min(split) as usize;
        let crossed = (judged..seen).any(|m| {
            let (c, g) = thresholds[m];
            crosses(path[m], c, g, coin)
        });
        judged = judged.max(seen);
        if crossed {
            return Some(tick);
        }
    }
    None
}

fn crosses(value: f64, critical: f64, gamma: f64, coin: f64) -> bool {
    value > critical + TIE || ((value - critical).abs() <= TIE && coin < gamma)
}

/// The oracle's statistic with the true ratios.
struct Statistic {
    error_ratio: f64,
    slow_ratio: f64,
}

impl Statistic {
    /// Simulates the fixed schedule's split in `world_scenario` (no gate acts) and scores
    /// it with the ratios that apply, minute by minute, in `alternative`: the statistic over
    /// the first t split minutes, for t = 1..=split.
    fn path(&self, world_scenario: &Scenario, alternative: &Scenario, rng: Rng) -> Vec<f64> {
        let steps = world_scenario.schedule.steps();
        let split = world_scenario.split_minutes();
        let mut world = World::new(world_scenario, rng);
        let mut start = 0;
        for step in &steps[..steps.len() - 1] {
            world.set_share(tick_time(start), step.percent.as_f64() / 100.0);
            start += step.dwell_minutes;
        }
        world.set_share(tick_time(split), 1.0);
        world.advance_to(tick_time(split));
        let mut cumulative = Vec::with_capacity(split as usize);
        let mut total = 0.0;
        for (minute, m) in world.minutes.iter().enumerate().take(split as usize) {
            let changed = alternative
                .candidate_changes_at_min
                .is_none_or(|at| minute as u32 >= at);
            let (n1, n0) = (m.stored_new.requests as f64, m.stored_old.requests as f64);
            if changed && n1 > 0.0 && n0 > 0.0 {
                let q = n1 / (n1 + n0);
                for (rho, e1, e0) in [
                    (self.error_ratio, m.stored_new.errors, m.stored_old.errors),
                    (self.slow_ratio, m.stored_new.slow, m.stored_old.slow),
                ] {
                    if rho != 1.0 {
                        let (a, b) = terms(rho, q);
                        total += e1 as f64 * a + e0 as f64 * b;
                    }
                }
            }
            cumulative.push(total);
        }
        cumulative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_value_is_randomized_at_ties_to_exact_size() {
        // 10 values, α = 0.15: one value above 2.0, three tied at 2.0 → γ = (1.5 − 1)/3.
        let values = [5.0, 2.0, 2.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let (c, gamma) = critical_value(&values, 0.15);
        assert_eq!(c, 2.0);
        assert!((gamma - 0.5 / 3.0).abs() < 1e-12);
        assert!((rejection_rate(&values, c, gamma) - 0.15).abs() < 1e-12);
    }

    /// Random walks of `minutes` steps of +1, 0 or −1 (ties abound, as at low counts).
    fn walks(runs: usize, minutes: usize) -> Vec<Vec<f64>> {
        let mut rng = Rng::from_seed(7);
        (0..runs)
            .map(|_| {
                let mut total = 0.0;
                (0..minutes)
                    .map(|_| {
                        total += (rng.uniform() * 3.0).floor() - 1.0;
                        total
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_threshold_over_the_split_is_crossed_by_exactly_alpha_of_null_paths() {
        let paths = walks(4000, 20);
        let threshold = anytime_threshold(&paths, 0.05);
        let size = size_over_the_split(&paths, &[threshold; 20]);
        assert!((size - 0.05).abs() < 1e-9, "size {size}");
    }

    #[test]
    fn looking_every_minute_at_alpha_each_rejects_far_more_than_alpha_over_the_split() {
        let paths = walks(4000, 20);
        let critical = per_minute_critical(&paths, 20, 0.05);
        let last: Vec<f64> = paths.iter().map(|p| p[19]).collect();
        let (c, g) = critical[19];
        assert!((rejection_rate(&last, c, g) - 0.05).abs() < 1e-9);
        let size = size_over_the_split(&paths, &critical);
        assert!(size > 0.10, "every-minute size {size}");
        // The one threshold sits at or above every minute's own.
        let (any, _) = anytime_threshold(&paths, 0.05);
        assert!(critical.iter().all(|(c, _)| *c <= any));
    }

    #[test]
    fn the_anytime_oracle_holds_alpha_over_the_split_and_detects_no_earlier_on_any_run() {
        let scenario = Scenario::from_json(
            r#"{"name": "t", "rps": 10, "minutes": 45,
            "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
            "candidate": {"error_rate": 0.005, "latency": {"median_ms": 80, "p95_ms": 200}}}"#,
        )
        .expect("valid scenario");
        let report = evaluate(&scenario, 400, 4000, 1).expect("a regression");
        assert!((report.size - 0.01).abs() < 1e-9);
        assert!((report.anytime_size - 0.01).abs() < 1e-9);
        assert!(report.every_minute_size > 2.0 * report.size);
        let pairs = || report.detect_ticks.iter().zip(&report.anytime_detect_ticks);
        for (every, anytime) in pairs() {
            if let Some(a) = anytime {
                assert!(every.is_some_and(|e| e <= *a), "{every:?} then {anytime:?}");
            }
        }
        // It pays for its size in time: a fair share of the runs are caught later or not.
        let later = pairs()
            .filter(|(e, a)| e.is_some() && (a.is_none() || a > e))
            .count();
        let caught = report.detect_ticks.iter().flatten().count();
        assert!(later * 5 > caught, "{later} of {caught} later");
        assert!(report.anytime_detection > 0.8 * report.detection);
    }

    #[test]
    fn the_oracles_read_nothing_while_analytics_engine_is_down() {
        // A path over its threshold from minute 2 (index 1) on, lag 2.
        let path = [0.0, 5.0, 5.0, 5.0, 5.0, 5.0];
        let thresholds = [(1.0, 0.0); 6];
        let up = |_: u32| true;
        let always = Visibility {
            lag: 2,
            horizon: 10,
            readable: &up,
        };
        assert_eq!(first_crossing(&path, &thresholds, 0.5, &always), Some(4));
        // Down for ticks 3–6: minute 2 is first read at tick 7.
        let outage = |tick: u32| !(3..7).contains(&tick);
        let down = Visibility {
            lag: 2,
            horizon: 10,
            readable: &outage,
        };
        assert_eq!(first_crossing(&path, &thresholds, 0.5, &down), Some(7));
        // A minute that crossed during the outage and fell back is still judged when read.
        let dipped = [0.0, 5.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(first_crossing(&dipped, &thresholds, 0.5, &down), Some(7));
        // Down to the end: never seen.
        let late = |tick: u32| tick < 3;
        let never = Visibility {
            lag: 2,
            horizon: 10,
            readable: &late,
        };
        assert_eq!(first_crossing(&path, &thresholds, 0.5, &never), None);
    }

    #[test]
    fn terms_match_the_worked_example() {
        // ρ = 20 at 10%: p = 0.69, a = ln 6.9 (docs/statistics.md worked check).
        let (a, _) = terms(20.0, 0.1);
        assert!((a - (20.0 * 0.1 / 2.9f64 / 0.1).ln()).abs() < 1e-12);
        assert!((a.exp() - 6.9).abs() < 0.01);
    }
}

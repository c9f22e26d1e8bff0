//! The oracles: likelihood-ratio tests for a regression whose size and onset they know,
//! scored from the onset to the end of the phase it falls in. In the **split** the
//! statistic is the likelihood ratio of "which version did each bad event come from" under
//! the true per-minute rate ratios (5xx and slow requests) against ratio 1; it is
//! conditional on each minute's totals. In the **bake** (the change comes after the split:
//! the new version serves everything, there is no old version to compare with) it is the
//! likelihood ratio that knows the baseline's true 5xx and slow rates p0: each minute, per
//! signal with true ratio ρ ≠ 1, x·ln ρ − (ρ − 1)·p0·n for the new version's x bad events
//! among its n requests. Either way the critical values are calibrated by simulating the
//! same scenario with a healthy candidate, which is how the split's statistic knows the
//! base rate. The **oracle** judges it once at the end of the phase against the (1 − α)
//! quantile, randomized at ties, so its size is α on the calibration runs. Its
//! time-to-detect is the first minute at which the oracle calibrated for that minute's
//! exposure (its own critical value) rejects: not a test a gate could run, since looking
//! every minute at α each adds up (`every_minute_size` says how much). The **anytime
//! oracle** is one it could: the same statistic against one threshold for the whole phase,
//! set so that a healthy candidate crosses it at some minute in α of the calibration runs
//! (a one-sided sequential probability ratio test, truncated at the end of the phase).
//! Both read minutes as a gate does: after the ingestion lag, and not while Analytics Engine
//! is down, and neither judges a minute before the onset. Neither is a proven limit: the
//! statistic is not the likelihood ratio of all the data.

use super::rng::Rng;
use super::scenario::Scenario;
use super::traffic::{tick_time, Minute, World};
use serde::Serialize;

/// Stream ids for the oracle's runs (apart from the gates' 1..=5).
const NULL_STREAM: u64 = 101;
const ALTERNATIVE_STREAM: u64 = 102;

/// Ratio used when the baseline's rate is 0 and the candidate's is not (a bad event from the
/// old version then has likelihood 0 under the alternative; keep the statistic finite).
const RATIO_CAP: f64 = 1e6;

/// The threshold of a minute the oracle does not judge (before the onset): never crossed.
const NEVER: (f64, f64) = (f64::INFINITY, 0.0);

/// The part of the schedule an oracle watches: the one in which the candidate changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The split (every step before the last): the new version against the old, minute by
    /// minute.
    Split,
    /// The bake (the last step, 100%, its dwell): the new version against the baseline's
    /// true rates.
    Bake,
}

impl Phase {
    /// The phase's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Split => "split",
            Phase::Bake => "bake",
        }
    }
}

/// The minutes an oracle scores: `[onset, end)`, all in one phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub phase: Phase,
    /// The first minute in which the candidate differs (0 when it does from the start).
    pub onset: u32,
    /// The end of the phase: the split's minutes, or the split's and the bake's.
    pub end: u32,
}

impl Watch {
    /// What the oracle of `scenario` watches, or `None` when there is nothing to find: a
    /// healthy candidate, a schedule without a split, or a change after the bake.
    pub fn of(scenario: &Scenario) -> Option<Watch> {
        let split = scenario.split_minutes();
        let schedule: u32 = scenario
            .schedule
            .steps()
            .iter()
            .map(|s| s.dwell_minutes)
            .sum();
        let onset = scenario.onset_minute();
        if scenario.is_healthy() || split == 0 {
            None
        } else if onset < split {
            Some(Watch {
                phase: Phase::Split,
                onset,
                end: split,
            })
        } else if onset < schedule {
            Some(Watch {
                phase: Phase::Bake,
                onset,
                end: schedule,
            })
        } else {
            None
        }
    }

    /// One threshold per minute to `end`: `NEVER` before the onset, then `judged`'s own.
    fn thresholds(&self, judged: impl Fn(usize) -> (f64, f64)) -> Vec<(f64, f64)> {
        (0..self.end as usize)
            .map(|m| {
                if m < self.onset as usize {
                    NEVER
                } else {
                    judged(m)
                }
            })
            .collect()
    }
}

/// What the oracle achieves in one regression scenario.
#[derive(Clone, Debug, Serialize)]
pub struct OracleReport {
    /// The minutes it scores and the phase they lie in.
    pub phase: Phase,
    /// See `phase`: the onset.
    pub onset: u32,
    /// See `phase`: the end of the phase (the split's end, or the bake's).
    pub watch_end: u32,
    /// Runs under the alternative.
    pub runs: usize,
    /// Runs under the null that set the critical value.
    pub calibration_runs: usize,
    /// The critical value of the log-likelihood ratio at the end of the phase.
    pub critical: f64,
    /// Probability of rejecting when the statistic equals `critical` exactly.
    pub tie_probability: f64,
    /// Size achieved on the calibration runs (α by construction).
    pub size: f64,
    /// Power at the end of the phase.
    pub detection: f64,
    /// Power at the end of the first step (`None` unless the change comes before it ends).
    pub first_step_detection: Option<f64>,
    /// Per run, the tick at which the oracle for the exposure seen by then first rejected
    /// (`None`: not by the end of the phase).
    pub detect_ticks: Vec<Option<u32>>,
    /// Chance that a healthy candidate is rejected at some minute by that every-minute rule
    /// (its size over the whole phase; α only if a single minute were judged).
    pub every_minute_size: f64,
    /// The anytime oracle's size over the whole phase on the calibration runs (α).
    pub anytime_size: f64,
    /// The anytime oracle's power by the end of the phase.
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

/// The bake's log-likelihood ratio of `x` bad events among `n` requests at rate ρ·p0
/// against p0 (Poisson): x·ln ρ − (ρ − 1)·p0·n.
fn bake_term(rho: f64, p0: f64, x: f64, n: f64) -> f64 {
    x * rho.ln() - (rho - 1.0) * p0 * n
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

/// The oracle for `scenario`, or `None` when there is nothing for it to find (see
/// `Watch::of`).
pub fn evaluate(
    scenario: &Scenario,
    runs: usize,
    calibration_runs: usize,
    seed: u64,
) -> Option<OracleReport> {
    let watch = Watch::of(scenario)?;
    let oracle = Statistic::new(scenario, watch);
    let name = super::rng::hash_name(&scenario.name);
    // Under the null nothing changes, but the alternative's ratios still weigh the events
    // from the minute the candidate would have changed.
    let null_paths = oracle.paths(
        &scenario.null_variant(),
        seed,
        name,
        NULL_STREAM,
        calibration_runs,
    );
    let alpha = scenario.policy.alpha;
    let end = watch.end as usize;
    let per_minute = per_minute_critical(&null_paths, end, alpha);
    let critical = watch.thresholds(|m| per_minute[m]);
    let at_end = critical[end - 1];
    let finals: Vec<f64> = null_paths.iter().map(|p| p[end - 1]).collect();
    let size = rejection_rate(&finals, at_end.0, at_end.1);
    let every_minute_size = size_over_the_phase(&null_paths, &critical);
    let one = anytime_threshold(&null_paths, watch.onset as usize, alpha);
    let anytime = watch.thresholds(|_| one);
    let anytime_size = size_over_the_phase(&null_paths, &anytime);
    let first_step = match watch.phase {
        Phase::Split => {
            let dwell = scenario.schedule.steps()[0].dwell_minutes;
            Some(dwell.clamp(1, watch.end)).filter(|step| watch.onset < *step)
        }
        Phase::Bake => None,
    };
    let lag = scenario.policy.ingestion_lag_minutes;
    let readable = |tick: u32| !scenario.metrics_down(tick);
    let seen = Visibility {
        lag,
        horizon: scenario.minutes.max(watch.end + lag),
        readable: &readable,
    };
    let mut detection = 0.0;
    let mut first_step_detection = 0.0;
    let mut detect_ticks = Vec::new();
    let mut anytime_detect_ticks = Vec::new();
    for run in 0..runs {
        let mut rng = Rng::derive(seed, &[name, ALTERNATIVE_STREAM, run as u64]);
        let coin = rng.uniform();
        let path = oracle.path(scenario, rng);
        detection += reject_weight(path[end - 1], at_end.0, at_end.1);
        if let Some(step) = first_step {
            let (c1, g1) = critical[step as usize - 1];
            first_step_detection += reject_weight(path[step as usize - 1], c1, g1);
        }
        detect_ticks.push(first_crossing(&path, &critical, coin, &seen));
        anytime_detect_ticks.push(first_crossing(&path, &anytime, coin, &seen));
    }
    let detected = |ticks: &[Option<u32>]| ticks.iter().flatten().count() as f64;
    Some(OracleReport {
        phase: watch.phase,
        onset: watch.onset,
        watch_end: watch.end,
        runs,
        calibration_runs,
        critical: at_end.0,
        tie_probability: at_end.1,
        size,
        detection: detection / runs.max(1) as f64,
        first_step_detection: first_step.map(|_| first_step_detection / runs.max(1) as f64),
        detect_ticks,
        every_minute_size,
        anytime_size,
        anytime_detection: detected(&anytime_detect_ticks) / runs.max(1) as f64,
        anytime_detect_ticks,
        error_ratio: oracle.error_ratio,
        slow_ratio: oracle.slow_ratio,
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
/// minutes, each at `alpha` on its own.
fn per_minute_critical(null_paths: &[Vec<f64>], minutes: usize, alpha: f64) -> Vec<(f64, f64)> {
    (0..minutes)
        .map(|t| {
            let mut values: Vec<f64> = null_paths.iter().map(|p| p[t]).collect();
            values.sort_by(|a, b| b.total_cmp(a));
            critical_value(&values, alpha)
        })
        .collect()
}

/// The anytime oracle's `(c, γ)`: the (1 − α) quantile of each null path's maximum over
/// its minutes from `from` on, so a null path crosses c at one of them with probability
/// exactly α (randomized at ties). It is at or above every such minute's own critical value,
/// with no larger γ where they are equal, so on every path it crosses no earlier than the
/// every-minute rule.
fn anytime_threshold(null_paths: &[Vec<f64>], from: usize, alpha: f64) -> (f64, f64) {
    let mut maxima: Vec<f64> = null_paths
        .iter()
        .map(|p| p[from..].iter().copied().fold(f64::NEG_INFINITY, f64::max))
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

/// Share of `paths` that cross `thresholds` at some minute of the phase (over each path's
/// coin).
fn size_over_the_phase(paths: &[Vec<f64>], thresholds: &[(f64, f64)]) -> f64 {
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
    let end = path.len() as u32;
    let mut judged = 0;
    for tick in 1..=visibility.horizon {
        if !(visibility.readable)(tick) {
            continue;
        }
        let seen = tick.saturating_sub(visibility.lag).min(end) as usize;
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

/// The oracle's statistic with the true ratios, over the minutes of its watch.
struct Statistic {
    error_ratio: f64,
    slow_ratio: f64,
    /// The baseline's true 5xx and slow rates (the bake's p0).
    base_error: f64,
    base_slow: f64,
    watch: Watch,
}

impl Statistic {
    fn new(scenario: &Scenario, watch: Watch) -> Statistic {
        let probe = World::new(scenario, Rng::from_seed(0));
        let (base_slow, cand_slow) = probe.slow_rates();
        Statistic {
            error_ratio: ratio(scenario.candidate.error_rate, scenario.baseline.error_rate),
            slow_ratio: ratio(cand_slow, base_slow),
            base_error: scenario.baseline.error_rate,
            base_slow,
            watch,
        }
    }

    /// `runs` paths of `world_scenario` on `stream` (see `path`).
    fn paths(
        &self,
        world_scenario: &Scenario,
        seed: u64,
        name: u64,
        stream: u64,
        runs: usize,
    ) -> Vec<Vec<f64>> {
        (0..runs)
            .map(|run| {
                let rng = Rng::derive(seed, &[name, stream, run as u64]);
                self.path(world_scenario, rng)
            })
            .collect()
    }

    /// Simulates the fixed schedule in `world_scenario` (no gate acts) to the end of the
    /// watch and scores it from the onset: the statistic over minutes `onset..=t` for each
    /// minute t before the watch's end (0 before the onset).
    fn path(&self, world_scenario: &Scenario, rng: Rng) -> Vec<f64> {
        let steps = world_scenario.schedule.steps();
        let split = world_scenario.split_minutes();
        let mut world = World::new(world_scenario, rng);
        let mut start = 0;
        for step in &steps[..steps.len() - 1] {
            world.set_share(tick_time(start), step.percent.as_f64() / 100.0);
            start += step.dwell_minutes;
        }
        world.set_share(tick_time(split), 1.0);
        world.advance_to(tick_time(self.watch.end));
        let mut cumulative = Vec::with_capacity(self.watch.end as usize);
        let mut total = 0.0;
        for (minute, m) in world
            .minutes
            .iter()
            .enumerate()
            .take(self.watch.end as usize)
        {
            if minute as u32 >= self.watch.onset {
                match self.watch.phase {
                    Phase::Split => self.add_split_minute(m, &mut total),
                    Phase::Bake => self.add_bake_minute(m, &mut total),
                }
            }
            cumulative.push(total);
        }
        cumulative
    }

    /// Which version each bad event of a split minute came from.
    fn add_split_minute(&self, m: &Minute, total: &mut f64) {
        let (n1, n0) = (m.stored_new.requests as f64, m.stored_old.requests as f64);
        if n1 > 0.0 && n0 > 0.0 {
            let q = n1 / (n1 + n0);
            for (rho, e1, e0) in [
                (self.error_ratio, m.stored_new.errors, m.stored_old.errors),
                (self.slow_ratio, m.stored_new.slow, m.stored_old.slow),
            ] {
                if rho != 1.0 {
                    let (a, b) = terms(rho, q);
                    *total += e1 as f64 * a + e0 as f64 * b;
                }
            }
        }
    }

    /// The new version's bad events in a bake minute against the baseline's true rates.
    fn add_bake_minute(&self, m: &Minute, total: &mut f64) {
        let n = m.stored_new.requests as f64;
        for (rho, x, p0) in [
            (self.error_ratio, m.stored_new.errors, self.base_error),
            (self.slow_ratio, m.stored_new.slow, self.base_slow),
        ] {
            if rho != 1.0 {
                *total += bake_term(rho, p0, x as f64, n);
            }
        }
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
        let threshold = anytime_threshold(&paths, 0, 0.05);
        let size = size_over_the_phase(&paths, &[threshold; 20]);
        assert!((size - 0.05).abs() < 1e-9, "size {size}");
    }

    #[test]
    fn looking_every_minute_at_alpha_each_rejects_far_more_than_alpha_over_the_split() {
        let paths = walks(4000, 20);
        let critical = per_minute_critical(&paths, 20, 0.05);
        let last: Vec<f64> = paths.iter().map(|p| p[19]).collect();
        let (c, g) = critical[19];
        assert!((rejection_rate(&last, c, g) - 0.05).abs() < 1e-9);
        let size = size_over_the_phase(&paths, &critical);
        assert!(size > 0.10, "every-minute size {size}");
        // The one threshold sits at or above every minute's own.
        let (any, _) = anytime_threshold(&paths, 0, 0.05);
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

    /// A 5xx regression from 0.1% at `rps`, changing at minute `onset`, default schedule
    /// (split 0–20, bake 20–30), 45 minutes.
    fn late(rps: u32, error_rate: f64, onset: u32) -> Scenario {
        Scenario::from_json(&format!(
            r#"{{"name": "late-{rps}-{error_rate}-{onset}", "rps": {rps}, "minutes": 45,
            "baseline": {{"error_rate": 0.001, "latency": {{"median_ms": 80, "p95_ms": 200}}}},
            "candidate": {{"error_rate": {error_rate}, "latency": {{"median_ms": 80, "p95_ms": 200}}}},
            "candidate_changes_at_min": {onset}}}"#
        ))
        .expect("valid scenario")
    }

    #[test]
    fn the_oracle_watches_the_phase_its_onset_falls_in() {
        let watch = |onset| Watch::of(&late(100, 0.005, onset));
        let split = |onset| Watch {
            phase: Phase::Split,
            onset,
            end: 20,
        };
        let bake = |onset| Watch {
            phase: Phase::Bake,
            onset,
            end: 30,
        };
        assert_eq!(watch(0), Some(split(0)));
        assert_eq!(watch(15), Some(split(15)));
        assert_eq!(watch(19), Some(split(19)));
        assert_eq!(watch(20), Some(bake(20)));
        assert_eq!(watch(29), Some(bake(29)));
        assert_eq!(watch(30), None);
        assert_eq!(Watch::of(&late(100, 0.001, 25)), None, "healthy");
    }

    #[test]
    fn bake_oracle_rejects_a_healthy_bake_at_alpha() {
        // Calibrated on one set of healthy runs, judged on another: the size over the bake is
        // α = 5% within noise (binomial sd of both sets together ≈ 0.5 points).
        let scenario = late(100, 0.005, 25);
        let watch = Watch::of(&scenario).expect("a regression in the bake");
        assert_eq!(watch.phase, Phase::Bake);
        let oracle = Statistic::new(&scenario, watch);
        let null = scenario.null_variant();
        let calibration = oracle.paths(&null, 1, 7, NULL_STREAM, 4000);
        let fresh = oracle.paths(&null, 1, 7, NULL_STREAM + 1000, 4000);
        let one = anytime_threshold(&calibration, 25, 0.05);
        let thresholds = watch.thresholds(|_| one);
        assert!((size_over_the_phase(&calibration, &thresholds) - 0.05).abs() < 1e-9);
        let size = size_over_the_phase(&fresh, &thresholds);
        assert!(
            (size - 0.05).abs() < 0.015,
            "size on fresh healthy runs {size}"
        );
        // Under the null the statistic drifts down: ln ρ·E[x] < (ρ − 1)·p0·n.
        let mean_final = fresh.iter().map(|p| p[29]).sum::<f64>() / fresh.len() as f64;
        assert!(mean_final < 0.0, "mean over the bake {mean_final}");
    }

    #[test]
    fn bake_oracle_catches_a_x20_bake_regression_within_minutes_of_its_onset() {
        let scenario = late(100, 0.02, 25);
        let report = evaluate(&scenario, 200, 2000, 1).expect("a regression in the bake");
        assert_eq!(
            (report.phase, report.onset, report.watch_end),
            (Phase::Bake, 25, 30)
        );
        assert!((report.anytime_size - 0.01).abs() < 1e-9);
        assert_eq!(report.first_step_detection, None);
        assert!(report.detection > 0.99, "at the end {}", report.detection);
        assert!(
            report.anytime_detection > 0.99,
            "{}",
            report.anytime_detection
        );
        let lag = scenario.policy.ingestion_lag_minutes;
        for tick in report.anytime_detect_ticks.iter().flatten() {
            // Minute 25 is first visible at tick 28; the bake's last minute at tick 32.
            assert!((25 + lag + 1..=30 + lag).contains(tick), "tick {tick}");
        }
        let mut ticks: Vec<u32> = report
            .anytime_detect_ticks
            .iter()
            .flatten()
            .copied()
            .collect();
        ticks.sort_unstable();
        assert!(
            ticks[ticks.len() / 2] <= 25 + lag + 2,
            "median tick {}",
            ticks[ticks.len() / 2]
        );
    }

    #[test]
    fn no_oracle_judges_a_minute_before_the_onset() {
        // ×2 at 10 rps from minute 15: most healthy minutes score 0, and a test of minute
        // 3's zeros at α would flag about 1% of runs before the change.
        let scenario = late(10, 0.002, 15);
        let report = evaluate(&scenario, 1000, 2000, 1).expect("a regression in the split");
        assert_eq!(
            (report.phase, report.onset, report.watch_end),
            (Phase::Split, 15, 20)
        );
        assert_eq!(
            report.first_step_detection, None,
            "the change comes after step 1"
        );
        let lag = scenario.policy.ingestion_lag_minutes;
        let ticks = report
            .detect_ticks
            .iter()
            .chain(&report.anytime_detect_ticks);
        for tick in ticks.flatten() {
            assert!(*tick > 15 + lag, "tick {tick}");
        }
        assert!(report.detect_ticks.iter().flatten().count() > 0);
    }

    #[test]
    fn terms_match_the_worked_example() {
        // ρ = 20 at 10%: p = 0.69, a = ln 6.9 (docs/statistics.md worked check).
        let (a, _) = terms(20.0, 0.1);
        assert!((a - (20.0 * 0.1 / 2.9f64 / 0.1).ln()).abs() < 1e-12);
        assert!((a.exp() - 6.9).abs() < 0.01);
    }
}

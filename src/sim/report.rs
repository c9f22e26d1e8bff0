//! Turning runs into decision quality: per scenario and gate, the rollback rate (false
//! rollbacks on healthy releases, detection on regressions), time-to-detect (from the first
//! split and from the regression's onset), harm served, time to promote, hold and pause
//! rates, promotions without evidence; beside the oracle. Rendered as a human table,
//! Markdown (docs/benchmark.md) or JSON.

use super::oracle::{OracleReport, Phase};
use super::run::{GateKind, RunOutcome, TickCost};
use super::scenario::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One gate's quality over a scenario's runs.
#[derive(Clone, Debug, Serialize)]
pub struct GateSummary {
    /// Gate name.
    pub gate: &'static str,
    /// Seeded runs.
    pub runs: usize,
    /// Runs that rolled back at any time (false rollbacks when the scenario is healthy).
    pub rollback_rate: f64,
    /// Runs that rolled back by the end of the scheduled split plus the ingestion lag (the
    /// oracle's exposure).
    pub split_detection: f64,
    /// Runs that rolled back while the first step's share was live.
    pub first_step_detection: f64,
    /// Median minutes from the first split to the rollback decision (rolled-back runs).
    pub ttd_median: Option<f64>,
    /// 90th percentile of the same.
    pub ttd_p90: Option<f64>,
    /// Mean bad requests (5xx + slow) served by the new version beyond the baseline's rates.
    pub excess_bad_mean: f64,
    /// Runs that completed (100% and baked).
    pub promote_rate: f64,
    /// Runs that completed by the schedule's total dwell (split + bake, no extra minute).
    pub on_time_rate: f64,
    /// Median minute of completion (completed runs).
    pub promote_median: Option<f64>,
    /// 90th percentile of the same.
    pub promote_p90: Option<f64>,
    /// Runs where a step's dwell ended without the evidence to promote.
    pub hold_rate: f64,
    /// Runs that paused.
    pub pause_rate: f64,
    /// Promotions decided, over all runs.
    pub promotions: u64,
    /// Promotions taken without evidence for the step, over all runs.
    pub unsupported_promotions: u64,
    /// Rollbacks by first signal.
    pub rollback_signals: BTreeMap<String, usize>,
    /// Runs that rolled back by the end of the scheduled bake plus the ingestion lag (the
    /// bake oracle's exposure).
    pub schedule_detection: f64,
    /// Median minutes from the onset (`candidate_changes_at_min`, else 0) to the rollback
    /// decision (rolled-back runs; negative for a rollback before the onset).
    pub onset_ttd_median: Option<f64>,
    /// 90th percentile of the same.
    pub onset_ttd_p90: Option<f64>,
    /// Runs that rolled back before any minute of the changed candidate could be seen (at
    /// or before the onset plus the ingestion lag): false rollbacks, even in a regression.
    pub blind_rollback_rate: f64,
}

/// The oracle's figures for a regression scenario: over the split, or over the bake when the
/// candidate changes after the split (`phase`); "the phase" below is that one.
#[derive(Clone, Debug, Serialize)]
pub struct OracleSummary {
    /// Power at the end of the phase (its exposure).
    pub detection: f64,
    /// Power at the end of the first step (`null` unless the change comes before its end).
    pub first_step_detection: Option<f64>,
    /// Median tick at which the every-minute version crossed (detected runs).
    pub ttd_median: Option<f64>,
    /// 90th percentile of the same.
    pub ttd_p90: Option<f64>,
    /// Chance that the every-minute version rejects a healthy candidate at some minute.
    pub every_minute_size: f64,
    /// The anytime oracle (one threshold, size α over the whole phase): that size on the
    /// calibration runs, and its power by the end of the phase.
    pub anytime_size: f64,
    /// See `anytime_size`.
    pub anytime_detection: f64,
    /// Its median tick of detection (detected runs).
    pub anytime_ttd_median: Option<f64>,
    /// 90th percentile of the same.
    pub anytime_ttd_p90: Option<f64>,
    /// Critical value, tie probability and achieved size of the calibrated test.
    pub critical: f64,
    /// See `critical`.
    pub tie_probability: f64,
    /// See `critical`.
    pub size: f64,
    /// True 5xx rate ratio.
    pub error_ratio: f64,
    /// True slow-request rate ratio.
    pub slow_ratio: f64,
    /// Runs under the alternative and under the null.
    pub runs: usize,
    /// See `runs`.
    pub calibration_runs: usize,
    /// The phase the oracle watches, from the onset to its end: `split` or `bake`.
    pub phase: Phase,
    /// The end of that phase (minutes since the deploy hook); detection is by then plus the
    /// ingestion lag.
    pub watch_end: u32,
    /// Median minutes from the onset to the every-minute version's detection.
    pub onset_ttd_median: Option<f64>,
    /// 90th percentile of the same.
    pub onset_ttd_p90: Option<f64>,
    /// The same for the anytime oracle.
    pub anytime_onset_ttd_median: Option<f64>,
    /// See `anytime_onset_ttd_median`.
    pub anytime_onset_ttd_p90: Option<f64>,
}

/// Everything measured for one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub description: Option<String>,
    /// A/A release (every rollback is false).
    pub healthy: bool,
    /// Requests per second at minute 0.
    pub rps: f64,
    /// Schedule's split minutes and total minutes (split + bake).
    pub split_minutes: u32,
    /// See `split_minutes`.
    pub schedule_minutes: u32,
    /// One row per gate.
    pub gates: Vec<GateSummary>,
    /// The oracle (regression scenarios).
    pub oracle: Option<OracleSummary>,
    /// The minute the candidate starts to differ (`candidate_changes_at_min`, else 0).
    pub onset_minute: u32,
}

/// The `q` quantile (nearest rank) of `values`.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// Summarizes one gate's runs in `scenario`.
pub fn summarize(scenario: &Scenario, gate: GateKind, runs: &[RunOutcome]) -> GateSummary {
    let n = runs.len().max(1) as f64;
    let lag = scenario.policy.ingestion_lag_minutes;
    let split_end = scenario.split_minutes() + lag;
    let schedule_end = total_minutes(scenario);
    let rate =
        |pred: &dyn Fn(&RunOutcome) -> bool| runs.iter().filter(|r| pred(r)).count() as f64 / n;
    let mut ttd: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.rolled_back_at.map(f64::from))
        .collect();
    let onset = scenario.onset_minute();
    let mut from_onset: Vec<f64> = ttd.iter().map(|t| t - f64::from(onset)).collect();
    let mut promote: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.completed_at.map(f64::from))
        .collect();
    let mut rollback_signals = BTreeMap::new();
    for signal in runs.iter().filter_map(|r| r.rollback_signal) {
        *rollback_signals.entry(signal.to_string()).or_insert(0) += 1;
    }
    GateSummary {
        gate: gate.name(),
        runs: runs.len(),
        rollback_rate: rate(&|r| r.rolled_back_at.is_some()),
        split_detection: rate(&|r| r.rolled_back_at.is_some_and(|t| t <= split_end)),
        first_step_detection: rate(&|r| r.rolled_back_in_first_step),
        ttd_median: quantile(&mut ttd, 0.5),
        ttd_p90: quantile(&mut ttd, 0.9),
        excess_bad_mean: runs.iter().map(|r| r.excess_bad).sum::<f64>() / n,
        promote_rate: rate(&|r| r.completed_at.is_some()),
        on_time_rate: rate(&|r| r.completed_at.is_some_and(|t| t <= schedule_end)),
        promote_median: quantile(&mut promote, 0.5),
        promote_p90: quantile(&mut promote, 0.9),
        hold_rate: rate(&|r| r.held),
        pause_rate: rate(&|r| r.paused_at.is_some()),
        promotions: runs.iter().map(|r| u64::from(r.promotions)).sum(),
        unsupported_promotions: runs
            .iter()
            .map(|r| u64::from(r.unsupported_promotions))
            .sum(),
        rollback_signals,
        schedule_detection: rate(&|r| r.rolled_back_at.is_some_and(|t| t <= schedule_end + lag)),
        onset_ttd_median: quantile(&mut from_onset, 0.5),
        onset_ttd_p90: quantile(&mut from_onset, 0.9),
        blind_rollback_rate: rate(&|r| r.rolled_back_at.is_some_and(|t| t <= onset + lag)),
    }
}

/// The oracle's summary.
pub fn summarize_oracle(report: &OracleReport) -> OracleSummary {
    let detected = |ticks: &[Option<u32>]| {
        ticks
            .iter()
            .flatten()
            .map(|t| f64::from(*t))
            .collect::<Vec<f64>>()
    };
    let mut ticks = detected(&report.detect_ticks);
    let mut anytime = detected(&report.anytime_detect_ticks);
    let onset = f64::from(report.onset);
    let since_onset = |ticks: &[f64]| ticks.iter().map(|t| t - onset).collect::<Vec<f64>>();
    let (mut ticks_since, mut anytime_since) = (since_onset(&ticks), since_onset(&anytime));
    OracleSummary {
        detection: report.detection,
        first_step_detection: report.first_step_detection,
        ttd_median: quantile(&mut ticks, 0.5),
        ttd_p90: quantile(&mut ticks, 0.9),
        every_minute_size: report.every_minute_size,
        anytime_size: report.anytime_size,
        anytime_detection: report.anytime_detection,
        anytime_ttd_median: quantile(&mut anytime, 0.5),
        anytime_ttd_p90: quantile(&mut anytime, 0.9),
        critical: report.critical,
        tie_probability: report.tie_probability,
        size: report.size,
        error_ratio: report.error_ratio,
        slow_ratio: report.slow_ratio,
        runs: report.runs,
        calibration_runs: report.calibration_runs,
        phase: report.phase,
        watch_end: report.watch_end,
        onset_ttd_median: quantile(&mut ticks_since, 0.5),
        onset_ttd_p90: quantile(&mut ticks_since, 0.9),
        anytime_onset_ttd_median: quantile(&mut anytime_since, 0.5),
        anytime_onset_ttd_p90: quantile(&mut anytime_since, 0.9),
    }
}

/// Total minutes of the schedule (split + bake).
pub fn total_minutes(scenario: &Scenario) -> u32 {
    scenario
        .schedule
        .steps()
        .iter()
        .map(|s| s.dwell_minutes)
        .sum()
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn minutes(x: Option<f64>) -> String {
    x.map_or("-".into(), |m| format!("{m:.0}"))
}

/// The human table: one block per scenario, one row per gate (and the oracle).
pub fn render_table(reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let kind = if r.healthy {
            "healthy (A/A)"
        } else {
            "regression"
        };
        let _ = writeln!(out, "\n== {} [{kind}, {} rps]", r.scenario, r.rps);
        if let Some(d) = &r.description {
            let _ = writeln!(out, "   {d}");
        }
        let rollback = if r.healthy { "false-rb" } else { "detect" };
        let _ = writeln!(
            out,
            "   {:<10} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>10} {:>6} {:>6} {:>6}",
            "gate",
            rollback,
            "by-split",
            "1st-step",
            "ttd-med",
            "ttd-p90",
            "excess",
            "promote",
            "prom-med",
            "hold",
            "pause",
            "no-ev"
        );
        for g in &r.gates {
            let _ = writeln!(
                out,
                "   {:<10} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9.1} {:>8} {:>10} {:>6} {:>6} {:>6}",
                g.gate,
                pct(g.rollback_rate),
                pct(g.split_detection),
                pct(g.first_step_detection),
                minutes(g.ttd_median),
                minutes(g.ttd_p90),
                g.excess_bad_mean,
                pct(g.promote_rate),
                minutes(g.promote_median),
                pct(g.hold_rate),
                pct(g.pause_rate),
                g.unsupported_promotions
            );
        }
        if let Some(o) = &r.oracle {
            let _ = writeln!(
                out,
                "   {:<10} {:>8} {:>9} {:>9} {:>8} {:>9}   (5xx ×{:.2}, slow ×{:.2}; critical {:.2}, size {}; looking every minute: size {})",
                "oracle",
                "",
                pct(o.detection),
                o.first_step_detection.map_or("-".into(), pct),
                minutes(o.ttd_median),
                minutes(o.ttd_p90),
                o.error_ratio,
                o.slow_ratio,
                o.critical,
                pct(o.size),
                pct(o.every_minute_size)
            );
            let watched = match o.phase {
                Phase::Split => String::new(),
                Phase::Bake => format!(
                    "; both oracles watch the bake, minutes {}–{}, `by-split` is by its end",
                    r.onset_minute,
                    o.watch_end - 1
                ),
            };
            let _ = writeln!(
                out,
                "   {:<10} {:>8} {:>9} {:>9} {:>8} {:>9}   (one threshold, size {} over the {}{watched})",
                "anytime",
                "",
                pct(o.anytime_detection),
                "",
                minutes(o.anytime_ttd_median),
                minutes(o.anytime_ttd_p90),
                pct(o.anytime_size),
                o.phase.name()
            );
        }
        if r.onset_minute > 0 && !r.healthy {
            let _ = writeln!(out, "   {}", from_onset_line(r));
        }
    }
    out
}

/// Minutes from the onset to the rollback (median / p90) for each gate and oracle, on one
/// line.
fn from_onset_line(r: &ScenarioReport) -> String {
    let pair =
        |median: Option<f64>, p90: Option<f64>| format!("{} / {}", minutes(median), minutes(p90));
    let mut parts: Vec<String> = r
        .gates
        .iter()
        .map(|g| format!("{} {}", g.gate, pair(g.onset_ttd_median, g.onset_ttd_p90)))
        .collect();
    if let Some(o) = &r.oracle {
        parts.push(format!(
            "oracle {}",
            pair(o.onset_ttd_median, o.onset_ttd_p90)
        ));
        parts.push(format!(
            "anytime {}",
            pair(o.anytime_onset_ttd_median, o.anytime_onset_ttd_p90)
        ));
    }
    format!(
        "from the onset (minute {}) to the rollback, median / p90: {}",
        r.onset_minute,
        parts.join(", ")
    )
}

fn gate<'a>(r: &'a ScenarioReport, name: &str) -> Option<&'a GateSummary> {
    r.gates.iter().find(|g| g.gate == name)
}

/// Markdown tables for docs/benchmark.md: healthy scenarios, then regressions (a section
/// only when it has rows).
pub fn render_markdown(reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let comparators = ["flagger-1", "flagger-5", "window", "fixed-z"];
    if reports.iter().any(|r| r.healthy) {
        render_healthy(&mut out, reports, &comparators);
    }
    if reports.iter().any(|r| !r.healthy) {
        render_regressions(&mut out, reports, &comparators);
    }
    if reports.iter().any(|r| !r.healthy && r.onset_minute > 0) {
        render_late_onsets(&mut out, reports);
    }
    out
}

/// The oracle's power by the end of the phase it watches, marked when that is the bake.
fn oracle_detection(o: &OracleSummary) -> String {
    match o.phase {
        Phase::Split => pct(o.detection),
        Phase::Bake => format!("{} (bake)", pct(o.detection)),
    }
}

fn render_healthy(out: &mut String, reports: &[ScenarioReport], comparators: &[&str]) {
    let _ = writeln!(
        out,
        "### Healthy releases (A/A): false rollbacks and promotion\n"
    );
    let _ = writeln!(
        out,
        "| scenario | ours | {} | ours promoted on time | ours promote median / p90 (min) | ours hold / pause | promotions without evidence: ours / flagger-5 / window / fixed-z |",
        comparators.join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---|{}---|---|---|---|",
        "---|".repeat(comparators.len())
    );
    for r in reports.iter().filter(|r| r.healthy) {
        let Some(ours) = gate(r, "ours") else {
            continue;
        };
        let others: Vec<String> = comparators
            .iter()
            .map(|c| gate(r, c).map_or("-".into(), |g| pct(g.rollback_rate)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | **{}** | {} | {} | {} / {} | {} / {} | {} of {} / {} |",
            r.scenario,
            pct(ours.rollback_rate),
            others.join(" | "),
            pct(ours.on_time_rate),
            minutes(ours.promote_median),
            minutes(ours.promote_p90),
            pct(ours.hold_rate),
            pct(ours.pause_rate),
            ours.unsupported_promotions,
            ours.promotions,
            ["flagger-5", "window", "fixed-z"]
                .map(|c| gate(r, c).map_or("-".into(), |g| {
                    format!("{} of {}", g.unsupported_promotions, g.promotions)
                }))
                .join(" / "),
        );
    }
}

fn render_regressions(out: &mut String, reports: &[ScenarioReport], comparators: &[&str]) {
    let _ = writeln!(
        out,
        "\n### Regressions: detection by the end of the split, time to detect\n"
    );
    let _ = writeln!(
        out,
        "| scenario | oracle | ours, schedule forced (÷ oracle) | ours | ours overall | {} | ours / oracle in 1st step | ttd median ours / oracle / anytime oracle (min) | ours ttd p90 | excess bad: ours / flagger-5 / window |",
        comparators.join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|{}---|---|---|---|",
        "---|".repeat(comparators.len())
    );
    for r in reports.iter().filter(|r| !r.healthy) {
        let Some(ours) = gate(r, "ours") else {
            continue;
        };
        let oracle = r.oracle.as_ref();
        let others: Vec<String> = comparators
            .iter()
            .map(|c| gate(r, c).map_or("-".into(), |g| pct(g.split_detection)))
            .collect();
        let forced = gate(r, "ours-sched").map_or("-".into(), |g| {
            let ratio = oracle
                .filter(|o| o.detection > 0.0 && o.phase == Phase::Split)
                .map_or(String::new(), |o| {
                    format!(" ({:.2})", g.split_detection / o.detection)
                });
            format!("{}{ratio}", pct(g.split_detection))
        });
        let excess =
            |name: &str| gate(r, name).map_or("-".into(), |g| format!("{:.0}", g.excess_bad_mean));
        let _ = writeln!(
            out,
            "| {} | {} | {} | **{}** | {} | {} | {} / {} | {} / {} / {} | {} | {} / {} / {} |",
            r.scenario,
            oracle.map_or("-".into(), oracle_detection),
            forced,
            pct(ours.split_detection),
            pct(ours.rollback_rate),
            others.join(" | "),
            pct(ours.first_step_detection),
            oracle
                .and_then(|o| o.first_step_detection)
                .map_or("-".into(), pct),
            minutes(ours.ttd_median),
            minutes(oracle.and_then(|o| o.ttd_median)),
            minutes(oracle.and_then(|o| o.anytime_ttd_median)),
            minutes(ours.ttd_p90),
            excess("ours"),
            excess("flagger-5"),
            excess("window"),
        );
    }
}

/// Regressions that start late: detection by the end of the phase the onset falls in (the
/// oracle's horizon) and minutes from the onset to the rollback, for ours, ours with the
/// schedule forced and both oracles.
fn render_late_onsets(out: &mut String, reports: &[ScenarioReport]) {
    let _ = writeln!(
        out,
        "\n### Regressions that start late: minutes from the onset to the rollback\n"
    );
    let _ = writeln!(
        out,
        "| scenario | onset (min) | phase | oracle / anytime oracle by its end | ours / ours-sched by then | ours overall | from onset, median / p90 (min): ours | ours-sched | oracle | anytime oracle | ours rolled back before it could see the change |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in reports.iter().filter(|r| !r.healthy && r.onset_minute > 0) {
        let Some(ours) = gate(r, "ours") else {
            continue;
        };
        let in_bake = r.onset_minute >= r.split_minutes;
        let by_phase_end = |g: &GateSummary| {
            pct(if in_bake {
                g.schedule_detection
            } else {
                g.split_detection
            })
        };
        let pair = |median: Option<f64>, p90: Option<f64>| {
            format!("{} / {}", minutes(median), minutes(p90))
        };
        let sched = gate(r, "ours-sched");
        let oracle = r.oracle.as_ref();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.onset_minute,
            if in_bake { "bake" } else { "split" },
            oracle.map_or("-".into(), |o| format!(
                "{} / {}",
                pct(o.detection),
                pct(o.anytime_detection)
            )),
            by_phase_end(ours),
            sched.map_or("-".into(), by_phase_end),
            pct(ours.rollback_rate),
            pair(ours.onset_ttd_median, ours.onset_ttd_p90),
            sched.map_or("-".into(), |g| pair(g.onset_ttd_median, g.onset_ttd_p90)),
            oracle.map_or("-".into(), |o| pair(o.onset_ttd_median, o.onset_ttd_p90)),
            oracle.map_or("-".into(), |o| pair(
                o.anytime_onset_ttd_median,
                o.anytime_onset_ttd_p90
            )),
            pct(ours.blind_rollback_rate),
        );
    }
}

/// What our gate's ticks cost in one scenario and phase (`rollout-sim --tick-cost`), over
/// every tick of every timed run that ended in that phase: the Durable Object's work each
/// tick besides its I/O (see `TickCost`).
#[derive(Clone, Debug, Serialize)]
pub struct TickCostSummary {
    pub scenario: String,
    /// The phase after the ticks summarized ("all": every tick).
    pub phase: &'static str,
    pub runs: usize,
    /// Ticks timed.
    pub ticks: usize,
    pub median_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// The slowest tick's minute.
    pub max_tick: u32,
    /// The largest encoded state, bytes.
    pub max_state_bytes: usize,
}

/// Summarizes the timed ticks of `runs` runs of `scenario`: all of them, then each phase
/// they ended in, in order of first appearance.
pub fn summarize_tick_costs(
    scenario: &str,
    runs: usize,
    costs: &[TickCost],
) -> Vec<TickCostSummary> {
    let mut phases: Vec<&'static str> = Vec::new();
    for c in costs {
        if !phases.contains(&c.phase) {
            phases.push(c.phase);
        }
    }
    let summary = |phase: &'static str, ticks: Vec<&TickCost>| {
        let mut micros: Vec<f64> = ticks.iter().map(|c| c.nanos as f64 / 1e3).collect();
        let slowest = ticks.iter().max_by_key(|c| c.nanos);
        TickCostSummary {
            scenario: scenario.to_string(),
            phase,
            runs,
            ticks: ticks.len(),
            median_us: quantile(&mut micros, 0.5).unwrap_or(0.0),
            p99_us: quantile(&mut micros, 0.99).unwrap_or(0.0),
            max_us: slowest.map_or(0.0, |c| c.nanos as f64 / 1e3),
            max_tick: slowest.map_or(0, |c| c.tick),
            max_state_bytes: ticks.iter().map(|c| c.state_bytes).max().unwrap_or(0),
        }
    };
    std::iter::once(summary("all", costs.iter().collect()))
        .chain(phases.into_iter().map(|phase| {
            let ticks = costs.iter().filter(|c| c.phase == phase).collect();
            summary(phase, ticks)
        }))
        .collect()
}

/// A Markdown table of tick costs, one row per scenario and phase.
pub fn render_tick_costs(summaries: &[TickCostSummary]) -> String {
    let mut out = String::from(
        "| scenario | after the tick | runs | ticks | median µs | p99 µs | max µs (minute) | largest state |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} ({}) | {:.1} KB |",
            s.scenario,
            s.phase,
            s.runs,
            s.ticks,
            s.median_us,
            s.p99_us,
            s.max_us,
            s.max_tick,
            s.max_state_bytes as f64 / 1e3,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_to_the_rollback_count_from_the_onset_and_blind_rollbacks_are_flagged() {
        let scenario = Scenario::from_json(
            r#"{"name": "t", "rps": 100, "minutes": 45,
            "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
            "candidate": {"error_rate": 0.005, "latency": {"median_ms": 80, "p95_ms": 200}},
            "candidate_changes_at_min": 25}"#,
        )
        .expect("valid scenario");
        let rolled_back = |at| RunOutcome {
            rolled_back_at: Some(at),
            ..RunOutcome::default()
        };
        // Minute 27 is the last tick (onset + 2-minute lag) that sees no changed minute.
        let runs = [
            rolled_back(27),
            rolled_back(29),
            rolled_back(30),
            rolled_back(33),
            RunOutcome::default(),
        ];
        let summary = summarize(&scenario, GateKind::Ours, &runs);
        assert_eq!(summary.ttd_median, Some(29.0));
        assert_eq!(summary.onset_ttd_median, Some(4.0));
        assert_eq!(summary.onset_ttd_p90, Some(8.0));
        assert!((summary.blind_rollback_rate - 0.2).abs() < 1e-12);
        // By the bake's end (minute 30) plus the lag: all but the rollback at 33.
        assert!((summary.schedule_detection - 0.6).abs() < 1e-12);
        assert_eq!(summary.split_detection, 0.0);
    }
}

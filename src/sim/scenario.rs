//! Scenario files: the JSON a simulation reads (traffic, each version's behaviour, noise,
//! sampling, faults, schedule and policy overrides), its validation into a `Scenario`, and the
//! policy merge (defaults ← scenario ← command line). Unknown fields are an error.
//! Format reference: docs/scenarios.md.

use super::latency::LatencyModel;
use crate::policy::Policy;
use crate::schedule::{Schedule, ScheduleError, ScheduleRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// A scenario file as written (before validation).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Unique name, used in reports and to derive the scenario's seeds.
    pub name: String,
    /// One line for humans (optional).
    #[serde(default)]
    pub description: Option<String>,
    /// Total requests per second: a number, or a profile `[{"from_min": 0, "rps": 10}, ...]`.
    pub rps: Value,
    /// Simulated minutes from the deploy hook (the run's horizon).
    pub minutes: u32,
    /// The stable version's behaviour.
    pub baseline: VersionSpec,
    /// The new version's behaviour (from `candidate_changes_at_min` on, when given).
    pub candidate: VersionSpec,
    /// The new version behaves like the baseline until this minute.
    #[serde(default)]
    pub candidate_changes_at_min: Option<u32>,
    /// Negative-binomial noise on per-minute counts.
    #[serde(default)]
    pub overdispersion: Option<Overdispersion>,
    /// Analytics Engine `_sample_interval` (1 = unsampled).
    #[serde(default)]
    pub sample_interval: Option<f64>,
    /// The stable version's 5xx and slow rates before the deploy hook (the window the gate
    /// reads as its baseline history), as a multiple of its rates during the run (default 1:
    /// nothing drifted). Traffic there is the first `rps` value.
    #[serde(default)]
    pub history_drift: Option<f64>,
    /// Metric and probe failures over minute ranges.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Schedule override (the deploy hook's shape); default 10% → 50% → 100%.
    #[serde(default)]
    pub schedule: Option<ScheduleRequest>,
    /// Partial policy override (any `Policy` fields).
    #[serde(default)]
    pub policy: Option<Map<String, Value>>,
    /// Queue metrics to report each tick (only read when the policy watches a queue).
    #[serde(default)]
    pub queue: Option<QueueSpec>,
}

/// One version's behaviour.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// Probability that a request answers 5xx.
    pub error_rate: f64,
    /// Latency distribution.
    pub latency: LatencySpec,
}

/// A lognormal latency body given by its median and p95, with an optional tail component.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// Median latency, ms.
    pub median_ms: f64,
    /// 95th percentile, ms (> median).
    pub p95_ms: f64,
    /// A fraction of requests from a second, slower lognormal.
    #[serde(default)]
    pub tail: Option<TailSpec>,
}

/// The tail component of a latency model.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TailSpec {
    /// Share of requests in the tail, in [0, 1).
    pub fraction: f64,
    /// The tail's median, ms.
    pub median_ms: f64,
    /// The tail's p95, ms.
    pub p95_ms: f64,
}

/// Per-minute gamma rate multipliers (mean 1); each value is the multiplier's variance
/// (1/shape), so a Poisson count becomes negative binomial with variance μ + v·μ².
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overdispersion {
    /// On each version's bad-event rates (5xx, slow) independently: bursts that hit one
    /// version only (e.g. one client pinned to a version).
    pub per_version: f64,
    /// On both versions' bad-event rates alike: bursts that hit everyone (one bad colo).
    pub shared: f64,
    /// On the total request rate (traffic bursts).
    pub requests: f64,
    /// Minutes each shared burst lasts (default 1): the shared multipliers are drawn afresh
    /// at every multiple of it (the window before the deploy hook included) and held in
    /// between, so a burst can outlast a look or the bake.
    pub shared_minutes: u32,
}

impl Default for Overdispersion {
    fn default() -> Self {
        Overdispersion {
            per_version: 0.0,
            shared: 0.0,
            requests: 0.0,
            shared_minutes: 1,
        }
    }
}

/// A fault over the ticks at minutes `from_min ≤ m < to_min`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The Analytics Engine counts query fails.
    MetricsDown { from_min: u32, to_min: u32 },
    /// Ingestion runs `extra_lag_min` minutes later than the gate assumes: the newest minutes
    /// it reads hold only `arrived_fraction` of their events.
    LateData {
        from_min: u32,
        to_min: u32,
        extra_lag_min: u32,
        arrived_fraction: f64,
    },
    /// The new version's `/healthz` answers 503.
    HealthzDown { from_min: u32, to_min: u32 },
    /// Reading the live deployment fails.
    DeploymentReadDown { from_min: u32, to_min: u32 },
}

impl Fault {
    /// The tick-minute range the fault covers.
    pub fn range(&self) -> std::ops::Range<u32> {
        match *self {
            Fault::MetricsDown { from_min, to_min }
            | Fault::LateData {
                from_min, to_min, ..
            }
            | Fault::HealthzDown { from_min, to_min }
            | Fault::DeploymentReadDown { from_min, to_min } => from_min..to_min,
        }
    }
}

/// Queue metrics reported each tick (Poisson noise around these levels).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Mean backlog (messages).
    pub depth: f64,
    /// Mean retries per minute.
    pub retries_per_minute: f64,
}

/// One version's validated behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionModel {
    /// Probability of a 5xx.
    pub error_rate: f64,
    /// Latency distribution.
    pub latency: LatencyModel,
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (reports, seeds).
    pub name: String,
    /// One line for humans.
    pub description: Option<String>,
    /// Horizon in minutes.
    pub minutes: u32,
    /// `(from_min, rps)` segments, sorted, the first from minute 0.
    pub rps: Vec<(u32, f64)>,
    /// The stable version.
    pub baseline: VersionModel,
    /// The new version (after `candidate_changes_at_min`).
    pub candidate: VersionModel,
    /// Before this minute the new version behaves like the baseline.
    pub candidate_changes_at_min: Option<u32>,
    /// Count noise.
    pub overdispersion: Overdispersion,
    /// Analytics Engine sample interval (≥ 1).
    pub sample_interval: f64,
    /// The stable version's rates before the deploy hook, as a multiple of its own (> 0).
    pub history_drift: f64,
    /// Faults.
    pub faults: Vec<Fault>,
    /// The rollout schedule.
    pub schedule: Schedule,
    /// The policy after merging overrides.
    pub policy: Policy,
    /// The scenario's own policy overrides (kept to re-merge with command-line overrides).
    pub policy_overrides: Map<String, Value>,
    /// Queue metrics, if any.
    pub queue: Option<QueueSpec>,
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not JSON, a missing field, a wrong type or an unknown field.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A value out of range.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// The schedule override is not a valid schedule.
    #[error("schedule: {0}")]
    Schedule(#[from] ScheduleError),
    /// The merged policy is not valid.
    #[error("policy: {0}")]
    Policy(String),
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// Longest horizon a scenario may ask for (a day of minutes).
pub const MAX_MINUTES: u32 = 24 * 60;

impl Scenario {
    /// Parses and validates scenario JSON.
    ///
    /// # Errors
    /// Malformed JSON, unknown fields, out-of-range values, an invalid schedule or policy.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = serde_json::from_str(text)?;
        Scenario::from_file(file)
    }

    /// Reads and validates one scenario file.
    ///
    /// # Errors
    /// As `from_json`, or the file cannot be read; messages name the file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_json(&text)
    }

    /// Validates a parsed file.
    ///
    /// # Errors
    /// The first out-of-range value, an invalid schedule or policy.
    pub fn from_file(file: ScenarioFile) -> Result<Scenario, ScenarioError> {
        if file.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if !(1..=MAX_MINUTES).contains(&file.minutes) {
            return Err(invalid("minutes", format!("must be in 1..={MAX_MINUTES}")));
        }
        let rps = parse_rps(&file.rps)?;
        let baseline = version_model("baseline", &file.baseline)?;
        let candidate = version_model("candidate", &file.candidate)?;
        let overdispersion = file.overdispersion.unwrap_or_default();
        for (field, v) in [
            ("overdispersion.per_version", overdispersion.per_version),
            ("overdispersion.shared", overdispersion.shared),
            ("overdispersion.requests", overdispersion.requests),
        ] {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                return Err(invalid(field, "must be in [0, 100]"));
            }
        }
        if !(1..=MAX_MINUTES).contains(&overdispersion.shared_minutes) {
            return Err(invalid(
                "overdispersion.shared_minutes",
                format!("must be in 1..={MAX_MINUTES}"),
            ));
        }
        let sample_interval = file.sample_interval.unwrap_or(1.0);
        if !(sample_interval.is_finite() && sample_interval >= 1.0) {
            return Err(invalid("sample_interval", "must be ≥ 1"));
        }
        let history_drift = file.history_drift.unwrap_or(1.0);
        if !(history_drift.is_finite() && history_drift > 0.0) {
            return Err(invalid("history_drift", "must be a positive number"));
        }
        for (i, fault) in file.faults.iter().enumerate() {
            let range = fault.range();
            if range.start >= range.end {
                return Err(invalid(format!("faults[{i}]"), "from_min must be < to_min"));
            }
            if let Fault::LateData {
                arrived_fraction, ..
            } = fault
            {
                if !(0.0..=1.0).contains(arrived_fraction) {
                    return Err(invalid(
                        format!("faults[{i}].arrived_fraction"),
                        "must be in [0, 1]",
                    ));
                }
            }
        }
        if let Some(q) = &file.queue {
            if !(q.depth >= 0.0 && q.retries_per_minute >= 0.0) {
                return Err(invalid("queue", "levels must be ≥ 0"));
            }
        }
        let schedule = match &file.schedule {
            Some(request) => Schedule::from_request(request)?,
            None => Schedule::default(),
        };
        let policy_overrides = file.policy.unwrap_or_default();
        let policy = merge_policy(&[&policy_overrides])?;
        Ok(Scenario {
            name: file.name,
            description: file.description,
            minutes: file.minutes,
            rps,
            baseline,
            candidate,
            candidate_changes_at_min: file.candidate_changes_at_min,
            overdispersion,
            sample_interval,
            history_drift,
            faults: file.faults,
            schedule,
            policy,
            policy_overrides,
            queue: file.queue,
        })
    }

    /// Re-merges the policy as defaults ← this scenario's overrides ← `extra` (the command
    /// line's), so a sweep can change one field across a grid.
    ///
    /// # Errors
    /// The merged policy does not deserialize or validate.
    pub fn apply_policy_overrides(
        &mut self,
        extra: &Map<String, Value>,
    ) -> Result<(), ScenarioError> {
        self.policy = merge_policy(&[&self.policy_overrides, extra])?;
        Ok(())
    }

    /// Total requests per second during `minute`.
    pub fn rps_at(&self, minute: u32) -> f64 {
        self.rps
            .iter()
            .rev()
            .find(|(from, _)| *from <= minute)
            .map_or(0.0, |(_, rps)| *rps)
    }

    /// How the new version behaves during `minute`.
    pub fn candidate_at(&self, minute: u32) -> &VersionModel {
        match self.candidate_changes_at_min {
            Some(at) if minute < at => &self.baseline,
            _ => &self.candidate,
        }
    }

    /// The first minute in which the new version behaves like `candidate`
    /// (`candidate_changes_at_min`, or 0 when it does from the start).
    pub fn onset_minute(&self) -> u32 {
        self.candidate_changes_at_min.unwrap_or(0)
    }

    /// An A/A release: the new version never differs from the baseline.
    pub fn is_healthy(&self) -> bool {
        self.candidate == self.baseline
    }

    /// The same scenario with a healthy candidate (the oracle's null).
    pub fn null_variant(&self) -> Scenario {
        let mut null = self.clone();
        null.candidate = self.baseline.clone();
        null.candidate_changes_at_min = None;
        null
    }

    /// Whether a fault of the kind `pick` selects covers the tick at `minute`.
    pub fn fault_at<'a, T>(
        &'a self,
        minute: u32,
        pick: impl Fn(&'a Fault) -> Option<T>,
    ) -> Option<T> {
        self.faults
            .iter()
            .filter(|f| f.range().contains(&minute))
            .find_map(pick)
    }

    /// Whether the metrics source (Analytics Engine) is down at tick `tick`.
    pub fn metrics_down(&self, tick: u32) -> bool {
        self.fault_at(tick, |f| {
            matches!(f, Fault::MetricsDown { .. }).then_some(())
        })
        .is_some()
    }

    /// Minutes the new version spends in the split (all steps before the last), per schedule.
    pub fn split_minutes(&self) -> u32 {
        let steps = self.schedule.steps();
        steps[..steps.len().saturating_sub(1)]
            .iter()
            .map(|s| s.dwell_minutes)
            .sum()
    }
}

fn parse_rps(value: &Value) -> Result<Vec<(u32, f64)>, ScenarioError> {
    let check = |rps: f64, field: &str| {
        if rps.is_finite() && rps >= 0.0 {
            Ok(rps)
        } else {
            Err(invalid(field, "rps must be a finite number ≥ 0"))
        }
    };
    if let Some(rps) = value.as_f64() {
        return Ok(vec![(0, check(rps, "rps")?)]);
    }
    let Some(items) = value.as_array() else {
        return Err(invalid(
            "rps",
            "must be a number or a list of {\"from_min\", \"rps\"}",
        ));
    };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Segment {
        from_min: u32,
        rps: f64,
    }
    let mut segments = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("rps[{i}]");
        let s: Segment =
            serde_json::from_value(item.clone()).map_err(|e| invalid(&field, e.to_string()))?;
        if segments.last().is_some_and(|(from, _)| *from >= s.from_min) {
            return Err(invalid(&field, "from_min must increase"));
        }
        segments.push((s.from_min, check(s.rps, &field)?));
    }
    if segments.first().map(|(from, _)| *from) != Some(0) {
        return Err(invalid("rps", "the profile must start at from_min 0"));
    }
    Ok(segments)
}

fn version_model(field: &str, spec: &VersionSpec) -> Result<VersionModel, ScenarioError> {
    if !(0.0..=1.0).contains(&spec.error_rate) {
        return Err(invalid(format!("{field}.error_rate"), "must be in [0, 1]"));
    }
    let l = &spec.latency;
    check_latency(&format!("{field}.latency"), l.median_ms, l.p95_ms)?;
    let mut latency = LatencyModel::lognormal(l.median_ms, l.p95_ms);
    if let Some(tail) = &l.tail {
        let tail_field = format!("{field}.latency.tail");
        if !(0.0..1.0).contains(&tail.fraction) {
            return Err(invalid(
                format!("{tail_field}.fraction"),
                "must be in [0, 1)",
            ));
        }
        check_latency(&tail_field, tail.median_ms, tail.p95_ms)?;
        latency = latency.with_tail(tail.fraction, tail.median_ms, tail.p95_ms);
    }
    Ok(VersionModel {
        error_rate: spec.error_rate,
        latency,
    })
}

fn check_latency(field: &str, median_ms: f64, p95_ms: f64) -> Result<(), ScenarioError> {
    if !(median_ms.is_finite() && median_ms > 0.0 && p95_ms.is_finite() && p95_ms > median_ms) {
        return Err(invalid(field, "needs 0 < median_ms < p95_ms"));
    }
    Ok(())
}

/// `Policy::default()` with each override object laid over it in turn (nested objects such
/// as `alpha_split` merge field by field), then validated.
///
/// # Errors
/// An override that does not fit `Policy` (unknown field, wrong type) or fails validation.
pub fn merge_policy(overrides: &[&Map<String, Value>]) -> Result<Policy, ScenarioError> {
    let mut merged = serde_json::to_value(Policy::default())
        .map_err(|e| ScenarioError::Policy(e.to_string()))?;
    for layer in overrides {
        overlay(&mut merged, layer);
    }
    let policy: Policy =
        serde_json::from_value(merged).map_err(|e| ScenarioError::Policy(e.to_string()))?;
    policy
        .validate()
        .map_err(|e| ScenarioError::Policy(e.to_string()))?;
    Ok(policy)
}

fn overlay(target: &mut Value, layer: &Map<String, Value>) {
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in layer {
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(inner)) => overlay(existing, inner),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Every `*.json` file directly in `dir`, sorted by file name.
///
/// # Errors
/// The directory cannot be read.
pub fn grid_files(dir: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let read = |source| ScenarioError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;

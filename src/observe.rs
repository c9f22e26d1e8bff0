//! What the gate looks at: the observation plan the core asks the shell to carry out, and
//! the facts (or failures) the shell brings back in a tick or a pre-flight report.
//! Pure data; the shell fills it from the Cloudflare API, Analytics Engine and `/healthz`.

use crate::json::tagged::internally_tagged;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A source's answer: the data, or why it could not be had (a failed query is an input,
/// not an error; the policy decides what it means).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "value")]
pub enum Fetched<T> {
    /// The source answered.
    Ok(T),
    /// The source failed: timeout, HTTP error, unparsable answer.
    Failed { why: String },
}

impl<T> Fetched<T> {
    /// The data, when the source answered.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Fetched::Ok(value) => Some(value),
            Fetched::Failed { .. } => None,
        }
    }
}

impl<T> From<Result<T, String>> for Fetched<T> {
    /// A shell call's result: the error text becomes `why`.
    fn from(result: Result<T, String>) -> Self {
        match result {
            Ok(value) => Fetched::Ok(value),
            Err(why) => Fetched::Failed { why },
        }
    }
}

/// One version's share of a deployment, as the deployments API spells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionShare {
    /// Worker version id (UUID).
    pub version_id: String,
    /// Share of traffic in percent, `0.01..=100`.
    pub percent: f64,
}

/// The script's active deployment as read from `GET .../deployments` (first entry).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveDeployment {
    /// Deployment id, when known.
    pub deployment_id: Option<String>,
    /// The 1–2 versions and their shares.
    pub versions: Vec<VersionShare>,
    /// `author_email`, to explain drift.
    pub author_email: Option<String>,
    /// The `workers/message` annotation.
    pub message: Option<String>,
    /// The `workers/triggered_by` annotation (`upload`, `rollback`, ...).
    pub triggered_by: Option<String>,
    /// `created_on`, as the API gave it.
    pub created_on: Option<String>,
    /// Cohorts (named user segments with their own split). The gate never writes any, so a
    /// live deployment that has them is someone else's (drift), and any write would erase
    /// them (cloudflare-docs `cohort-based-deployments.mdx`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cohorts: Vec<CohortSplit>,
}

/// One cohort of a live deployment: its name and its split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CohortSplit {
    /// The cohort's name.
    pub name: String,
    /// Its 1–2 versions and their shares.
    pub versions: Vec<VersionShare>,
}

internally_tagged! {
    tag = "result";
    /// Result of probing the new version's `/healthz` with the version-override header.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Probe {
        /// 200 from the new version.
        Ok,
        /// A non-200 status or a transport error/timeout from the new version.
        Failed {
            status: Option<u16>,
            error: Option<String>,
        },
        /// Some other version answered (the override did not apply): says nothing about ours.
        WrongVersion { answered_by: String },
    }
}

/// Sample-weighted counts (`SUM(_sample_interval)`) for one version in one minute, with the
/// stored rows behind them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionCounts {
    /// Requests served.
    pub requests: f64,
    /// Requests answered with a 5xx.
    pub errors: f64,
    /// Requests slower than the latency ceiling (`CountsQuery::slow_above_ms`).
    pub slow: f64,
    /// Requests slower than `CountsQuery::very_slow_above_ms` (a subset of `slow`).
    pub very_slow: f64,
    /// Requests slower than `CountsQuery::approach_above_ms` (a superset of `slow`).
    pub approaching: f64,
    /// The Analytics Engine rows behind these counts: the evidence actually observed.
    pub stored: StoredRows,
}

/// Rows Analytics Engine stored for one version (`count()`, not `SUM(_sample_interval)`):
/// each stands for `_sample_interval` requests, but is one observation. Under sampling the
/// stored rows are a random sample of the requests, so the share of bad rows estimates the
/// share of bad requests with the precision of `rows` draws, however many requests they
/// stand for. The absolute ceilings test these (`Policy::judge_error_ceiling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredRows {
    /// Rows stored.
    pub rows: f64,
    /// Of those, rows of a 5xx answer.
    pub errors: f64,
    /// Of those, rows slower than the latency ceiling (`CountsQuery::slow_above_ms`).
    pub slow: f64,
}

impl StoredRows {
    /// Unsampled counts: one row per request.
    pub fn unsampled(requests: f64, errors: f64, slow: f64) -> Self {
        StoredRows {
            rows: requests,
            errors,
            slow,
        }
    }
}

/// Both versions' counts for the minute starting at `minute`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// Start of the minute (a whole minute).
    pub minute: Timestamp,
    /// The new version.
    pub new: VersionCounts,
    /// The stable (old) version.
    pub old: VersionCounts,
    /// Mean Analytics Engine `_sample_interval` of the minute's rows (1 = unsampled). The
    /// tests divide counts by it: k sampled rows carry about k events' worth of evidence.
    pub sample_interval: f64,
}

/// One version's latency over the trailing latency window, for the status page's p95 chart
/// (the p95 ceiling tests the stored rows over the ceiling instead: `StoredRows::slow`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionLatency {
    /// Requests in the window (sample-weighted).
    pub requests: f64,
    /// `_sample_interval`-weighted p95 in ms; `None` when there were no requests.
    pub p95_ms: Option<f64>,
}

/// Answer to a `CountsQuery`. Minutes without a row had no requests; the window is what was
/// asked, so the core can tell "no traffic" from "not asked".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountsWindow {
    /// First minute queried (inclusive).
    pub from: Timestamp,
    /// End of the query (exclusive, a whole minute).
    pub to: Timestamp,
    /// Per-minute counts; minutes outside `[from, to)` are ignored.
    pub minutes: Vec<MinuteCounts>,
    /// The new version over `[latency_from, to)`.
    pub new_latency: VersionLatency,
    /// The old version over `[latency_from, to)`.
    pub old_latency: VersionLatency,
}

#[cfg(test)]
impl CountsWindow {
    /// The window `query` asks for, every minute with the same `new` and `old` counts and
    /// no latency: a steady scripted world (the window before a rollout, in tests).
    pub fn steady(query: &CountsQuery, new: VersionCounts, old: VersionCounts) -> CountsWindow {
        let n = query.to.minute_index() - query.from.minute_index();
        CountsWindow {
            from: query.from,
            to: query.to,
            minutes: (0..n)
                .map(|i| MinuteCounts {
                    minute: query.from.plus_minutes(i),
                    new,
                    old,
                    sample_interval: 1.0,
                })
                .collect(),
            new_latency: VersionLatency::default(),
            old_latency: VersionLatency::default(),
        }
    }
}

/// Queue metrics over the tick's window (from the `queue.metric` events; not per version).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueMetrics {
    /// Highest backlog seen (messages).
    pub depth: f64,
    /// Retried messages per minute.
    pub retries_per_minute: f64,
}

/// Everything one tick brought back. `None` means "not attempted"; each source fails on
/// its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// The live deployment read.
    #[serde(default)]
    pub deployment: Option<Fetched<LiveDeployment>>,
    /// The `/healthz` probe of the new version.
    #[serde(default)]
    pub healthz: Option<Probe>,
    /// Per-minute per-version counts and latency.
    #[serde(default)]
    pub counts: Option<Fetched<CountsWindow>>,
    /// Queue metrics (only when the policy watches a queue).
    #[serde(default)]
    pub queue: Option<Fetched<QueueMetrics>>,
    /// The old version's per-minute counts before the rollout (`ObservationPlan::history`).
    #[serde(default)]
    pub history: Option<Fetched<CountsWindow>>,
}

internally_tagged! {
    tag = "outcome";
    /// One pre-flight check's outcome.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Check {
        /// The check passed.
        Pass { detail: String },
        /// The check clearly failed: the rollout is refused.
        Fail { reason: String },
        /// Not configured or not applicable.
        Skipped { reason: String },
        /// Could not decide (e.g. the API answered 5xx): pre-flight is retried.
        Unknown { why: String },
    }
}

/// The shell's pre-flight checks on the new version before any traffic moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreflightReport {
    /// The version exists on the script.
    pub version_exists: Check,
    /// `/healthz` answered 200 when pinned to the version; one clear failure refuses.
    pub healthz: Check,
    /// The static asset for the git sha is published.
    pub asset: Check,
    /// The required bindings (Secrets Store, Analytics Engine) are present.
    pub bindings: Check,
}

impl PreflightReport {
    /// The checks with their names, in a fixed order.
    pub fn checks(&self) -> [(&'static str, &Check); 4] {
        [
            ("version_exists", &self.version_exists),
            ("healthz", &self.healthz),
            ("asset", &self.asset),
            ("bindings", &self.bindings),
        ]
    }
}

/// The counts query for one tick: minutes `[from, to)`, latency over `[latency_from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountsQuery {
    /// The new version (Analytics Engine index).
    pub new_version: String,
    /// The stable version.
    pub old_version: String,
    /// First minute not yet counted.
    pub from: Timestamp,
    /// `floor(now − ingestion lag)`: later minutes may still be arriving.
    pub to: Timestamp,
    /// Start of the trailing window for p95.
    pub latency_from: Timestamp,
    /// A request slower than this (ms) counts as slow.
    pub slow_above_ms: f64,
    /// A request slower than this (ms) counts as very slow (`Policy::very_slow_ms`).
    pub very_slow_above_ms: f64,
    /// A request slower than this (ms) is approaching the ceiling (`Policy::approach_ms`).
    pub approach_above_ms: f64,
}

/// What the shell should fetch before the next `step`. Everything false/`None` means idle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservationPlan {
    /// Run the pre-flight checks and send a `PreflightReport`.
    pub preflight: bool,
    /// Read the live deployment.
    pub read_deployment: bool,
    /// Probe the new version's `/healthz`.
    pub probe_healthz: bool,
    /// Query per-minute counts (`None` when there is no complete minute to count yet).
    pub counts: Option<CountsQuery>,
    /// Query queue metrics.
    pub queue: bool,
    /// Query the old version's counts over the minutes before the rollout, the baseline of
    /// the history looks (`None` once read, or when the policy reads none).
    #[serde(default)]
    pub history: Option<CountsQuery>,
}

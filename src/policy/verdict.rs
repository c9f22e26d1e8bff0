//! Verdicts: the three-way outcome of judging one signal (healthy / unhealthy with reasons
//! and numbers / inconclusive with why), and the vocabulary they are told in.

use crate::json::tagged::internally_tagged;
use serde::{Deserialize, Serialize};
use std::fmt;

internally_tagged! {
    tag = "kind";
    /// A level check's outcome before debouncing.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Breach {
        /// Over the limit.
        Over(Reason),
        /// Judged and within the limit.
        Within,
        /// Too little traffic to judge.
        TooFew { have: f64, need: f64 },
    }
}

/// The signals a verdict can be about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The `/healthz` probe.
    Healthz,
    /// 5xx counts.
    Errors,
    /// Latency (p95 and slow requests).
    Latency,
    /// Queue depth and retries.
    Queue,
    /// The live deployment read.
    Deployment,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Signal::Healthz => "healthz",
            Signal::Errors => "5xx",
            Signal::Latency => "latency",
            Signal::Queue => "queue",
            Signal::Deployment => "deployment",
        };
        f.write_str(name)
    }
}

/// One reason a signal is unhealthy, with the number and the limit it crossed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Which signal.
    pub signal: Signal,
    /// A sentence with the numbers, for Slack and the status page.
    pub detail: String,
    /// The observed value (rate, ms, e-value, count); an e-value can be infinite.
    #[serde(with = "crate::stats::infinite_as_null")]
    pub observed: f64,
    /// The limit it crossed.
    pub limit: f64,
}

internally_tagged! {
    tag = "gap";
    /// Why a signal could not be judged.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Gap {
        /// The source was not asked or did not answer this tick.
        NotObserved { signal: Signal },
        /// The source failed.
        SourceFailed { signal: Signal, why: String },
        /// No new complete minute was counted this tick.
        NoNewMinutes,
        /// Too little traffic to judge a level.
        TooFewRequests {
            signal: Signal,
            have: f64,
            need: f64,
        },
        /// A test has not yet seen enough to promote.
        NotEnoughEvidence {
            signal: Signal,
            #[serde(with = "crate::stats::infinite_as_null")]
            upper_bound: f64,
            tolerance: f64,
            #[serde(with = "crate::stats::infinite_as_null")]
            new_requests_needed: f64,
        },
        /// A level is breached but not yet for long enough.
        Debouncing {
            signal: Signal,
            breaches: u32,
            needed: u32,
            detail: String,
        },
        /// `/healthz` was answered by another version.
        WrongVersion { answered_by: String },
        /// At 100%, the bake test starts with the first whole minute at 100%, which the
        /// ingestion lag has not let in yet.
        BakeNotStarted { signal: Signal },
    }
}

impl Gap {
    /// The same gap, said about `signal` (one failed counts query starves 5xx and latency).
    pub fn for_signal(self, signal: Signal) -> Gap {
        match self {
            Gap::NotObserved { .. } => Gap::NotObserved { signal },
            Gap::BakeNotStarted { .. } => Gap::BakeNotStarted { signal },
            Gap::SourceFailed { why, .. } => Gap::SourceFailed { signal, why },
            Gap::TooFewRequests { have, need, .. } => Gap::TooFewRequests { signal, have, need },
            other => other,
        }
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::NotObserved { signal } => write!(f, "{signal}: not observed this tick"),
            Gap::SourceFailed { signal, why } => write!(f, "{signal}: source failed: {why}"),
            Gap::NoNewMinutes => write!(f, "no new complete minute to count yet"),
            Gap::TooFewRequests { signal, have, need } => {
                write!(f, "{signal}: {have} new-version requests, {need} needed")
            }
            Gap::NotEnoughEvidence {
                signal,
                upper_bound,
                tolerance,
                new_requests_needed,
            } => write!(
                f,
                "{signal}: not enough evidence yet (ratio upper bound {upper_bound:.2} ≥ {tolerance}; {})",
                describe_needed(*new_requests_needed)
            ),
            Gap::Debouncing {
                signal,
                breaches,
                needed,
                detail,
            } => write!(f, "{signal}: {detail} ({breaches} of {needed} in a row)"),
            Gap::WrongVersion { answered_by } => {
                write!(f, "healthz: answered by version {answered_by}, not ours")
            }
            Gap::BakeNotStarted { signal } => write!(
                f,
                "{signal}: bake test starts with the first whole minute at 100%, not counted yet"
            ),
        }
    }
}

internally_tagged! {
    tag = "verdict";
    /// A signal's three-way verdict.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Verdict {
        /// Positive evidence that the signal is fine.
        Healthy,
        /// Evidence the new version is worse.
        Unhealthy { reasons: Vec<Reason> },
        /// Cannot tell (never treated as healthy).
        Inconclusive { why: Gap },
    }
}

impl Verdict {
    /// Unhealthy for one reason.
    pub fn unhealthy(reason: Reason) -> Verdict {
        Verdict::Unhealthy {
            reasons: vec![reason],
        }
    }

    /// Inconclusive because of `why`.
    pub fn inconclusive(why: Gap) -> Verdict {
        Verdict::Inconclusive { why }
    }

    /// True only for `Healthy`.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Verdict::Healthy)
    }

    /// The reasons, when unhealthy.
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Verdict::Unhealthy { reasons } => reasons,
            _ => &[],
        }
    }

    /// The worse of two verdicts: unhealthy (reasons merged) > inconclusive > healthy.
    pub fn worst(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Unhealthy { mut reasons }, Verdict::Unhealthy { reasons: more }) => {
                reasons.extend(more);
                Verdict::Unhealthy { reasons }
            }
            (bad @ Verdict::Unhealthy { .. }, _) | (_, bad @ Verdict::Unhealthy { .. }) => bad,
            (gap @ Verdict::Inconclusive { .. }, _) | (_, gap @ Verdict::Inconclusive { .. }) => {
                gap
            }
            (Verdict::Healthy, Verdict::Healthy) => Verdict::Healthy,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Healthy => f.write_str("healthy"),
            Verdict::Unhealthy { reasons } => {
                let details: Vec<&str> = reasons.iter().map(|r| r.detail.as_str()).collect();
                write!(f, "unhealthy: {}", details.join("; "))
            }
            Verdict::Inconclusive { why } => write!(f, "inconclusive: {why}"),
        }
    }
}

/// "about N more new-version requests needed", or why no amount will do at this share.
pub fn describe_needed(new_requests_needed: f64) -> String {
    if new_requests_needed.is_finite() {
        format!("about {new_requests_needed:.0} more new-version requests needed")
    } else {
        "no amount of traffic at the current share would be enough".to_string()
    }
}

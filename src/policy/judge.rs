//! Judging: the pure functions that turn one signal's numbers into a `Verdict` (healthy,
//! unhealthy with the reason and its numbers, or inconclusive with why). Missing data is
//! never healthy.

use super::words::{burst_scaled, format_e_value, pct, rate};
use super::{
    Breach, BudgetRow, Gap, LookedEvents, Policy, QueueThresholds, Reason, Signal, Verdict,
    CEILING_Z,
};
use crate::observe::{Probe, QueueMetrics, VersionLatency};
use crate::stats::{Against, LookOutcome, RatioSummary};

impl Policy {
    /// A look of `row` that rejected: unhealthy, with the counts and the p-value that
    /// decided, whatever kind of look it was.
    pub fn judge_look(&self, row: BudgetRow, look: &LookOutcome) -> Verdict {
        let (signal, what) = self.looked_events(row.parts().1);
        let (observed, limit) = look.deciding();
        let detail = match &look.against {
            Against::OldVersion { .. } => {
                format!("new version worse than old in {what} at the {look}")
            }
            Against::Baseline { margin, .. } => format!(
                "new version's {what} above {margin}× the old version's own rate before the \
                 rollout, and above the old version's during the split: {look}"
            ),
            Against::Reference { margin, .. } => format!(
                "new version's {what} at 100% above {margin}× the old version's rate during \
                 the split: {look}"
            ),
        };
        Verdict::unhealthy(Reason {
            signal,
            detail,
            observed,
            limit,
        })
    }

    /// The signal a set of looks judges, and its bad events in words.
    fn looked_events(&self, counted: LookedEvents) -> (Signal, String) {
        match counted {
            LookedEvents::Errors => (Signal::Errors, "5xx".to_string()),
            LookedEvents::Slow => (
                Signal::Latency,
                format!("requests over {} ms", self.latency_p95_ceiling_ms),
            ),
            LookedEvents::VerySlow => (
                Signal::Latency,
                format!("very slow requests (over {} ms)", self.very_slow_ms()),
            ),
            LookedEvents::Approaching => (
                Signal::Latency,
                format!(
                    "requests approaching the ceiling (over {} ms)",
                    self.approach_ms()
                ),
            ),
        }
    }

    /// `/healthz`: unhealthy after `healthz_failures` consecutive failures; healthy only when
    /// the latest probe of this tick reached the new version and got 200.
    pub fn judge_healthz(&self, failures_in_a_row: u32, latest: Option<&Probe>) -> Verdict {
        if failures_in_a_row >= self.healthz_failures {
            let detail = match latest {
                Some(Probe::Failed { status, error }) => describe_probe_failure(*status, error),
                _ => "failing".to_string(),
            };
            return Verdict::unhealthy(Reason {
                signal: Signal::Healthz,
                detail: format!(
                    "/healthz failed {failures_in_a_row} times in a row (limit {}): {detail}",
                    self.healthz_failures
                ),
                observed: f64::from(failures_in_a_row),
                limit: f64::from(self.healthz_failures),
            });
        }
        match latest {
            Some(Probe::Ok) => Verdict::Healthy,
            Some(Probe::Failed { status, error }) => Verdict::inconclusive(Gap::Debouncing {
                signal: Signal::Healthz,
                breaches: failures_in_a_row,
                needed: self.healthz_failures,
                detail: describe_probe_failure(*status, error),
            }),
            Some(Probe::WrongVersion { answered_by }) => Verdict::inconclusive(Gap::WrongVersion {
                answered_by: answered_by.clone(),
            }),
            None => Verdict::inconclusive(Gap::NotObserved {
                signal: Signal::Healthz,
            }),
        }
    }

    /// A sequential count test: a rejected null is unhealthy (with the e-value against its
    /// threshold); an upper bound below tolerance or a met exposure rule is healthy;
    /// otherwise not enough evidence yet.
    pub fn judge_count_test(&self, signal: Signal, summary: &RatioSummary) -> Verdict {
        if summary.regression {
            return Verdict::unhealthy(Reason {
                signal,
                detail: format!(
                    "new version worse than old: e-value {} ≥ {:.0} (ratio ≤ {} rejected); \
                     new {:.0}/{:.0} vs old {:.0}/{:.0} ({} vs {}){}",
                    format_e_value(summary.e_value),
                    summary.threshold,
                    self.rho0,
                    summary.new_bad,
                    summary.new_total,
                    summary.old_bad,
                    summary.old_total,
                    rate(summary.new_bad, summary.new_total),
                    rate(summary.old_bad, summary.old_total),
                    burst_scaled(summary.burst_divisor.is_some(), summary.burst_divisor)
                        .map_or(String::new(), |s| format!(", {s}")),
                ),
                observed: summary.e_value,
                limit: summary.threshold,
            });
        }
        self.judge_evidence(signal, summary)
    }

    /// The promotion half of a count test, regression aside: healthy when the upper bound is
    /// below tolerance or the exposure rule is met, else not enough evidence yet.
    pub fn judge_evidence(&self, signal: Signal, summary: &RatioSummary) -> Verdict {
        if summary.upper_bound < self.rho_tolerance || summary.exposure_met {
            return Verdict::Healthy;
        }
        Verdict::inconclusive(Gap::NotEnoughEvidence {
            signal,
            upper_bound: summary.upper_bound,
            tolerance: self.rho_tolerance,
            new_requests_needed: summary.new_requests_needed,
        })
    }

    /// The absolute 5xx ceiling over the trailing window. Breaches when the new version's
    /// errors exceed what the ceiling rate would give by `CEILING_Z` Poisson standard
    /// deviations, and only when the old version is not over it too in the same minutes (a
    /// shared incident is not the release's fault). This SLO guard is outside the α budget.
    /// `minutes` is how many minutes the totals cover (for the message).
    pub fn judge_error_ceiling(&self, new: (f64, f64), old: (f64, f64), minutes: usize) -> Breach {
        let (new_requests, new_errors) = new;
        if new_requests < self.error_ceiling_min_requests {
            return Breach::TooFew {
                have: new_requests,
                need: self.error_ceiling_min_requests,
            };
        }
        let new_rate = new_errors / new_requests;
        let (old_requests, old_errors) = old;
        let old_over = old_requests >= self.error_ceiling_min_requests
            && old_errors / old_requests > self.error_rate_ceiling;
        // Clearly over, not just over: a release at half the ceiling would otherwise cross it
        // by chance on some tick, since the ceiling is looked at every minute.
        let expected = self.error_rate_ceiling * new_requests;
        let clear = expected + CEILING_Z * expected.sqrt();
        if new_errors > clear && !old_over {
            return Breach::Over(Reason {
                signal: Signal::Errors,
                detail: format!(
                    "5xx rate {} over the last {minutes} min is above the {} ceiling ({new_errors:.0} of {new_requests:.0})",
                    pct(new_rate),
                    pct(self.error_rate_ceiling),
                ),
                observed: new_rate,
                limit: self.error_rate_ceiling,
            });
        }
        Breach::Within
    }

    /// The absolute p95 ceiling over the trailing window (same shared-incident rule).
    pub fn judge_latency_ceiling(&self, new: &VersionLatency, old: &VersionLatency) -> Breach {
        let p95 = match new.p95_ms {
            Some(p95) if new.requests >= self.latency_min_requests => p95,
            _ => {
                return Breach::TooFew {
                    have: new.requests,
                    need: self.latency_min_requests,
                }
            }
        };
        let old_over = old.requests >= self.latency_min_requests
            && old.p95_ms.is_some_and(|p| p > self.latency_p95_ceiling_ms);
        if p95 > self.latency_p95_ceiling_ms && !old_over {
            return Breach::Over(Reason {
                signal: Signal::Latency,
                detail: format!(
                    "p95 {p95:.0} ms over the last {} min is above the {:.0} ms ceiling ({:.0} requests)",
                    self.window_minutes, self.latency_p95_ceiling_ms, new.requests
                ),
                observed: p95,
                limit: self.latency_p95_ceiling_ms,
            });
        }
        Breach::Within
    }

    /// Queue depth and retries against the thresholds (no minimum sample: these are levels).
    pub fn judge_queue(thresholds: &QueueThresholds, metrics: &QueueMetrics) -> Breach {
        if metrics.depth > thresholds.max_depth {
            return Breach::Over(Reason {
                signal: Signal::Queue,
                detail: format!(
                    "queue depth {} above {}",
                    metrics.depth, thresholds.max_depth
                ),
                observed: metrics.depth,
                limit: thresholds.max_depth,
            });
        }
        if metrics.retries_per_minute > thresholds.max_retries_per_minute {
            return Breach::Over(Reason {
                signal: Signal::Queue,
                detail: format!(
                    "queue retries {}/min above {}/min",
                    metrics.retries_per_minute, thresholds.max_retries_per_minute
                ),
                observed: metrics.retries_per_minute,
                limit: thresholds.max_retries_per_minute,
            });
        }
        Breach::Within
    }
}

fn describe_probe_failure(status: Option<u16>, error: &Option<String>) -> String {
    match (status, error) {
        (Some(status), Some(error)) => format!("status {status}: {error}"),
        (Some(status), None) => format!("status {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".to_string(),
    }
}

#[cfg(test)]
mod tests;

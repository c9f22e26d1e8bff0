//! Judging: the pure functions that turn one signal's numbers into a `Verdict` (healthy,
//! unhealthy with the reason and its numbers, or inconclusive with why). Missing data is
//! never healthy.

use super::words::{burst_scaled, format_e_value, format_probability, pct, rate};
use super::{
    Breach, BudgetRow, Gap, LookedEvents, Policy, QueueThresholds, Reason, Signal, Verdict,
    CEILING_ALPHA, P95_TAIL_SHARE,
};
use crate::observe::{Probe, QueueMetrics, StoredRows};
use crate::stats::{binomial_upper_tail, Against, Burstiness, LookOutcome, RatioSummary};

impl Policy {
    /// A look of `row` that rejected: unhealthy, with the counts and the p-value that
    /// decided, whatever kind of look it was.
    pub fn judge_look(&self, row: BudgetRow, look: &LookOutcome) -> Verdict {
        let (signal, what) = self.looked_events(row.parts().1);
        let (observed, limit) = look.deciding();
        let detail = match &look.against {
            Against::OldVersion { .. } | Against::Recent { .. } => {
                format!("new version worse than old in {what} at the {look}")
            }
            Against::Baseline { margin, .. } => format!(
                "new version's {what} above {margin}× the old version's own rate before the \
                 rollout, and above the old version's during the split: {look}"
            ),
            Against::Reference { margin, .. } | Against::RecentReference { margin, .. } => format!(
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

    /// The absolute 5xx ceiling over the trailing window of `minutes` minutes: an exact
    /// one-sided binomial test of "the new version's 5xx share ≤ `error_rate_ceiling`" on
    /// the rows Analytics Engine stored (not the requests they stand for), at
    /// `CEILING_ALPHA` a look, once `error_ceiling_min_rows` rows are in. Over only when
    /// the old version's rows over the same minutes are not over the ceiling too (a shared
    /// incident is not the release's fault). `old` is `None` where the old version did not
    /// serve every minute of the window (the bake): then, or where it has too few rows to
    /// say, the rows are scaled for `bursts`, its burstiness before the rollout. Outside
    /// the α budget, with its rate in `Policy::guards`.
    pub fn judge_error_ceiling(
        &self,
        new: &StoredRows,
        old: Option<ConcurrentShare>,
        minutes: usize,
        bursts: Option<&Burstiness>,
    ) -> Breach {
        let ceiling = Ceiling {
            share: self.error_rate_ceiling,
            min_rows: self.error_ceiling_min_rows,
            minutes,
            bursts,
        };
        ceiling
            .test((new.rows, new.errors), old)
            .breach(|share, p_value, divisor| Reason {
                signal: Signal::Errors,
                detail: format!(
                    "5xx rate {} over the last {minutes} min is above the {} ceiling: {:.0} \
                     of {:.0} stored rows{}, p = {} (α {} a look)",
                    pct(share),
                    pct(self.error_rate_ceiling),
                    new.errors,
                    new.rows,
                    describe_divisor(divisor),
                    format_probability(p_value),
                    format_probability(CEILING_ALPHA),
                ),
                observed: share,
                limit: self.error_rate_ceiling,
            })
    }

    /// The absolute p95 ceiling over the trailing window of `minutes` minutes: p95 ≤ the
    /// ceiling exactly when at most `P95_TAIL_SHARE` of requests are slower, so an exact
    /// one-sided binomial test of that share on the new version's stored rows, at
    /// `CEILING_ALPHA` a look, once `latency_ceiling_min_rows` rows are in (the same
    /// shared-incident rule and burst scaling; the tick debounces it over
    /// `latency_consecutive` windows).
    pub fn judge_latency_ceiling(
        &self,
        new: &StoredRows,
        old: Option<ConcurrentShare>,
        minutes: usize,
        bursts: Option<&Burstiness>,
    ) -> Breach {
        let ceiling = Ceiling {
            share: P95_TAIL_SHARE,
            min_rows: self.latency_ceiling_min_rows,
            minutes,
            bursts,
        };
        ceiling
            .test((new.rows, new.slow), old)
            .breach(|share, p_value, divisor| Reason {
                signal: Signal::Latency,
                detail: format!(
                    "p95 over the last {minutes} min is above the {:.0} ms ceiling: {} of \
                     requests slower ({:.0} of {:.0} stored rows{}, more than {}), p = {} \
                     (α {} a look)",
                    self.latency_p95_ceiling_ms,
                    pct(share),
                    new.slow,
                    new.rows,
                    describe_divisor(divisor),
                    pct(P95_TAIL_SHARE),
                    format_probability(p_value),
                    format_probability(CEILING_ALPHA),
                ),
                observed: share,
                limit: P95_TAIL_SHARE,
            })
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

/// The old version over the same trailing window, as the ceilings' shared-incident rule
/// reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConcurrentShare {
    /// Its stored rows in the window.
    pub rows: f64,
    /// Its share of bad rows, each minute weighted by the new version's rows in it: so both
    /// versions' shares weigh the window's minutes alike (after a step up the new version's
    /// rows sit mostly in the newest minutes, the old version's in the oldest).
    pub share: f64,
}

/// One absolute ceiling as a test on stored rows: the share of bad rows against `share`.
struct Ceiling<'a> {
    /// The null: at most this share of the rows is bad.
    share: f64,
    /// New-version rows needed to judge (and old-version rows to spare a shared incident).
    min_rows: f64,
    /// Minutes the rows cover.
    minutes: usize,
    /// The old version's burstiness before the rollout, if read.
    bursts: Option<&'a Burstiness>,
}

/// What one ceiling's test found, before it is put in words.
enum CeilingTest {
    TooFew {
        have: f64,
        need: f64,
    },
    Within,
    /// The new version's share of bad rows, the test's p-value, and what the rows were
    /// divided by for bursts (1: not scaled).
    Over {
        share: f64,
        p_value: f64,
        divisor: f64,
    },
}

impl CeilingTest {
    /// As a `Breach`, an `Over` told by `over(share, p_value, divisor)`.
    fn breach(self, over: impl FnOnce(f64, f64, f64) -> Reason) -> Breach {
        match self {
            CeilingTest::TooFew { have, need } => Breach::TooFew { have, need },
            CeilingTest::Within => Breach::Within,
            CeilingTest::Over {
                share,
                p_value,
                divisor,
            } => Breach::Over(over(share, p_value, divisor)),
        }
    }
}

impl Ceiling<'_> {
    /// `new` is (rows, bad rows). Over when the new version's rows reject "share ≤ `share`"
    /// at `CEILING_ALPHA` (P(Binomial(rows, share) ≥ bad), exact), unless the old version,
    /// with `min_rows` rows over the same minutes (`None`: it did not serve them all), is
    /// over the share too. Under sampling the stored rows are a random sample of the
    /// requests, so the test holds at its level whatever each row stands for. Without that
    /// many old rows nothing tells a burst both versions share from the release, so the rows
    /// are divided by the variance inflation that the old version's burstiness before the
    /// rollout gives a sum of this many minutes at the null (`Burstiness::sum_inflation`), as
    /// the bake's other tests scale their sums.
    fn test(&self, new: (f64, f64), old: Option<ConcurrentShare>) -> CeilingTest {
        let (rows, bad) = new;
        if rows < self.min_rows || rows <= 0.0 {
            return CeilingTest::TooFew {
                have: rows,
                need: self.min_rows,
            };
        }
        let concurrent = old.filter(|old| old.rows >= self.min_rows && old.rows > 0.0);
        if concurrent.is_some_and(|old| old.share > self.share) {
            return CeilingTest::Within;
        }
        let divisor = match self.bursts {
            Some(bursts) if concurrent.is_none() => {
                bursts.sum_inflation(self.share * rows, self.minutes as f64)
            }
            _ => 1.0,
        };
        let n = whole(rows / divisor);
        let k = whole((bad / divisor).floor()).min(n);
        let p_value = binomial_upper_tail(n, self.share, k);
        if p_value <= CEILING_ALPHA {
            return CeilingTest::Over {
                share: bad / rows,
                p_value,
                divisor,
            };
        }
        CeilingTest::Within
    }
}

/// ", counted ÷d for …" where the rows were scaled for bursts; nothing otherwise.
fn describe_divisor(divisor: f64) -> String {
    if divisor > 1.0 {
        format!(", counted ÷{divisor:.1} for the bursts the old version showed before the rollout")
    } else {
        String::new()
    }
}

/// A stored-row count as a whole number (the query counts rows; 0 for nothing usable).
fn whole(count: f64) -> u64 {
    if count.is_finite() && count > 0.0 {
        count.round() as u64
    } else {
        0
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

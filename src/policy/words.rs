//! Looks in words: one line per look, whatever its kind, for Slack, the audit log and the
//! status page (`Display` on `LookOutcome`), and the number formats every message shares.

use crate::stats::{Against, LookKind, LookOutcome, RobustLook, Skipped, LOOKS_MAX_EVENTS};
use std::fmt;

/// Where a look was taken, for people ("the look at the end of step 1").
fn look_name(look: &LookOutcome) -> String {
    let newest = |minutes: u32| match minutes {
        1 => "newest minute".to_string(),
        n => format!("newest {n} minutes"),
    };
    match look.against {
        Against::Recent { minutes, .. } => {
            return format!(
                "onset look {} over the split's {}",
                look.number,
                newest(minutes)
            );
        }
        Against::RecentReference { minutes, .. } => {
            return format!(
                "bake onset look {} over the {}",
                look.number,
                newest(minutes)
            );
        }
        _ => {}
    }
    let history = matches!(look.against, Against::Baseline { .. });
    match (look.kind, history) {
        (LookKind::Closing, false) => "closing look over the whole split".to_string(),
        (LookKind::StepEnd { step }, false) => format!("look at the end of step {}", step + 1),
        (LookKind::Interim { step }, false) => {
            format!("look during step {} (look {})", step + 1, look.number)
        }
        (LookKind::Closing, true) => "history look over the whole split".to_string(),
        (LookKind::StepEnd { step }, true) => {
            format!("history look at the end of step {}", step + 1)
        }
        (LookKind::Interim { step }, true) => format!("history look during step {}", step + 1),
        (LookKind::Bake { closing: true }, _) => "closing bake look".to_string(),
        (LookKind::Bake { closing: false }, _) => format!("bake look {}", look.number),
    }
}

/// A look in one line: what it saw against what its null expects.
impl fmt::Display for LookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let which = look_name(self);
        let line = match &self.against {
            Against::OldVersion {
                events,
                rho0,
                critical,
                robust,
            } => concurrent(self, &which, *events, *rho0, *critical, robust.as_ref()),
            Against::Recent { events, rho0, .. } => match &self.skipped {
                Some(Skipped::NoEvents) => format!("{which}: no bad events to test"),
                Some(skipped) => busy(&which, skipped),
                None => format!(
                    "{which}: {} of {events} {}bad events from the new version, {:.1} expected \
                     at ratio {rho0}; p = {} (α {})",
                    self.new_bad,
                    burst_scaled(self.scaled, self.divisor).map_or(String::new(), |s| s + " "),
                    self.null_mean,
                    format_probability(self.p_value),
                    format_probability(self.alpha)
                ),
            },
            Against::Baseline {
                new_requests,
                baseline,
                margin,
                guard_alpha,
                guard_rejected,
            } => {
                let Some(b) = baseline else {
                    return write!(f, "{which}: no baseline read from before the rollout");
                };
                let window = format!(
                    "{:.0}/{:.0} ({}) over {} minutes before the rollout",
                    b.bad,
                    b.requests,
                    rate(b.bad, b.requests),
                    b.minutes
                );
                match &self.skipped {
                    Some(Skipped::NoBaseline) => format!("{which}: no baseline read"),
                    Some(Skipped::NoEvents) => {
                        format!("{which}: no new-version bad events yet; old version {window}")
                    }
                    Some(Skipped::Drifted {
                        old_bad,
                        old_requests,
                        p_value,
                    }) => format!(
                        "{which}: skipped, the old version's own rate drifted since \
                         ({old_bad}/{old_requests:.0}, {}, now vs {window}; p = {})",
                        rate(*old_bad as f64, *old_requests),
                        format_probability(*p_value),
                    ),
                    Some(skipped) => busy(&which, skipped),
                    None => format!(
                        "{which}: new {}/{:.0} ({}) vs old {window}; {:.1} expected at {}× that, \
                         p = {} (α {}); concurrent guard {} at {}",
                        self.new_bad,
                        new_requests,
                        rate(self.new_bad as f64, *new_requests),
                        self.null_mean,
                        margin,
                        format_probability(self.p_value),
                        format_probability(self.alpha),
                        if *guard_rejected {
                            "rejected new ≤ old"
                        } else {
                            "not rejected"
                        },
                        format_probability(*guard_alpha),
                    ),
                }
            }
            Against::Reference {
                new_requests,
                reference,
                margin,
            }
            | Against::RecentReference {
                new_requests,
                reference,
                margin,
                ..
            } => {
                let Some(r) = reference else {
                    return write!(f, "{which}: no reference from the split");
                };
                let reference = format!(
                    "{:.0}/{:.0} ({}) over the split{}",
                    r.bad,
                    r.requests,
                    rate(r.bad, r.requests),
                    if self.scaled {
                        ", burst-scaled too"
                    } else {
                        ""
                    }
                );
                let scaled = burst_scaled(self.scaled, self.divisor)
                    .map_or(String::new(), |s| format!(", {s}"));
                let new = format!(
                    "{}/{:.0} ({}) at 100%{scaled}",
                    self.new_bad,
                    new_requests,
                    rate(self.new_bad as f64, *new_requests)
                );
                match &self.skipped {
                    Some(Skipped::NoReference) => format!("{which}: no reference from the split"),
                    Some(Skipped::NoEvents) => format!("{which}: no bad events at 100% yet"),
                    Some(skipped) => busy(&which, skipped),
                    None => format!(
                        "{which}: {new} against {reference}, {:.1} expected at {}×; p = {} (α {})",
                        self.null_mean,
                        margin,
                        format_probability(self.p_value),
                        format_probability(self.alpha)
                    ),
                }
            }
        };
        f.write_str(&line)
    }
}

/// A history or bake look skipped for too many events a minute, in one line.
fn busy(which: &str, skipped: &Skipped) -> String {
    match skipped {
        Skipped::TooManyEvents { per_minute, limit } => {
            format!("{which}: skipped, {per_minute:.0} bad events a minute (limit {limit:.0})")
        }
        _ => format!("{which}: skipped"),
    }
}

/// "burst-scaled (÷ d)" for counts scaled down by a divisor d (for a split look, the mean of
/// its minutes'; without one when it is not known), or nothing for raw counts.
pub(super) fn burst_scaled(scaled: bool, divisor: Option<f64>) -> Option<String> {
    scaled.then(|| match divisor {
        Some(d) => format!("burst-scaled (÷ {d:.2})"),
        None => "burst-scaled".to_string(),
    })
}

/// A scheduled look in one line: of the bad events of both versions, how many came from the
/// new one against the null's expectation; when skipped for too many events, the robust
/// closing look if one was taken.
fn concurrent(
    look: &LookOutcome,
    which: &str,
    events: u64,
    rho0: f64,
    critical: Option<u64>,
    robust: Option<&RobustLook>,
) -> String {
    match (&look.skipped, critical) {
        (Some(Skipped::TooManyEvents { per_minute, limit }), _) => {
            let busy = |label: &str| {
                if per_minute > limit {
                    format!("{per_minute:.0} bad events a minute ({label} {limit:.0})")
                } else {
                    format!("{events} bad events in all ({label} {LOOKS_MAX_EVENTS})")
                }
            };
            match robust {
                Some(r) => format!(
                    "{which}: {}; robust t test over {} minutes: mean z {:.2}, spread {:.2}, \
                     t = {:.2}, p = {} (α {})",
                    busy("exact limit"),
                    r.minutes,
                    r.mean_z,
                    r.sd_z,
                    r.t,
                    format_probability(r.p_value),
                    format_probability(r.alpha),
                ),
                None => format!(
                    "{which}: skipped, {}; the anytime test decides",
                    busy("limit")
                ),
            }
        }
        (Some(_), _) => format!("{which}: no bad events to test"),
        (None, Some(critical)) => format!(
            "{which}: {} of {events} {}bad events from the new version, {:.1} expected at \
             ratio {rho0}, rejects at {critical}; p = {} (α {})",
            look.new_bad,
            burst_scaled(look.scaled, look.divisor).map_or(String::new(), |s| s + " "),
            look.null_mean,
            format_probability(look.p_value),
            format_probability(look.alpha),
        ),
        (None, None) => format!("{which}: no boundary"),
    }
}

/// A probability for people: four decimals, or scientific notation below 0.001.
pub fn format_probability(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// An e-value for people: one decimal, or scientific notation once it is huge.
pub fn format_e_value(e: f64) -> String {
    if e < 1e6 {
        format!("{e:.1}")
    } else {
        format!("{e:.2e}")
    }
}

/// A rate as a percentage with two decimals, or "n/a" without traffic.
pub fn rate(bad: f64, total: f64) -> String {
    if total > 0.0 {
        pct(bad / total)
    } else {
        "n/a".to_string()
    }
}

pub(super) fn pct(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

#[cfg(test)]
mod tests;

//! Looks in words: one line per look for Slack, the audit log and the status page, and the
//! number formats every message shares.

use crate::stats::{
    BakeLook, BakeSkipped, HistoryLook, HistorySkipped, Look, LookKind, LookSkipped,
    LOOKS_MAX_EVENTS,
};

/// Where a scheduled look was taken, for people ("the look at the end of step 1").
pub fn look_name(look: &Look) -> String {
    match look.kind {
        LookKind::Closing => "closing look over the whole split".to_string(),
        LookKind::StepEnd { step } => format!("look at the end of step {}", step + 1),
        LookKind::Interim { step } => {
            format!("look during step {} (look {})", step + 1, look.number)
        }
    }
}

/// A bake look in one line: the new version's rate at 100% against the split-time reference.
pub fn describe_bake_look(look: &BakeLook) -> String {
    let which = if look.closing {
        "closing bake look".to_string()
    } else {
        format!("bake look {}", look.number)
    };
    let Some(r) = look.reference else {
        return format!("{which}: no reference from the split");
    };
    let reference = format!(
        "{:.0}/{:.0} ({}) over the split{}",
        r.bad,
        r.requests,
        rate(r.bad, r.requests),
        if look.scaled {
            ", burst-scaled too"
        } else {
            ""
        }
    );
    let scaled =
        burst_scaled(look.scaled, look.divisor).map_or(String::new(), |s| format!(", {s}"));
    let new = format!(
        "{}/{:.0} ({}) at 100%{scaled}",
        look.new_bad,
        look.new_requests,
        rate(look.new_bad as f64, look.new_requests)
    );
    match &look.skipped {
        Some(BakeSkipped::NoReference) => format!("{which}: no reference from the split"),
        Some(BakeSkipped::NoEvents) => format!("{which}: no bad events at 100% yet"),
        Some(BakeSkipped::TooManyEvents { per_minute, limit }) => {
            format!("{which}: skipped, {per_minute:.0} bad events a minute (limit {limit:.0})")
        }
        None => format!(
            "{which}: {new} against {reference}, {:.1} expected at {}×; p = {} (α {})",
            look.null_mean,
            look.margin,
            format_probability(look.p_value),
            format_probability(look.alpha)
        ),
    }
}

/// A history look in one line: the new version's split-time rate against the baseline's.
pub fn describe_history(look: &HistoryLook) -> String {
    let which = match look.kind {
        LookKind::Closing => "history look over the whole split".to_string(),
        LookKind::StepEnd { step } => format!("history look at the end of step {}", step + 1),
        LookKind::Interim { step } => format!("history look during step {}", step + 1),
    };
    let Some(b) = look.baseline else {
        return format!("{which}: no baseline read from before the rollout");
    };
    let window = format!(
        "{:.0}/{:.0} ({}) over {} minutes before the rollout",
        b.bad,
        b.requests,
        rate(b.bad, b.requests),
        b.minutes
    );
    match &look.skipped {
        Some(HistorySkipped::NoBaseline) => format!("{which}: no baseline read"),
        Some(HistorySkipped::TooManyEvents { per_minute, limit }) => format!(
            "{which}: skipped, {per_minute:.0} bad events a minute (limit {limit:.0})"
        ),
        Some(HistorySkipped::NoEvents) => {
            format!("{which}: no new-version bad events yet; old version {window}")
        }
        Some(HistorySkipped::Drifted {
            old_bad,
            old_requests,
            p_value,
        }) => format!(
            "{which}: skipped, the old version's own rate drifted since ({old_bad}/{old_requests:.0}, \
             {}, now vs {window}; p = {})",
            rate(*old_bad as f64, *old_requests),
            format_probability(*p_value),
        ),
        None => format!(
            "{which}: new {}/{:.0} ({}) vs old {window}; {:.1} expected at {}× that, \
             p = {} (α {}); concurrent guard {} at {}",
            look.new_bad,
            look.new_requests,
            rate(look.new_bad as f64, look.new_requests),
            look.null_mean,
            look.margin,
            format_probability(look.p_value),
            format_probability(look.alpha),
            if look.guard_rejected {
                "rejected new ≤ old"
            } else {
                "not rejected"
            },
            format_probability(look.guard_alpha),
        ),
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

/// A look skipped for too many events (a minute, or in all) in one line, with the robust
/// closing look when one was taken.
fn describe_busy_look(look: &Look, which: &str, per_minute: f64, limit: f64) -> String {
    let busy = |label: &str| {
        if per_minute > limit {
            format!("{per_minute:.0} bad events a minute ({label} {limit:.0})")
        } else {
            format!(
                "{} bad events in all ({label} {LOOKS_MAX_EVENTS})",
                look.events
            )
        }
    };
    match &look.robust {
        Some(r) => format!(
            "{which}: {}; robust t test over {} minutes: mean z {:.2}, spread {:.2}, t = {:.2}, \
             p = {} (α {})",
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

/// A scheduled look in one line: what it saw against what the null expects.
pub fn describe_look(look: &Look) -> String {
    let which = look_name(look);
    match (&look.skipped, look.critical) {
        (Some(LookSkipped::NoEvents), _) => format!("{which}: no bad events to test"),
        (Some(LookSkipped::TooManyEvents { per_minute, limit }), _) => {
            describe_busy_look(look, &which, *per_minute, *limit)
        }
        (None, Some(critical)) => format!(
            "{which}: {} of {} {}bad events from the new version, {:.1} expected at ratio {}, \
             rejects at {critical}; p = {} (α {})",
            look.new_bad,
            look.events,
            burst_scaled(look.scaled, look.divisor).map_or(String::new(), |s| s + " "),
            look.null_mean,
            look.rho0,
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

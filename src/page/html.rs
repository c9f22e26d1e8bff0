//! Text for the status page: HTML escaping (every string that reaches the page goes
//! through `esc`), link segments, and the number, time and id formats the page uses.

use crate::time::{Timestamp, MINUTE_MS};
use chrono::Timelike;

/// Escapes text for HTML element content and double- or single-quoted attributes.
/// Script names, CI messages, reasons and Cloudflare annotations all pass through here.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business on the page (and some break layout).
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A path segment for an `href`: unreserved characters as they are, everything else
/// percent-encoded (script names are validated already; this keeps it so if they change).
pub fn path_segment(text: &str) -> String {
    crate::api::percent_encode(text)
}

/// The first 8 characters of a version id, with the whole id as a tooltip.
pub fn short_id(id: &str) -> String {
    let short: String = id.chars().take(8).collect();
    format!(
        "<code class=\"id\" title=\"{}\">{}</code>",
        esc(id),
        esc(&short)
    )
}

/// A fraction as a percentage with two decimals (`0.0123` → `1.23%`).
pub fn pct(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.2}%", fraction * 100.0)
    } else {
        "n/a".to_string()
    }
}

/// `bad / total` as a percentage, or `n/a` without traffic.
pub fn rate(bad: f64, total: f64) -> String {
    if total > 0.0 {
        pct(bad / total)
    } else {
        "n/a".to_string()
    }
}

/// A sample-weighted count, rounded (counts are `SUM(_sample_interval)`, so they can be
/// fractional after scaling).
pub fn count(n: f64) -> String {
    if n.is_finite() {
        format!("{n:.0}")
    } else {
        "∞".to_string()
    }
}

/// A traffic share in percent as the deployments API gives it (`10`, `33.33`).
pub fn share(percent: f64) -> String {
    let rounded = (percent * 100.0).round() / 100.0;
    format!("{rounded}%")
}

/// `HH:MM` in UTC.
pub fn clock(at: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_millis(at.millis()) {
        Some(dt) => format!("{:02}:{:02}", dt.hour(), dt.minute()),
        None => "--:--".to_string(),
    }
}

/// A `<time>` element: `HH:MM` shown, the full RFC 3339 instant as the tooltip.
pub fn time_tag(at: Timestamp) -> String {
    format!(
        "<time datetime=\"{at}\" title=\"{at}\">{}</time>",
        clock(at)
    )
}

/// Whole minutes (or hours and minutes) as words: `7 min`, `2 h 5 min`.
pub fn minutes(mins: i64) -> String {
    let mins = mins.max(0);
    if mins < 60 {
        format!("{mins} min")
    } else {
        format!("{} h {} min", mins / 60, mins % 60)
    }
}

/// How long ago `at` was, seen from `now`: `just now`, `12 min ago`.
pub fn ago(at: Timestamp, now: Timestamp) -> String {
    let mins = now.millis_since(at).div_euclid(MINUTE_MS);
    if mins <= 0 {
        "just now".to_string()
    } else {
        format!("{} ago", minutes(mins))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(esc("a\u{0}b"), "a\u{fffd}b");
    }

    #[test]
    fn path_segment_encodes_everything_but_unreserved() {
        assert_eq!(path_segment("tenant-cache_2"), "tenant-cache_2");
        assert_eq!(path_segment("a/b?c\"d"), "a%2Fb%3Fc%22d");
    }

    #[test]
    fn formats_read_like_the_api() {
        assert_eq!(rate(3.0, 200.0), "1.50%");
        assert_eq!(rate(1.0, 0.0), "n/a");
        assert_eq!(share(33.333), "33.33%");
        assert_eq!(share(10.0), "10%");
        assert_eq!(minutes(125), "2 h 5 min");
        let t = Timestamp::from_millis(1_795_773_600_000);
        assert_eq!(clock(t), "10:00");
        assert_eq!(ago(t, t.plus_minutes(12)), "12 min ago");
    }
}

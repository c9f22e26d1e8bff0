//! Time as data: `Timestamp` (Unix epoch milliseconds) and whole-minute arithmetic.
//! The core never reads a clock; the runtime passes `now` in (the scheduled event's time).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds per minute, the gate's decision granularity.
pub const MINUTE_MS: i64 = 60_000;

/// An instant as milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from epoch milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Epoch milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The start of the minute this instant falls in.
    pub const fn floor_minute(self) -> Self {
        Timestamp(self.0.div_euclid(MINUTE_MS) * MINUTE_MS)
    }

    /// Index of the minute since the epoch (the key ticks are deduplicated on).
    pub const fn minute_index(self) -> i64 {
        self.0.div_euclid(MINUTE_MS)
    }

    /// This instant moved by `mins` minutes (negative moves back).
    pub const fn plus_minutes(self, mins: i64) -> Self {
        Timestamp(self.0 + mins * MINUTE_MS)
    }

    /// Whole milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with second precision, e.g. `2026-11-27T10:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_minute_drops_seconds_and_millis() {
        let t = Timestamp::from_millis(1_764_237_723_456); // 2025-11-27T10:02:03.456Z
        assert_eq!(t.floor_minute().millis() % MINUTE_MS, 0);
        assert_eq!(t.millis() - t.floor_minute().millis(), 3_456);
    }

    #[test]
    fn display_is_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_773_600_000).to_string(),
            "2026-11-27T10:00:00Z"
        );
    }

    #[test]
    fn minute_index_is_stable_within_a_minute() {
        let a = Timestamp::from_millis(120_000);
        let b = Timestamp::from_millis(179_999);
        assert_eq!(a.minute_index(), b.minute_index());
        assert_eq!(a.plus_minutes(1).minute_index(), a.minute_index() + 1);
    }
}

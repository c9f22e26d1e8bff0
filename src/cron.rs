//! The cron ledger: which scheduled minutes the gate has handled, so a tick delivered
//! twice (or late, out of order) is handled once. Kept by the registry Durable Object.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Ticks seen so far. Invariant: `ticks` counts distinct scheduled minutes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronLedger {
    /// Distinct scheduled minutes handled.
    pub ticks: u64,
    /// Start of the latest scheduled minute handled.
    pub last_minute: Option<Timestamp>,
    /// Ticks that arrived for a minute at or before `last_minute` and were ignored.
    pub duplicates: u64,
}

/// What the ledger made of one delivered tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TickOutcome {
    /// A new minute: the gate should run its checks for it.
    Fresh { minute: Timestamp },
    /// This minute (or a later one) was already handled: do nothing.
    Duplicate { minute: Timestamp },
}

impl CronLedger {
    /// Records a tick scheduled at `scheduled` and says whether it is new.
    pub fn record(&mut self, scheduled: Timestamp) -> TickOutcome {
        let minute = scheduled.floor_minute();
        match self.last_minute {
            Some(last) if minute <= last => {
                self.duplicates += 1;
                TickOutcome::Duplicate { minute }
            }
            _ => {
                self.ticks += 1;
                self.last_minute = Some(minute);
                TickOutcome::Fresh { minute }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_773_600_000; // 2026-11-27T10:00:00Z

    #[test]
    fn counts_each_scheduled_minute_once() {
        let mut ledger = CronLedger::default();
        let cases = [
            (T0, true),
            (T0 + 15_000, false), // same minute, redelivered
            (T0 + 60_000, true),
            (T0, false), // late duplicate of an older minute
            (T0 + 180_000, true),
        ];
        for (ms, fresh) in cases {
            let outcome = ledger.record(Timestamp::from_millis(ms));
            assert_eq!(
                matches!(outcome, TickOutcome::Fresh { .. }),
                fresh,
                "tick at {ms}"
            );
        }
        assert_eq!(ledger.ticks, 3);
        assert_eq!(ledger.duplicates, 2);
        assert_eq!(
            ledger.last_minute,
            Some(Timestamp::from_millis(T0 + 180_000))
        );
    }
}

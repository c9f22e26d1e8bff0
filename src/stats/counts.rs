//! One minute's counts of requests and bad events for the two versions serving side by side,
//! and the whole events the exact looks count from them.

use serde::{Deserialize, Serialize};

/// One minute's sample-weighted counts for the two versions serving side by side.
/// Counts are `SUM(_sample_interval)` values, so they may be non-integer after scaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairCounts {
    pub new_total: f64,
    pub new_bad: f64,
    pub old_total: f64,
    pub old_bad: f64,
}

impl PairCounts {
    /// Divides every count by the mean Analytics Engine `_sample_interval` of the minute.
    /// A sampled count of k·s from k stored rows carries about the information of k events,
    /// not k·s: feeding `SUM(_sample_interval)` straight in overstates the evidence by ×s.
    /// Intervals ≤ 1 (or not finite) leave the counts unchanged.
    pub fn per_sample(self, sample_interval: f64) -> PairCounts {
        let s = if sample_interval.is_finite() && sample_interval > 1.0 {
            sample_interval
        } else {
            1.0
        };
        PairCounts {
            new_total: self.new_total / s,
            new_bad: self.new_bad / s,
            old_total: self.old_total / s,
            old_bad: self.old_bad / s,
        }
    }

    pub(super) fn is_valid(&self) -> bool {
        [self.new_total, self.new_bad, self.old_total, self.old_bad]
            .iter()
            .all(|c| c.is_finite() && *c >= 0.0)
    }

    /// The share of the bad events that would come from the new version if its rate were
    /// `rho0` × the old one's (0 when either version served nothing).
    pub fn null_share(&self, rho0: f64) -> f64 {
        self.new_share()
            .map_or(0.0, |q| rho0 * q / (rho0 * q + 1.0 - q))
    }

    /// The new version's share of requests, when both versions served some.
    pub(crate) fn new_share(&self) -> Option<f64> {
        (self.new_total > 0.0 && self.old_total > 0.0)
            .then(|| self.new_total / (self.new_total + self.old_total))
    }

    pub(super) fn add(&mut self, other: &PairCounts) {
        self.new_total += other.new_total;
        self.new_bad += other.new_bad;
        self.old_total += other.old_total;
        self.old_bad += other.old_bad;
    }
}

/// Whole events from a (possibly sample-scaled) count, capped far above anything a look
/// would test (`MAX_EVENTS`), so sums of counts cannot overflow.
pub(super) fn round_count(count: f64) -> u64 {
    const CAP: f64 = 1e12;
    if count.is_finite() && count > 0.0 {
        count.round().min(CAP) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use crate::stats::testing::minute;

    #[test]
    fn per_sample_divides_counts_by_the_sample_interval() {
        let sampled = minute(600.0, 30.0, 5400.0, 10.0).per_sample(10.0);
        assert_eq!(sampled, minute(60.0, 3.0, 540.0, 1.0));
        assert_eq!(
            minute(1.0, 1.0, 1.0, 1.0).per_sample(0.5),
            minute(1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(
            minute(1.0, 1.0, 1.0, 1.0).per_sample(f64::NAN),
            minute(1.0, 1.0, 1.0, 1.0)
        );
    }
}

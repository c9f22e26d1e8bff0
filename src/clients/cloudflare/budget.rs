//! The gate's share of the Cloudflare API rate limit: 1,200 requests per rolling
//! 5 minutes per user, after which *every* call is blocked for 5 minutes (reference §9).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Rolling window the API limit applies to, in seconds.
const WINDOW_SECS: i64 = 300;
/// Width of one counting bucket, in seconds.
const BUCKET_SECS: i64 = 10;
/// Buckets that can overlap one window.
const MAX_BUCKETS: usize = (WINDOW_SECS / BUCKET_SECS) as usize + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    /// Start of the bucket, Unix seconds (a multiple of `BUCKET_SECS`).
    start_secs: i64,
    /// Requests recorded in it.
    count: u32,
}

/// Requests sent in the last 5 minutes ([`ApiBudget::WINDOW_SECS`]), counted in 10-second buckets so the state
/// stays small (at most 31 buckets) however busy the gate is. Conservative: a bucket
/// counts until all of it has left the window, so it may refuse up to 10 s early, never
/// late. Also remembers a 429 block.
///
/// The limit is per user/token, so keep one budget per token (in one place, e.g. the
/// registry object), not one per rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiBudget {
    /// Most requests allowed in any window.
    pub cap: u32,
    buckets: Vec<Bucket>,
    /// No request before this instant (set by a 429).
    blocked_until: Option<Timestamp>,
}

impl Default for ApiBudget {
    fn default() -> Self {
        ApiBudget::new(Self::DEFAULT_CAP)
    }
}

fn secs(t: Timestamp) -> i64 {
    t.millis().div_euclid(1_000)
}

impl ApiBudget {
    /// Rolling window the API limit applies to, in seconds.
    pub const WINDOW_SECS: i64 = WINDOW_SECS;

    /// Default cap: 1,000 of the account's 1,200, leaving room for humans and CI.
    pub const DEFAULT_CAP: u32 = 1_000;

    /// An empty budget allowing `cap` requests per window.
    pub fn new(cap: u32) -> Self {
        ApiBudget {
            cap,
            buckets: Vec::new(),
            blocked_until: None,
        }
    }

    fn in_window(bucket: &Bucket, now_secs: i64) -> bool {
        bucket.start_secs + BUCKET_SECS > now_secs - WINDOW_SECS && bucket.start_secs <= now_secs
    }

    /// Requests counted against the window ending at `now`.
    pub fn used(&self, now: Timestamp) -> u32 {
        let now_secs = secs(now);
        self.buckets
            .iter()
            .filter(|b| Self::in_window(b, now_secs))
            .fold(0u32, |acc, b| acc.saturating_add(b.count))
    }

    /// Requests that may still be sent at `now` (0 while blocked).
    pub fn remaining(&self, now: Timestamp) -> u32 {
        if self.is_blocked(now) {
            return 0;
        }
        self.cap.saturating_sub(self.used(now))
    }

    /// True when one more request fits at `now`.
    pub fn may_send(&self, now: Timestamp) -> bool {
        self.remaining(now) > 0
    }

    /// Takes one request's slot at `now`, or says until when the budget is held.
    ///
    /// # Errors
    /// The budget is spent or blocked by a 429; the message names the next allowed instant.
    pub fn take(&mut self, now: Timestamp) -> Result<(), String> {
        if !self.may_send(now) {
            return Err(format!(
                "Cloudflare API budget held until {} (rate limit)",
                self.next_allowed(now)
            ));
        }
        self.record(now);
        Ok(())
    }

    /// True while a 429 block lasts.
    pub fn is_blocked(&self, now: Timestamp) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }

    /// Counts one request sent at `now`, dropping buckets that left the window.
    pub fn record(&mut self, now: Timestamp) {
        self.record_many(now, 1);
    }

    /// Counts `n` requests sent at `now` (others' calls, reported after the fact).
    pub fn record_many(&mut self, now: Timestamp, n: u32) {
        if n == 0 {
            return;
        }
        let now_secs = secs(now);
        self.buckets.retain(|b| Self::in_window(b, now_secs));
        let start_secs = now_secs.div_euclid(BUCKET_SECS) * BUCKET_SECS;
        match self.buckets.iter_mut().find(|b| b.start_secs == start_secs) {
            Some(bucket) => bucket.count = bucket.count.saturating_add(n),
            None => self.buckets.push(Bucket {
                start_secs,
                count: n,
            }),
        }
        // A clock that jumped backwards could leave future buckets; keep the newest only.
        if self.buckets.len() > MAX_BUCKETS {
            self.buckets.sort_by_key(|b| b.start_secs);
            let excess = self.buckets.len() - MAX_BUCKETS;
            self.buckets.drain(..excess);
        }
    }

    /// Blocks every request until `now + retry_after_secs` (a 429 answer). A longer block
    /// already in place is kept.
    pub fn note_rate_limited(&mut self, now: Timestamp, retry_after_secs: u64) {
        let secs = i64::try_from(retry_after_secs).unwrap_or(i64::MAX / 2_000);
        let until = Timestamp::from_millis(now.millis().saturating_add(secs.saturating_mul(1_000)));
        self.block_until(until);
    }

    /// Gives back `n` requests counted at `at` and not sent (a grant larger than its use).
    /// Nothing happens once that bucket has left the window.
    pub fn release(&mut self, at: Timestamp, n: u32) {
        let start_secs = secs(at).div_euclid(BUCKET_SECS) * BUCKET_SECS;
        if let Some(bucket) = self.buckets.iter_mut().find(|b| b.start_secs == start_secs) {
            bucket.count = bucket.count.saturating_sub(n);
        }
    }

    /// Blocks every request until `until` (a 429 another caller saw). A longer block
    /// already in place is kept.
    pub fn block_until(&mut self, until: Timestamp) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// Until when a 429 blocks requests, if one ever did (possibly in the past).
    pub fn blocked_until(&self) -> Option<Timestamp> {
        self.blocked_until
    }

    /// The earliest instant at or after `now` when a request may be sent.
    pub fn next_allowed(&self, now: Timestamp) -> Timestamp {
        // One request never exceeds a cap of at least one; a zero cap never frees.
        self.when_remaining(now, 1).unwrap_or(now)
    }

    /// The earliest instant at or after `now` when `n` requests may be sent, counting only
    /// what leaves the window (not what others send meanwhile); `None` when `n` is over the
    /// cap, which no wait frees.
    pub fn when_remaining(&self, now: Timestamp, n: u32) -> Option<Timestamp> {
        let most_used = self.cap.checked_sub(n)?;
        let mut at = match self.blocked_until {
            Some(until) if until > now => until,
            _ => now,
        };
        // Walk buckets oldest first until enough leave the window.
        let mut live: Vec<Bucket> = self
            .buckets
            .iter()
            .copied()
            .filter(|b| Self::in_window(b, secs(at)))
            .collect();
        live.sort_by_key(|b| b.start_secs);
        let mut used: u32 = live.iter().fold(0, |acc, b| acc.saturating_add(b.count));
        for bucket in live {
            if used <= most_used {
                break;
            }
            used = used.saturating_sub(bucket.count);
            let leaves_ms = (bucket.start_secs + BUCKET_SECS + WINDOW_SECS) * 1_000;
            at = at.max(Timestamp::from_millis(leaves_ms));
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_773_600_000; // 2026-11-27T10:00:00Z

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(T0 + secs * 1_000)
    }

    #[test]
    fn refuses_once_the_cap_is_used_within_five_minutes() {
        let mut budget = ApiBudget::new(3);
        for s in [0, 1, 2] {
            assert!(budget.may_send(at(s)));
            budget.record(at(s));
        }
        assert!(!budget.may_send(at(3)));
        assert_eq!(budget.remaining(at(299)), 0);
        // The bucket [0, 10) leaves the window once all of it is older than 300 s.
        assert!(!budget.may_send(at(309)));
        assert!(budget.may_send(at(310)));
        assert_eq!(budget.next_allowed(at(3)), at(310));
    }

    #[test]
    fn n_requests_fit_once_enough_of_the_oldest_buckets_leave_the_window() {
        let mut budget = ApiBudget::new(10);
        budget.record_many(at(0), 4);
        budget.record_many(at(20), 4);
        budget.record_many(at(40), 2);
        assert_eq!(budget.when_remaining(at(50), 0), Some(at(50)));
        assert_eq!(budget.when_remaining(at(50), 3), Some(at(310)));
        assert_eq!(budget.when_remaining(at(50), 4), Some(at(310)));
        assert_eq!(budget.when_remaining(at(50), 5), Some(at(330)));
        assert_eq!(budget.when_remaining(at(50), 10), Some(at(350)));
        assert_eq!(budget.when_remaining(at(50), 11), None);
        budget.note_rate_limited(at(50), 600);
        assert_eq!(budget.when_remaining(at(50), 1), Some(at(650)));
    }

    #[test]
    fn state_stays_bounded_under_steady_traffic() {
        let mut budget = ApiBudget::new(u32::MAX);
        for s in 0..3_600 {
            budget.record(at(s));
        }
        assert!(budget.buckets.len() <= MAX_BUCKETS);
        // 31 buckets overlap the window: conservative by at most one bucket.
        assert_eq!(budget.used(at(3_599)), 310);
        let json = serde_json::to_string(&budget).expect("serializes");
        assert!(json.len() < 2_000, "{}", json.len());
    }

    #[test]
    fn a_429_blocks_everything_until_retry_after() {
        let mut budget = ApiBudget::default();
        budget.note_rate_limited(at(0), 300);
        assert!(!budget.may_send(at(299)));
        assert!(budget.may_send(at(300)));
        assert_eq!(budget.next_allowed(at(10)), at(300));
        // A shorter later block does not shorten the first.
        budget.note_rate_limited(at(10), 5);
        assert!(!budget.may_send(at(100)));
        budget.note_rate_limited(at(0), u64::MAX);
        assert!(budget.is_blocked(at(1_000_000)));
    }

    #[test]
    fn next_allowed_is_now_when_there_is_room() {
        let mut budget = ApiBudget::new(10);
        budget.record(at(0));
        assert_eq!(budget.next_allowed(at(5)), at(5));
    }

    #[test]
    fn round_trips_through_json() {
        let mut budget = ApiBudget::new(5);
        budget.record(at(1));
        budget.note_rate_limited(at(2), 30);
        let back: ApiBudget =
            serde_json::from_str(&serde_json::to_string(&budget).expect("json")).expect("parse");
        assert_eq!(back, budget);
    }
}

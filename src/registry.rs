//! The registry's book: the gate-wide state the registry Durable Object keeps (the cron
//! ledger, which scripts have an active rollout and which finished recently, Slack webhook
//! health, the queue and parity desks), and its rules. Pure; the object only loads, applies
//! and saves it (runtime/registry.rs).

use crate::controller::parity::ParityDesk;
use crate::controller::queues::QueueDesk;
use crate::cron::CronLedger;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Finished scripts remembered for listing, however many rollouts are active.
pub const RECENT_CAP: usize = 50;

/// Everything the registry keeps. A registry never stored is the empty book, and a desk it
/// stored no value for is an empty desk (`serde(default)`): the same rule.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Book {
    pub ledger: CronLedger,
    /// Script → whether its rollout needs ticks; finished ones are kept for listing.
    pub scripts: BTreeMap<String, ScriptEntry>,
    /// Slack's code when a rollout reported the webhook dead.
    pub dead_webhook: Option<String>,
    /// Queue depth watched outside rollouts.
    #[serde(default)]
    pub queues: QueueDesk,
    /// The binding parity audit's memory (what was posted, the last report).
    #[serde(default)]
    pub parity: ParityDesk,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptEntry {
    pub active: bool,
    pub last_seen_ms: i64,
}

impl Book {
    /// The scripts whose rollout needs ticks (cron fans out to these).
    pub fn active(&self) -> Vec<String> {
        self.scripts
            .iter()
            .filter(|(_, e)| e.active)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// A rollout object's report: `script` is active or finished as of `now_ms`. Every active
    /// script is kept; of the finished ones, the `RECENT_CAP` seen most recently, so a gate
    /// with many rollouts under way still lists the ones that just ended.
    pub fn note(&mut self, script: &str, active: bool, now_ms: i64) {
        self.scripts.insert(
            script.to_string(),
            ScriptEntry {
                active,
                last_seen_ms: now_ms,
            },
        );
        let mut finished: Vec<(i64, String)> = self
            .scripts
            .iter()
            .filter(|(_, e)| !e.active)
            .map(|(s, e)| (e.last_seen_ms, s.clone()))
            .collect();
        if finished.len() <= RECENT_CAP {
            return;
        }
        finished.sort();
        let excess = finished.len() - RECENT_CAP;
        for (_, script) in finished.into_iter().take(excess) {
            self.scripts.remove(&script);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_rollouts_stay_listed_while_many_are_active() {
        let mut book = Book::default();
        for i in 0..RECENT_CAP {
            book.note(&format!("done-{i:03}"), false, i as i64);
        }
        for i in 0..200 {
            book.note(&format!("busy-{i:03}"), true, 1_000 + i);
        }
        assert_eq!(book.active().len(), 200);
        let finished = book.scripts.values().filter(|e| !e.active).count();
        assert_eq!(finished, RECENT_CAP, "none dropped for the active ones");
    }

    #[test]
    fn the_oldest_finished_rollouts_go_first_and_never_an_active_one() {
        let mut book = Book::default();
        book.note("active-old", true, 0);
        for i in 0..(RECENT_CAP + 5) {
            book.note(&format!("done-{i:03}"), false, 10 + i as i64);
        }
        assert!(book.scripts.contains_key("active-old"));
        assert_eq!(book.scripts.len(), RECENT_CAP + 1);
        for i in 0..5 {
            assert!(!book.scripts.contains_key(&format!("done-{i:03}")), "{i}");
        }
        assert!(book.scripts.contains_key("done-005"));
    }

    #[test]
    fn a_finished_script_that_starts_again_is_active() {
        let mut book = Book::default();
        book.note("shop", false, 1);
        book.note("shop", true, 2);
        assert_eq!(book.active(), vec!["shop".to_string()]);
    }
}

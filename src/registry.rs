//! The registry's book: the gate-wide state the registry Durable Object keeps (the cron
//! ledger, which scripts have an active rollout and which finished recently, Slack webhook
//! health, the queue and parity desks), and its rules. Pure; the object only loads, applies
//! and saves it (runtime/registry.rs).

use crate::api::ListQuery;
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
    /// The phase's tag (`Phase::tag`) as of the rollout's latest report (a start or a tick;
    /// an operator's command shows from the next tick). A book stored before phases were
    /// kept has none: such a script is listed unfiltered and matches no `phase` filter.
    #[serde(default)]
    pub phase: Option<String>,
}

/// One page of `GET /v1/rollouts`: the scripts to show, in name order, and where the next
/// page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub scripts: Vec<String>,
    pub next_cursor: Option<String>,
    /// Scripts matching the filters, on every page.
    pub matching: usize,
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
    pub fn note(&mut self, script: &str, active: bool, phase: Option<&str>, now_ms: i64) {
        self.scripts.insert(
            script.to_string(),
            ScriptEntry {
                active,
                last_seen_ms: now_ms,
                phase: phase.map(str::to_string),
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

impl Book {
    /// The page of scripts `query` asks for: those matching its filters, in name order,
    /// after its cursor, at most its limit. Read from the book alone, so a page costs one
    /// object call per script shown, however many rollouts there are.
    pub fn list(&self, query: &ListQuery) -> Listing {
        let matches = |(script, entry): &(&String, &ScriptEntry)| {
            query.active.is_none_or(|a| entry.active == a)
                && query
                    .phase
                    .as_ref()
                    .is_none_or(|p| entry.phase.as_ref() == Some(p))
                && query
                    .script
                    .as_ref()
                    .is_none_or(|prefix| script.starts_with(prefix.as_str()))
        };
        let matching: Vec<&String> = self
            .scripts
            .iter()
            .filter(matches)
            .map(|(script, _)| script)
            .collect();
        let after = |script: &&&String| {
            query
                .cursor
                .as_ref()
                .is_none_or(|cursor| script.as_str() > cursor.as_str())
        };
        let mut page: Vec<String> = matching
            .iter()
            .filter(after)
            .take(query.limit + 1)
            .map(|s| (*s).clone())
            .collect();
        let next_cursor = (page.len() > query.limit).then(|| {
            page.truncate(query.limit);
            page.last().cloned().unwrap_or_default()
        });
        Listing {
            scripts: page,
            next_cursor,
            matching: matching.len(),
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
            book.note(&format!("done-{i:03}"), false, Some("completed"), i as i64);
        }
        for i in 0..200 {
            book.note(&format!("busy-{i:03}"), true, Some("ramping"), 1_000 + i);
        }
        assert_eq!(book.active().len(), 200);
        let finished = book.scripts.values().filter(|e| !e.active).count();
        assert_eq!(finished, RECENT_CAP, "none dropped for the active ones");
    }

    #[test]
    fn the_oldest_finished_rollouts_go_first_and_never_an_active_one() {
        let mut book = Book::default();
        book.note("active-old", true, Some("paused"), 0);
        for i in 0..(RECENT_CAP + 5) {
            book.note(
                &format!("done-{i:03}"),
                false,
                Some("rolled_back"),
                10 + i as i64,
            );
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
        book.note("shop", false, Some("completed"), 1);
        book.note("shop", true, Some("ramping"), 2);
        assert_eq!(book.active(), vec!["shop".to_string()]);
    }

    fn query(q: &str) -> ListQuery {
        crate::api::parse_list_query(Some(q), crate::api::LIST_PAGE_DEFAULT).expect("a valid query")
    }

    fn book_of_200_active_and_50_finished() -> Book {
        let mut book = Book::default();
        for i in 0..200 {
            let phase = if i % 4 == 0 { "baking" } else { "ramping" };
            book.note(&format!("svc-{i:03}"), true, Some(phase), i);
        }
        for i in 0..RECENT_CAP {
            book.note(
                &format!("old-{i:03}"),
                false,
                Some("completed"),
                500 + i as i64,
            );
        }
        book
    }

    #[test]
    fn pages_walk_every_matching_script_once_in_name_order() {
        let book = book_of_200_active_and_50_finished();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => query(&format!("limit=64&active=true&cursor={c}")),
                None => query("limit=64&active=true"),
            };
            let page = book.list(&q);
            assert_eq!(page.matching, 200);
            assert!(page.scripts.len() <= 64);
            seen.extend(page.scripts);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted, "in name order, none twice");
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn filters_select_by_phase_name_prefix_and_activity() {
        let book = book_of_200_active_and_50_finished();
        assert_eq!(book.list(&query("phase=baking&limit=200")).matching, 50);
        assert_eq!(book.list(&query("phase=completed")).matching, RECENT_CAP);
        assert_eq!(book.list(&query("active=false")).matching, RECENT_CAP);
        let page = book.list(&query("script=svc-19&limit=5"));
        assert_eq!(page.matching, 10, "svc-190 to svc-199");
        assert_eq!(
            page.scripts,
            ["svc-190", "svc-191", "svc-192", "svc-193", "svc-194"]
        );
        assert_eq!(page.next_cursor.as_deref(), Some("svc-194"));
        let last = book.list(&query("script=svc-19&limit=5&cursor=svc-198"));
        assert_eq!((last.scripts.len(), last.next_cursor), (1, None));
    }
}

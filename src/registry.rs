//! The registry's book: the gate-wide state the registry Durable Object keeps (the cron
//! ledger, which scripts have an active rollout and which finished recently, the account's
//! Cloudflare API budget and each tick's share of it, Slack webhook health, the queue and
//! parity desks), and its rules. Pure; the object only loads, applies and saves it
//! (runtime/registry.rs).

use crate::api::ListQuery;
use crate::clients::analytics::batch::{CountsBatch, PlannedCounts};
use crate::clients::cloudflare::ApiBudget;
use crate::controller::parity::ParityDesk;
use crate::controller::queues::QueueDesk;
use crate::cron::CronLedger;
use crate::observe::CountsQuery;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most Cloudflare API calls one rollout's tick is granted, however much of the budget is
/// free: a tick needs at most a read, the counts, history and queue queries, a write and
/// its re-send, or a pre-flight's handful.
pub const TICK_API_CALLS_MAX: u32 = 10;

/// Cloudflare API calls a deploy hook leaves in the budget for each active rollout: a new
/// rollout starts only while the rollouts already running keep about two calls each for
/// their next 5 minutes of ticks (a quiet one reads its deployment once in 5 minutes and
/// shares a counts query; one mid-step reads, writes and confirms). Operator commands take
/// from it: an abort must not wait for a start. docs/scale.md, "Within Cloudflare's API
/// rate limit".
pub const TICK_RESERVE_PER_ROLLOUT: u32 = 2;

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
    /// The account's Cloudflare API budget (1,000 of the 1,200 requests per 5 minutes
    /// Cloudflare allows each token, reference §9): every call the gate makes, from any
    /// rollout, the registry's own desks, hooks and commands, is counted here.
    #[serde(default)]
    pub api: ApiBudget,
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
    /// The counts query the rollout planned for its next tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_counts: Option<PlannedCounts>,
}

/// A rollout object's report after a hook or a tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptReport {
    pub script: String,
    pub active: bool,
    /// The rollout's phase tag after the call (`None` before its object has answered).
    pub phase: Option<String>,
    pub dead_webhook: Option<String>,
    pub now_ms: i64,
    /// What the call did to the account's API budget, and the counts query planned next.
    #[serde(default)]
    pub account: AccountUse,
}

/// What a hook's, tick's or command's call did to the account's Cloudflare API budget, and
/// the counts query its rollout plans for the next tick: the rollout object reports it
/// (`controller::Report`) and the registry books it (`ScriptReport`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountUse {
    /// Cloudflare API calls the call made (Analytics Engine SQL included).
    #[serde(default)]
    pub api_calls: u32,
    /// A 429 the call saw blocks every API call until then (`retry-after`).
    #[serde(default)]
    pub rate_limited_until: Option<Timestamp>,
    /// The counts query the next minute's tick will ask for, unless something changes the
    /// rollout first (kept so the next cron run can answer it in one query with every
    /// other rollout's).
    #[serde(default)]
    pub next_counts: Option<PlannedCounts>,
}

/// The account's API budget as `/healthz` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiUse {
    /// Calls counted in the 5 minutes up to the latest tick (or the wall clock, if later).
    pub calls_last_5_min: u32,
    /// The most the gate allows itself in any 5 minutes.
    pub cap: u32,
    /// A 429 blocks every call until then.
    pub blocked_until: Option<Timestamp>,
}

/// Calls of the account's budget taken for a hook or a command, and when they were counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub granted: u32,
    pub at: Timestamp,
    /// A deploy hook granted nothing: until when the budget is short, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<BudgetWait>,
}

/// Why a deploy hook must wait for the account's API budget, for its 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetWait {
    /// When enough calls will have left the window (if others take none meanwhile).
    pub until: Timestamp,
    pub calls_last_5_min: u32,
    pub cap: u32,
    /// Calls kept for the active rollouts' ticks.
    pub reserved: u32,
}

impl BudgetWait {
    /// Whole seconds from `now` until `until`, at least 1 (a `Retry-After`).
    pub fn retry_after_secs(&self, now: Timestamp) -> u64 {
        let ms = self.until.millis().saturating_sub(now.millis()).max(0);
        u64::try_from(ms.div_euclid(1_000) + i64::from(ms % 1_000 != 0))
            .unwrap_or(0)
            .max(1)
    }

    /// The refusal as the deploy hook's caller reads it.
    pub fn message(&self, now: Timestamp) -> String {
        format!(
            "the gate's share of Cloudflare's API rate limit is in use: {} of {} calls in the \
             last 5 minutes, and {} kept for the ticks of the rollouts already running; \
             retry after {} s",
            self.calls_last_5_min,
            self.cap,
            self.reserved,
            self.retry_after_secs(now)
        )
    }
}

/// One rollout's tick as the registry planned it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedTick {
    pub script: String,
    /// Its share of the account's API budget for this tick.
    pub api_calls: u32,
    /// The counts query it planned for this minute, when a shared batch answers it.
    pub counts: Option<CountsQuery>,
}

/// What one fresh cron minute does: the shared counts queries (already counted against the
/// account's budget) and each active rollout's tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TickPlan {
    pub batches: Vec<CountsBatch>,
    pub ticks: Vec<PlannedTick>,
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
                next_counts: None,
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
    /// Plans the ticks of the minute of `now`. The rollouts' planned counts queries are
    /// grouped into shared batches, counted against the account's budget first (one call
    /// answers up to 50 rollouts); what is left of the budget is split evenly among the
    /// active rollouts (at most [`TICK_API_CALLS_MAX`] each), the remainder going to a
    /// different few each minute so none starves. The shares never add up to more than the
    /// budget has left, so the gate stays within it even if every tick spends its share.
    pub fn plan_tick(&mut self, now: Timestamp) -> TickPlan {
        let minute = now.floor_minute();
        let active: Vec<(&String, &ScriptEntry)> =
            self.scripts.iter().filter(|(_, e)| e.active).collect();
        let planned = |e: &ScriptEntry| {
            e.next_counts
                .as_ref()
                .filter(|p| p.minute == minute)
                .map(|p| p.query.clone())
        };
        let queries: Vec<CountsQuery> = active.iter().filter_map(|(_, e)| planned(e)).collect();
        let mut batches = CountsBatch::group(&queries);
        let mut remaining = self.api.remaining(now);
        batches.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        let shared = u32::try_from(batches.len()).unwrap_or(u32::MAX);
        remaining -= shared;
        let n = u32::try_from(active.len()).unwrap_or(u32::MAX).max(1);
        let (base, extra) = (remaining / n, remaining % n);
        let first =
            u32::try_from(minute.millis().div_euclid(60_000).rem_euclid(i64::from(n))).unwrap_or(0);
        let ticks = active
            .iter()
            .zip(0u32..)
            .map(|((script, entry), i)| {
                let turn = (i + n - first) % n;
                let counts = planned(entry).filter(|q| batches.iter().any(|b| b.covers(q)));
                PlannedTick {
                    script: (*script).clone(),
                    api_calls: (base + u32::from(turn < extra)).min(TICK_API_CALLS_MAX),
                    counts,
                }
            })
            .collect();
        self.api.record_many(now, shared);
        TickPlan { batches, ticks }
    }

    /// Takes up to `wanted` calls of the account's budget at `now` for an operator command,
    /// counted at once (two calls at the same moment must not both count on the same
    /// calls); what the call did not use comes back through [`Book::release`].
    pub fn grant(&mut self, now: Timestamp, wanted: u32) -> Grant {
        let at = self.budget_clock(now);
        let granted = wanted.min(self.api.remaining(at));
        self.api.record_many(at, granted);
        Grant {
            granted,
            at,
            wait: None,
        }
    }

    /// Takes `wanted` calls for a deploy hook, all or none: only while the budget keeps
    /// [`TICK_RESERVE_PER_ROLLOUT`] calls per active rollout beyond them, so starts never
    /// take the calls running rollouts need. None: the grant says until when to wait.
    pub fn grant_start(&mut self, now: Timestamp, wanted: u32) -> Grant {
        let at = self.budget_clock(now);
        let active = self.scripts.values().filter(|e| e.active).count();
        let reserved = u32::try_from(active)
            .unwrap_or(u32::MAX)
            .saturating_mul(TICK_RESERVE_PER_ROLLOUT);
        let needed = wanted.saturating_add(reserved);
        if self.api.remaining(at) >= needed {
            self.api.record_many(at, wanted);
            return Grant {
                granted: wanted,
                at,
                wait: None,
            };
        }
        // A reserve over the cap frees only as rollouts end: ask again in a minute.
        let until = self
            .api
            .when_remaining(at, needed)
            .unwrap_or(Timestamp::from_millis(at.millis() + 60_000));
        Grant {
            granted: 0,
            at,
            wait: Some(BudgetWait {
                until,
                calls_last_5_min: self.api.used(at),
                cap: self.api.cap,
                reserved,
            }),
        }
    }

    /// The instant a hook's or command's calls are counted at. Hooks and commands run on
    /// the wall clock, ticks on the scheduled time, and tests replay ticks ahead of the
    /// wall clock: count at the later of the two, so a hook never lands behind the
    /// budget's newest bucket (which would drop it).
    fn budget_clock(&self, now: Timestamp) -> Timestamp {
        self.ledger.last_minute.map_or(now, |last| now.max(last))
    }

    /// Gives back what a grant's call did not use (or counts what it used beyond it, which
    /// the allowance should make impossible).
    pub fn release(&mut self, grant: Grant, used: u32) {
        match used.checked_sub(grant.granted) {
            Some(over) => self.api.record_many(grant.at, over),
            None => self.api.release(grant.at, grant.granted - used),
        }
    }

    /// The account's budget as of `now` (or the latest tick, if later).
    pub fn api_use(&self, now: Timestamp) -> ApiUse {
        let now = self.ledger.last_minute.map_or(now, |last| now.max(last));
        ApiUse {
            calls_last_5_min: self.api.used(now),
            cap: self.api.cap,
            blocked_until: self.api.blocked_until().filter(|&until| now < until),
        }
    }

    /// Books a rollout's report: whether it still needs ticks, its phase, the API calls it
    /// made (counted at the report's time), a 429 it saw (which blocks everyone), the counts
    /// query it planned next, and the Slack webhook's health.
    pub fn settle(&mut self, report: &ScriptReport) {
        let at = Timestamp::from_millis(report.now_ms);
        self.note(
            &report.script,
            report.active,
            report.phase.as_deref(),
            report.now_ms,
        );
        if let Some(entry) = self.scripts.get_mut(&report.script) {
            entry.next_counts = report.account.next_counts.clone();
        }
        self.api.record_many(at, report.account.api_calls);
        if let Some(until) = report.account.rate_limited_until {
            self.api.block_until(until);
        }
        if report.dead_webhook.is_some() || report.active {
            self.dead_webhook = report.dead_webhook.clone();
        }
    }

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

/// Fixtures the registry's tests and the cron handler's share: a minute, a rollout's
/// planned counts query, a book of active rollouts that planned theirs.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{AccountUse, Book, PlannedCounts, ScriptReport};
    use crate::observe::CountsQuery;
    use crate::time::Timestamp;

    const T0: i64 = 1_795_773_600_000; // 2026-11-27T10:00:00Z

    pub(crate) fn minute(m: i64) -> Timestamp {
        Timestamp::from_millis(T0 + m * 60_000)
    }

    pub(crate) fn counts(n: u32) -> CountsQuery {
        let uuid = |k: u32| format!("{k:08x}-0000-4000-8000-000000000000");
        CountsQuery {
            new_version: uuid(2 * n),
            old_version: uuid(2 * n + 1),
            from: minute(7),
            to: minute(8),
            latency_from: minute(3),
            slow_above_ms: 250.0,
            very_slow_above_ms: 1000.0,
            approach_above_ms: 125.0,
        }
    }

    /// `n` active rollouts that each planned their counts for the tick of minute 10.
    pub(crate) fn book_of_active(n: u32) -> Book {
        let mut book = Book::default();
        for i in 0..n {
            book.settle(&ScriptReport {
                script: format!("svc-{i:03}"),
                active: true,
                phase: Some("ramping".into()),
                now_ms: minute(9).millis(),
                account: AccountUse {
                    next_counts: Some(PlannedCounts {
                        minute: minute(10),
                        query: counts(i),
                    }),
                    ..AccountUse::default()
                },
                ..ScriptReport::default()
            });
        }
        book
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{book_of_active, minute};
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

    #[test]
    fn two_hundred_rollouts_share_four_counts_queries_and_the_shares_fit_the_budget() {
        let mut book = book_of_active(200);
        let plan = book.plan_tick(Timestamp::from_millis(minute(10).millis() + 3_000));
        assert_eq!(plan.batches.len(), 4, "50 rollouts per query");
        assert_eq!(plan.ticks.len(), 200);
        assert!(plan.ticks.iter().all(|t| t.counts.is_some()));
        let shares: u32 = plan.ticks.iter().map(|t| t.api_calls).sum();
        let cap = book.api.cap;
        assert_eq!(
            book.api.used(minute(10)),
            4,
            "the shared queries are counted"
        );
        assert!(shares + 4 <= cap, "{shares} + 4 > {cap}");
        assert!(plan.ticks.iter().all(|t| t.api_calls >= 1));
    }

    #[test]
    fn a_query_planned_for_another_minute_is_not_shared() {
        let mut book = book_of_active(3);
        let plan = book.plan_tick(minute(11));
        assert!(plan.batches.is_empty());
        assert!(plan.ticks.iter().all(|t| t.counts.is_none()));
    }

    #[test]
    fn reported_calls_count_against_the_budget_and_a_429_blocks_every_share() {
        let mut book = book_of_active(10);
        let report = ScriptReport {
            script: "svc-000".into(),
            active: true,
            now_ms: minute(10).millis(),
            account: AccountUse {
                api_calls: 995,
                ..AccountUse::default()
            },
            ..ScriptReport::default()
        };
        book.settle(&report);
        let plan = book.plan_tick(minute(11));
        let shares: u32 = plan.ticks.iter().map(|t| t.api_calls).sum();
        assert_eq!(
            shares, 5,
            "the last five calls of the window are shared out"
        );
        assert_eq!(plan.ticks.iter().filter(|t| t.api_calls == 1).count(), 5);
        book.settle(&ScriptReport {
            account: AccountUse {
                rate_limited_until: Some(minute(16)),
                ..AccountUse::default()
            },
            ..report
        });
        let plan = book.plan_tick(minute(15));
        assert!(plan.ticks.iter().all(|t| t.api_calls == 0));
        assert_eq!(
            book.grant(minute(15), 4).granted,
            0,
            "a hook gets nothing while blocked"
        );
    }

    #[test]
    fn the_spare_calls_go_to_different_rollouts_each_minute() {
        let mut book = book_of_active(7);
        let mut lucky = std::collections::BTreeSet::new();
        for m in 0..7 {
            let budget = book.api.cap;
            book.api = ApiBudget::new(budget);
            // 3 calls left for 7 rollouts: three get one, four get none.
            book.api.record_many(minute(20 + m), budget - 3);
            let plan = book.plan_tick(minute(20 + m));
            for t in plan.ticks.iter().filter(|t| t.api_calls > 0) {
                lucky.insert(t.script.clone());
            }
        }
        assert_eq!(lucky.len(), 7, "every rollout gets a turn");
    }

    #[test]
    fn a_hook_is_granted_what_is_left_counted_at_once_and_gives_back_what_it_did_not_use() {
        let mut book = Book::default();
        let first = book.grant(minute(0), 10);
        assert_eq!(first.granted, 10);
        assert_eq!(book.api.used(minute(0)), 10);
        book.api.record_many(minute(0), book.api.cap - 14);
        let second = book.grant(minute(0), 10);
        assert_eq!(second.granted, 4);
        book.release(first, 3);
        book.release(second, 4);
        assert_eq!(book.api.used(minute(0)), book.api.cap - 14 + 3 + 4);
    }

    #[test]
    fn a_hook_starts_only_while_two_calls_per_active_rollout_stay_in_hand_and_is_told_when_to_come_back(
    ) {
        let mut book = Book::default();
        for i in 0..100 {
            book.note(&format!("svc-{i:03}"), true, Some("ramping"), 0);
        }
        book.note("done", false, Some("completed"), 0);
        let reserved = 100 * TICK_RESERVE_PER_ROLLOUT;
        book.api
            .record_many(minute(0), book.api.cap - reserved - 10);
        let start = book.grant_start(minute(1), 10);
        assert_eq!((start.granted, start.wait), (10, None));
        assert_eq!(book.api.used(minute(1)), book.api.cap - reserved);

        let refused = book.grant_start(minute(1), 10);
        assert_eq!(refused.granted, 0);
        assert_eq!(
            book.api.used(minute(1)),
            book.api.cap - reserved,
            "nothing counted"
        );
        let wait = refused.wait.expect("a refusal says how long to wait");
        // The calls counted at minute 0 leave the window 5 minutes and one bucket later.
        assert_eq!(
            wait.until,
            Timestamp::from_millis(minute(5).millis() + 10_000)
        );
        assert_eq!(wait.retry_after_secs(minute(1)), 250);
        assert_eq!(wait.reserved, reserved);
        assert!(
            wait.message(minute(1)).contains("retry after 250 s"),
            "{}",
            wait.message(minute(1))
        );

        // An operator command is not held back by the reserve.
        assert_eq!(book.grant(minute(1), 4).granted, 4);
    }

    #[test]
    fn a_reserve_larger_than_the_cap_asks_the_hook_back_in_a_minute() {
        let mut book = Book::default();
        for i in 0..600 {
            book.note(&format!("svc-{i:03}"), true, Some("ramping"), 0);
        }
        let refused = book.grant_start(minute(3), 10);
        assert_eq!(refused.granted, 0);
        assert_eq!(refused.wait.map(|w| w.until), Some(minute(4)));
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

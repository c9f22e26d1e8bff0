//! `RolloutStore` over a rollout Durable Object's storage: the rollout under one key, the
//! audit log and the action log as SQLite tables (one row per event, one per action).

use super::json;
use crate::config::AuditRetention;
use crate::controller::{ActionRecord, RolloutStore, StoreError, StoredRollout};
use crate::rollout::{schema, AuditEvent};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use worker::{AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset, SqlStorageValue, State};

const ROLLOUT_KEY: &str = "rollout";
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  version_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL
);";

/// One audit-log row as the events API returns it.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventRow {
    pub seq: i64,
    pub event: serde_json::Value,
}

#[derive(Deserialize)]
struct RowCount {
    n: i64,
}

#[derive(Deserialize)]
struct RawEventRow {
    seq: i64,
    body: String,
}

/// The storage of one rollout object, plus the gate's telemetry dataset (each audit
/// event also becomes one Analytics Engine point, see `telemetry`).
pub struct DoStore<'a> {
    state: &'a State,
    telemetry: Option<(AnalyticsEngineDataset, String)>,
}

fn storage_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl<'a> DoStore<'a> {
    /// Opens the store, creating the tables on first use.
    pub fn open(
        state: &'a State,
        telemetry: Option<(AnalyticsEngineDataset, String)>,
    ) -> Result<Self, StoreError> {
        state
            .storage()
            .sql()
            .exec(SCHEMA, None)
            .map_err(storage_error)?;
        Ok(DoStore { state, telemetry })
    }

    /// Writes the event's telemetry point. Analytics Engine writes are fire-and-forget
    /// (and no-ops under `wrangler dev`); a failure is logged, never fatal.
    fn write_telemetry(&self, event: &AuditEvent) {
        let Some((dataset, environment)) = &self.telemetry else {
            return;
        };
        let point = crate::telemetry::decision_point(environment, event);
        let written = AnalyticsEngineDataPointBuilder::new()
            .indexes([point.index.as_str()])
            .blobs(point.blobs)
            .doubles(point.doubles)
            .write_to(dataset);
        if let Err(err) = written {
            worker::console_warn!("telemetry point not written: {err}");
        }
    }

    /// The newest `limit` audit events of `version_id`, oldest first (for the pages).
    pub fn latest_events(
        &self,
        version_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let cursor = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT seq, body FROM (SELECT seq, body FROM events WHERE version_id = ? \
                 ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                Some(vec![
                    SqlStorageValue::from(version_id.to_string()),
                    SqlStorageValue::from(i64::from(limit)),
                ]),
            )
            .map_err(storage_error)?;
        let rows: Vec<RawEventRow> = json::rows(cursor).map_err(storage_error)?;
        rows.into_iter()
            .map(|r| schema::decode_event(&r.body).map_err(storage_error))
            .collect()
    }

    /// Audit events with sequence number above `after`, oldest first, at most `limit`.
    pub fn events(&self, after: u64, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let cursor = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                Some(vec![
                    SqlStorageValue::from(after as i64),
                    SqlStorageValue::from(i64::from(limit)),
                ]),
            )
            .map_err(storage_error)?;
        let rows: Vec<RawEventRow> = json::rows(cursor).map_err(storage_error)?;
        rows.into_iter()
            .map(|r| {
                let event = serde_json::from_str(&r.body).map_err(storage_error)?;
                Ok(EventRow { seq: r.seq, event })
            })
            .collect()
    }
}

impl DoStore<'_> {
    /// Inserts audit rows (synchronous SQL; see `save` for why that matters).
    fn insert_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let sql = self.state.storage().sql();
        for event in events {
            let body = serde_json::to_string(event).map_err(storage_error)?;
            let kind = event.kind.tag();
            sql.exec(
                "INSERT INTO events (at_ms, version_id, kind, body) VALUES (?, ?, ?, ?)",
                Some(vec![
                    SqlStorageValue::from(event.at.millis()),
                    SqlStorageValue::from(event.version_id.clone()),
                    SqlStorageValue::from(kind),
                    SqlStorageValue::from(body),
                ]),
            )
            .map_err(storage_error)?;
            self.write_telemetry(event);
        }
        Ok(())
    }
}

impl RolloutStore for DoStore<'_> {
    async fn load(&self) -> Result<Option<StoredRollout>, StoreError> {
        let raw: Option<String> = json::get(&self.state.storage(), ROLLOUT_KEY)
            .await
            .map_err(storage_error)?;
        raw.map(|json| schema::decode(&json).map_err(storage_error))
            .transpose()
    }

    async fn save(&self, rollout: &StoredRollout, events: &[AuditEvent]) -> Result<(), StoreError> {
        // Stored as a JSON string: infinite e-values and bounds survive (see stats).
        let json = serde_json::to_string(rollout).map_err(storage_error)?;
        // Atomic: the event rows are inserted synchronously and the rollout's `put` is
        // issued in the same turn, with no await in between (an async fn's body first runs
        // when polled). A Durable Object commits writes made without an intervening await
        // together ("automatic write coalescing": Cloudflare's blog "Durable Objects: Easy,
        // Fast, Correct — Choose Three"; on SQLite-backed objects the KV API is a table of
        // the same database: developers.cloudflare.com/durable-objects/api/storage-api),
        // and the output gate holds every outgoing request until they are durable.
        self.insert_events(events)?;
        self.state
            .storage()
            .put_raw(ROLLOUT_KEY, json)
            .await
            .map_err(storage_error)
    }

    async fn prune(
        &self,
        keep: AuditRetention,
        current: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let cutoff = now.millis() - i64::from(keep.days) * 86_400_000;
        let rows = || -> Result<i64, StoreError> {
            let cursor = self
                .state
                .storage()
                .sql()
                .exec(
                    "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM actions) AS n",
                    None,
                )
                .map_err(storage_error)?;
            let count: Vec<RowCount> = json::rows(cursor).map_err(storage_error)?;
            Ok(count.first().map_or(0, |c| c.n))
        };
        let before = rows()?;
        // Synchronous SQL, as `insert_events`: each statement has run when `exec` returns
        // (the INSERTs above rely on the same; a statement that returns no rows has nothing
        // left to step through).
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM events WHERE version_id <> ? AND (at_ms < ? OR version_id NOT IN \
             (SELECT version_id FROM events GROUP BY version_id ORDER BY MAX(seq) DESC LIMIT ?))",
            Some(vec![
                SqlStorageValue::from(current.to_string()),
                SqlStorageValue::from(cutoff),
                SqlStorageValue::from(i64::from(keep.rollouts)),
            ]),
        )
        .map_err(storage_error)?;
        sql.exec(
            "DELETE FROM actions WHERE at_ms < ?",
            Some(vec![SqlStorageValue::from(cutoff)]),
        )
        .map_err(storage_error)?;
        Ok(u64::try_from(before - rows()?).unwrap_or(0))
    }

    async fn append_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        self.state
            .storage()
            .sql()
            .exec(
                "INSERT INTO actions (at_ms, action, outcome) VALUES (?, ?, ?)",
                Some(vec![
                    SqlStorageValue::from(record.at.millis()),
                    SqlStorageValue::from(record.action.clone()),
                    SqlStorageValue::from(record.outcome.clone()),
                ]),
            )
            .map_err(storage_error)?;
        Ok(())
    }
}

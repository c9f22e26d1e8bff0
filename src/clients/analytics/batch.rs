//! One Analytics Engine query for the counts of many rollouts: which rollouts' planned
//! queries one query answers, its SQL, and each rollout's share of the answer. The cron
//! handler runs one such query a minute for every active rollout instead of one query per
//! rollout, because every rollout shares the account's 1,200 API requests per 5 minutes
//! (platform reference §9; the SQL API counts against it, §2).

use super::{build_http_query, AnalyticsError, Columns, HttpRow, LatencyThresholds};
use crate::observe::CountsQuery;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A rollout's counts query as planned for its tick of `minute` (the rollout reports it
/// after each tick; the registry keeps it until that tick).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedCounts {
    /// The scheduled minute of the tick the query was planned for.
    pub minute: Timestamp,
    pub query: CountsQuery,
}

/// One query over `versions` for `[from, to)` with one set of latency thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountsBatch {
    /// Version ids, in the order first planned, without repeats.
    pub versions: Vec<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub thresholds: LatencyThresholds,
}

/// What one rollout's tick is handed: the batch that answered for it, cut down to its two
/// versions, and the answer (its rows, or why there are none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedCounts {
    pub batch: CountsBatch,
    pub answer: Result<Vec<HttpRow>, String>,
}

/// A batch's answer by version id (lowercase), so each rollout's share is two lookups.
#[derive(Clone, Debug, PartialEq)]
pub struct ByVersion(Result<BTreeMap<String, Vec<HttpRow>>, String>);

impl ByVersion {
    /// Sorts an answer's rows by version.
    pub fn of(answer: &Result<Vec<HttpRow>, String>) -> Self {
        ByVersion(answer.as_ref().map_err(Clone::clone).map(|rows| {
            let mut by: BTreeMap<String, Vec<HttpRow>> = BTreeMap::new();
            for row in rows {
                by.entry(row.version.to_ascii_lowercase())
                    .or_default()
                    .push(row.clone());
            }
            by
        }))
    }

    fn rows(&self, versions: [&str; 2]) -> Result<Vec<HttpRow>, String> {
        let by = self.0.as_ref().map_err(Clone::clone)?;
        let mut rows = Vec::new();
        for v in versions {
            rows.extend(
                by.get(&v.to_ascii_lowercase())
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        Ok(rows)
    }
}

fn thresholds(query: &CountsQuery) -> LatencyThresholds {
    LatencyThresholds {
        slow_ms: query.slow_above_ms,
        very_slow_ms: query.very_slow_above_ms,
        approach_ms: query.approach_above_ms,
    }
}

/// The first minute a query reads: its new minutes or its trailing latency window.
fn first_minute(query: &CountsQuery) -> Timestamp {
    query.from.min(query.latency_from)
}

impl CountsBatch {
    /// Most rollouts one query covers. It bounds the SQL text (two quoted UUIDs each) and
    /// the answer (a row per version and minute of the trailing window): 50 rollouts with a
    /// 10-minute window answer about 1,000 rows. No documented limit of the SQL API was
    /// found for either; this is a choice, not a platform fact.
    pub const MAX_ROLLOUTS: usize = 50;

    /// The batch of one query alone.
    pub fn of(query: &CountsQuery) -> Self {
        CountsBatch {
            versions: vec![query.new_version.clone(), query.old_version.clone()],
            from: first_minute(query),
            to: query.to,
            thresholds: thresholds(query),
        }
    }

    /// The batches that answer `queries`: queries with the same end and thresholds share
    /// one, at most [`Self::MAX_ROLLOUTS`] each, starting at the earliest minute any of them
    /// reads. Deterministic: the same queries in the same order give the same batches.
    pub fn group<'a>(queries: impl IntoIterator<Item = &'a CountsQuery>) -> Vec<CountsBatch> {
        let mut batches: Vec<(CountsBatch, usize)> = Vec::new();
        for query in queries {
            let fits = |(b, n): &&mut (CountsBatch, usize)| {
                *n < Self::MAX_ROLLOUTS && b.to == query.to && b.thresholds == thresholds(query)
            };
            match batches.iter_mut().find(fits) {
                Some((batch, n)) => {
                    batch.from = batch.from.min(first_minute(query));
                    for v in [&query.new_version, &query.old_version] {
                        if !batch
                            .versions
                            .iter()
                            .any(|have| have.eq_ignore_ascii_case(v))
                        {
                            batch.versions.push(v.clone());
                        }
                    }
                    *n += 1;
                }
                None => batches.push((Self::of(query), 1)),
            }
        }
        batches.into_iter().map(|(batch, _)| batch).collect()
    }

    /// True when this batch's answer holds everything `query` asks for: both its versions,
    /// the same end and thresholds, and every minute from the first it reads.
    pub fn covers(&self, query: &CountsQuery) -> bool {
        let has = |v: &str| {
            self.versions
                .iter()
                .any(|have| have.eq_ignore_ascii_case(v))
        };
        has(&query.new_version)
            && has(&query.old_version)
            && self.to == query.to
            && self.thresholds == thresholds(query)
            && self.from <= first_minute(query)
    }

    /// The SQL text of this batch ([`build_http_query`] over all its versions).
    ///
    /// # Errors
    /// As [`build_http_query`].
    pub fn sql(&self, dataset: &str, columns: &Columns) -> Result<String, AnalyticsError> {
        let versions: Vec<&str> = self.versions.iter().map(String::as_str).collect();
        build_http_query(
            dataset,
            columns,
            &versions,
            self.from,
            self.to,
            self.thresholds,
        )
    }

    /// `query`'s share of this batch's answer (sorted by [`ByVersion::of`]): the batch cut
    /// to its two versions and their rows. `None` when this batch does not cover `query`.
    pub fn share(&self, query: &CountsQuery, answer: &ByVersion) -> Option<SharedCounts> {
        if !self.covers(query) {
            return None;
        }
        let versions = [query.new_version.as_str(), query.old_version.as_str()];
        Some(SharedCounts {
            batch: CountsBatch {
                versions: versions.iter().map(|v| (*v).to_string()).collect(),
                from: self.from,
                to: self.to,
                thresholds: self.thresholds,
            },
            answer: answer.rows(versions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_773_600_000; // 2026-11-27T10:00:00Z

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_millis(T0 + minutes * 60_000)
    }

    fn uuid(n: u32) -> String {
        format!("{n:08x}-0000-4000-8000-000000000000")
    }

    fn query(n: u32, from: i64, to: i64) -> CountsQuery {
        CountsQuery {
            new_version: uuid(2 * n),
            old_version: uuid(2 * n + 1),
            from: at(from),
            to: at(to),
            latency_from: at(to - 5),
            slow_above_ms: 250.0,
            very_slow_above_ms: 1000.0,
            approach_above_ms: 125.0,
        }
    }

    fn row(version: &str, minute: i64) -> HttpRow {
        HttpRow {
            minute: at(minute),
            version: version.to_string(),
            requests: 60.0,
            errors_5xx: 1.0,
            slow: 0.0,
            very_slow: 0.0,
            approaching: 0.0,
            p95_ms: Some(100.0),
            stored_rows: 60.0,
            error_rows: 1.0,
            slow_rows: 0.0,
        }
    }

    #[test]
    fn queries_with_one_end_and_thresholds_share_one_batch_that_covers_each() {
        let queries: Vec<CountsQuery> = (0..3).map(|n| query(n, 8 - i64::from(n), 10)).collect();
        let batches = CountsBatch::group(&queries);
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.versions.len(), 6);
        assert_eq!(
            batch.from,
            at(5),
            "the trailing latency window starts earliest"
        );
        assert!(queries.iter().all(|q| batch.covers(q)));
    }

    #[test]
    fn a_different_end_or_threshold_gets_its_own_batch() {
        let mut slower = query(1, 8, 10);
        slower.slow_above_ms = 300.0;
        let queries = [query(0, 8, 10), slower, query(2, 8, 11)];
        let batches = CountsBatch::group(&queries);
        assert_eq!(batches.len(), 3);
        for (batch, q) in batches.iter().zip(&queries) {
            assert!(batch.covers(q));
        }
        assert!(!batches[0].covers(&queries[1]), "thresholds differ");
        assert!(!batches[0].covers(&queries[2]), "ends differ");
    }

    #[test]
    fn a_batch_holds_at_most_max_rollouts() {
        let n = CountsBatch::MAX_ROLLOUTS as u32 * 2 + 1;
        let queries: Vec<CountsQuery> = (0..n).map(|i| query(i, 8, 10)).collect();
        let batches = CountsBatch::group(&queries);
        assert_eq!(batches.len(), 3);
        assert!(queries
            .iter()
            .all(|q| batches.iter().filter(|b| b.covers(q)).count() == 1));
    }

    #[test]
    fn a_batch_does_not_cover_a_query_reading_earlier_minutes() {
        let batch = CountsBatch::group(&[query(0, 8, 10)]).remove(0);
        let mut earlier = query(0, 3, 10);
        earlier.latency_from = at(3);
        assert!(!batch.covers(&earlier));
    }

    #[test]
    fn a_share_holds_only_the_rollouts_own_rows_and_failures_pass_through() {
        let (a, b) = (query(0, 8, 10), query(1, 8, 10));
        let batch = CountsBatch::group([&a, &b]).remove(0);
        let rows = vec![
            row(&a.new_version, 8),
            row(&b.new_version, 8),
            row(&a.old_version.to_uppercase(), 9),
        ];
        let share = batch.share(&a, &ByVersion::of(&Ok(rows))).expect("covered");
        assert_eq!(
            share.batch.versions,
            [a.new_version.clone(), a.old_version.clone()]
        );
        assert!(share.batch.covers(&a));
        let got = share.answer.expect("rows");
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .all(|r| r.version.to_lowercase() != b.new_version));
        let failed = batch.share(&b, &ByVersion::of(&Err("HTTP 502".into())));
        assert_eq!(failed.expect("covered").answer, Err("HTTP 502".to_string()));
        let empty = ByVersion::of(&Ok(Vec::new()));
        assert!(batch.share(&query(7, 8, 10), &empty).is_none());
    }

    #[test]
    fn the_sql_names_every_version_of_the_batch() {
        let queries = [query(0, 8, 10), query(1, 8, 10)];
        let batch = CountsBatch::group(&queries).remove(0);
        let sql = batch
            .sql("mauntic_logs", &Columns::default())
            .expect("valid");
        for v in &batch.versions {
            assert!(sql.contains(&format!("'{v}'")), "{v} in {sql}");
        }
    }
}

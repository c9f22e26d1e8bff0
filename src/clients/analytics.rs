//! Workers Analytics Engine as data: the column mapping, the sample-weighted SQL text for
//! per-version HTTP signals and queue metrics, the SQL API request, and the `FORMAT JSON`
//! result parser (platform reference §2). Every interpolated value is validated or escaped.

pub mod batch;
mod rows;

pub use rows::{parse_http_rows, parse_queue_rows, HttpRow, QueueRow};

use super::cloudflare::{ApiConfig, CloudflareError};
use super::http::{HttpRequest, Method};
use super::is_uuid;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Which Analytics Engine column holds what. Text columns are `index1` or `blob1..=20`,
/// numeric ones `double1..=20` (the only columns a data point has besides `timestamp` and
/// `_sample_interval`). The defaults match the README's writer snippet.
///
/// Unknown keys are refused: a misspelt key (`latency` for `latency_ms`) would otherwise
/// leave the default column in place without a word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Columns {
    /// Worker version id (text). Default `index1`: sampling is keyed on the index, so
    /// each version is sampled on its own.
    pub version: String,
    /// Event type (text). Default `blob1`.
    pub event_type: String,
    /// HTTP status code (number). Default `double1`.
    pub status: String,
    /// Request latency in milliseconds (number). Default `double2`.
    pub latency_ms: String,
    /// Queue name on queue events (text). Default `blob2`.
    pub queue_name: String,
    /// Queue backlog in messages on queue events (number). Default `double3`.
    pub queue_depth: String,
    /// Retried messages on queue events (number). Default `double4`.
    pub queue_retries: String,
    /// `event_type` value of a request event. Default `http`.
    pub http_event: String,
    /// `event_type` value of a queue metric event. Default `queue.metric`.
    pub queue_event: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            version: "index1".into(),
            event_type: "blob1".into(),
            status: "double1".into(),
            latency_ms: "double2".into(),
            queue_name: "blob2".into(),
            queue_depth: "double3".into(),
            queue_retries: "double4".into(),
            http_event: "http".into(),
            queue_event: "queue.metric".into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
}

fn column_kind(name: &str) -> Option<Kind> {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .filter(|n| !n.starts_with('0'))
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=20).contains(&n))
    };
    if name == "index1" || numbered("blob") {
        Some(Kind::Text)
    } else if numbered("double") {
        Some(Kind::Number)
    } else {
        None
    }
}

impl Columns {
    /// Checks every column name against the Analytics Engine schema and its expected
    /// kind, and that the event values can be quoted.
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidColumn`] naming the first bad field;
    /// [`AnalyticsError::InvalidString`] for an event value with control characters.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let fields = [
            ("version", &self.version, Kind::Text),
            ("event_type", &self.event_type, Kind::Text),
            ("status", &self.status, Kind::Number),
            ("latency_ms", &self.latency_ms, Kind::Number),
            ("queue_name", &self.queue_name, Kind::Text),
            ("queue_depth", &self.queue_depth, Kind::Number),
            ("queue_retries", &self.queue_retries, Kind::Number),
        ];
        for (field, value, kind) in fields {
            if column_kind(value) != Some(kind) {
                return Err(AnalyticsError::InvalidColumn {
                    field,
                    value: value.clone(),
                });
            }
        }
        quote_sql_string(&self.http_event)?;
        quote_sql_string(&self.queue_event)?;
        Ok(())
    }
}

/// True for an Analytics Engine dataset (table) name: `[A-Za-z0-9_]{1,255}`.
pub fn is_dataset_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `s` as a single-quoted SQL string literal, escaping `\` and `'` with a backslash
/// (ClickHouse rules, which the Analytics Engine dialect follows).
///
/// # Errors
/// [`AnalyticsError::InvalidString`] when `s` holds control characters (never needed in
/// a queue or event name, and the cheapest way to rule out odd escapes).
pub fn quote_sql_string(s: &str) -> Result<String, AnalyticsError> {
    if s.chars().any(char::is_control) {
        return Err(AnalyticsError::InvalidString(s.escape_debug().to_string()));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    Ok(out)
}

/// Output column names shared by the builders and the parsers.
mod alias {
    pub const VERSION: &str = "version";
    pub const MINUTE: &str = "minute";
    pub const REQUESTS: &str = "requests";
    pub const ERRORS_5XX: &str = "errors_5xx";
    pub const SLOW: &str = "slow";
    pub const VERY_SLOW: &str = "very_slow";
    pub const APPROACHING: &str = "approaching";
    pub const P95_MS: &str = "p95_ms";
    pub const STORED_ROWS: &str = "stored_rows";
    pub const ERROR_ROWS: &str = "error_rows";
    pub const SLOW_ROWS: &str = "slow_rows";
    pub const QUEUE: &str = "queue";
    pub const MAX_DEPTH: &str = "max_depth";
    pub const RETRIES: &str = "retries";
    pub const POINTS: &str = "points";
}

/// `WHERE` time bounds `[from, to)` in whole Unix seconds (sub-second parts dropped).
fn time_bounds(from: Timestamp, to: Timestamp) -> Result<(i64, i64), AnalyticsError> {
    let (f, t) = (
        from.millis().div_euclid(1_000),
        to.millis().div_euclid(1_000),
    );
    if f < 0 || t <= f {
        return Err(AnalyticsError::InvalidTimeRange { from, to });
    }
    Ok((f, t))
}

/// The minute bucket expression: start of the minute in Unix seconds (an integer, so it
/// parses without date formats).
const MINUTE_EXPR: &str = "intDiv(toUnixTimestamp(timestamp), 60) * 60";

/// What every query checks first: a valid dataset name and columns, and the time bounds as
/// SQL literals.
fn query_prologue(
    dataset: &str,
    columns: &Columns,
    from: Timestamp,
    to: Timestamp,
) -> Result<(i64, i64), AnalyticsError> {
    if !is_dataset_name(dataset) {
        return Err(AnalyticsError::InvalidDataset(dataset.to_string()));
    }
    columns.validate()?;
    time_bounds(from, to)
}

/// The latency thresholds the HTTP query counts requests over, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyThresholds {
    /// The p95 ceiling: requests over it are slow.
    pub slow_ms: f64,
    /// Very slow (`Policy::very_slow_ms`).
    pub very_slow_ms: f64,
    /// Approaching the ceiling (`Policy::approach_ms`).
    pub approach_ms: f64,
}

/// One query for all per-version HTTP signals over `[from, to)` of `versions` (one
/// rollout's two, or every active rollout's: [`batch`]), one row per version and minute: requests, 5xx, requests slower than each of `thresholds` (all
/// `SUM(_sample_interval)`), the sample-weighted p95 latency, and the stored (sampled) rows
/// behind them: all of them, those of a 5xx and those over the latency ceiling. `count()`
/// and `SUM(if(…, 1, 0))` there are deliberate: they count rows, not requests, so that
/// `requests / stored_rows` is the mean sample interval the statistics use to avoid
/// overstating evidence, and the absolute ceilings test the rows actually observed (a
/// row's `_sample_interval` need not be the minute's mean). The caller has already
/// excluded the newest minutes (ingestion lag); `from`/`to` are used as given (whole
/// seconds), as absolute bounds, never `now()`.
///
/// # Errors
/// [`AnalyticsError::InvalidDataset`], the [`Columns::validate`] errors,
/// [`AnalyticsError::InvalidVersionId`] for a non-UUID (or no version at all),
/// [`AnalyticsError::InvalidTimeRange`] unless `0 <= from < to`, [`AnalyticsError::InvalidNumber`] for a negative or non-finite
/// threshold.
pub fn build_http_query(
    dataset: &str,
    columns: &Columns,
    versions: &[&str],
    from: Timestamp,
    to: Timestamp,
    thresholds: LatencyThresholds,
) -> Result<String, AnalyticsError> {
    let (from_s, to_s) = query_prologue(dataset, columns, from, to)?;
    if versions.is_empty() {
        return Err(AnalyticsError::InvalidVersionId(String::new()));
    }
    for v in versions {
        if !is_uuid(v) {
            return Err(AnalyticsError::InvalidVersionId((*v).to_string()));
        }
    }
    let LatencyThresholds {
        slow_ms,
        very_slow_ms,
        approach_ms,
    } = thresholds;
    for (what, value) in [
        ("latency ceiling (ms)", slow_ms),
        ("very slow threshold (ms)", very_slow_ms),
        ("approaching threshold (ms)", approach_ms),
    ] {
        if !value.is_finite() || value < 0.0 {
            return Err(AnalyticsError::InvalidNumber {
                what,
                value: value.to_string(),
            });
        }
    }
    let Columns {
        version,
        event_type,
        status,
        latency_ms,
        ..
    } = columns;
    let event = quote_sql_string(&columns.http_event)?;
    // Rust's f64 Display never uses exponent notation, so these are plain SQL decimal text.
    let listed = versions
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "SELECT\n  \
         {version} AS {v},\n  \
         {MINUTE_EXPR} AS {m},\n  \
         SUM(_sample_interval) AS {r},\n  \
         SUM(if({status} >= 500, _sample_interval, 0)) AS {e},\n  \
         SUM(if({latency_ms} > {slow_ms}, _sample_interval, 0)) AS {s},\n  \
         SUM(if({latency_ms} > {very_slow_ms}, _sample_interval, 0)) AS {vs},\n  \
         SUM(if({latency_ms} > {approach_ms}, _sample_interval, 0)) AS {a},\n  \
         quantileExactWeighted(0.95)({latency_ms}, _sample_interval) AS {p},\n  \
         count() AS {n},\n  \
         SUM(if({status} >= 500, 1, 0)) AS {ne},\n  \
         SUM(if({latency_ms} > {slow_ms}, 1, 0)) AS {ns}\n\
         FROM {dataset}\n\
         WHERE timestamp >= toDateTime({from_s})\n  \
         AND timestamp < toDateTime({to_s})\n  \
         AND {event_type} = {event}\n  \
         AND {version} IN ({listed})\n\
         GROUP BY {v}, {m}\n\
         ORDER BY {m}, {v}\n\
         FORMAT JSON",
        v = alias::VERSION,
        m = alias::MINUTE,
        r = alias::REQUESTS,
        e = alias::ERRORS_5XX,
        s = alias::SLOW,
        vs = alias::VERY_SLOW,
        a = alias::APPROACHING,
        p = alias::P95_MS,
        n = alias::STORED_ROWS,
        ne = alias::ERROR_ROWS,
        ns = alias::SLOW_ROWS,
    ))
}

/// Queue metrics over `[from, to)`, one row per queue and minute: the highest depth seen,
/// retries (`SUM(_sample_interval * retries)`) and data points (`SUM(_sample_interval)`).
/// `queues` restricts the queues (empty: all). Not per version: depth belongs to the queue.
///
/// # Errors
/// As [`build_http_query`], plus [`AnalyticsError::InvalidString`] for a queue name with
/// control characters.
pub fn build_queue_query(
    dataset: &str,
    columns: &Columns,
    queues: &[&str],
    from: Timestamp,
    to: Timestamp,
) -> Result<String, AnalyticsError> {
    let (from_s, to_s) = query_prologue(dataset, columns, from, to)?;
    let Columns {
        event_type,
        queue_name,
        queue_depth,
        queue_retries,
        ..
    } = columns;
    let event = quote_sql_string(&columns.queue_event)?;
    let queue_filter = if queues.is_empty() {
        String::new()
    } else {
        let quoted = queues
            .iter()
            .map(|q| quote_sql_string(q))
            .collect::<Result<Vec<_>, _>>()?;
        format!("\n  AND {queue_name} IN ({})", quoted.join(", "))
    };
    Ok(format!(
        "SELECT\n  \
         {queue_name} AS {q},\n  \
         {MINUTE_EXPR} AS {m},\n  \
         MAX({queue_depth}) AS {d},\n  \
         SUM(_sample_interval * {queue_retries}) AS {r},\n  \
         SUM(_sample_interval) AS {n}\n\
         FROM {dataset}\n\
         WHERE timestamp >= toDateTime({from_s})\n  \
         AND timestamp < toDateTime({to_s})\n  \
         AND {event_type} = {event}{queue_filter}\n\
         GROUP BY {q}, {m}\n\
         ORDER BY {m}, {q}\n\
         FORMAT JSON",
        q = alias::QUEUE,
        m = alias::MINUTE,
        d = alias::MAX_DEPTH,
        r = alias::RETRIES,
        n = alias::POINTS,
    ))
}

/// `POST {base}/accounts/{account}/analytics_engine/sql` with the SQL as the raw body.
/// `config.base_url` may point at a different host than the deployments API (the sandbox).
///
/// # Errors
/// [`AnalyticsError::Endpoint`] for a bad base URL or account id, or a token that
/// cannot be a header value.
pub fn build_sql_request(
    config: &ApiConfig,
    token: &str,
    sql: String,
) -> Result<HttpRequest, AnalyticsError> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AnalyticsError::Endpoint(CloudflareError::InvalidToken));
    }
    Ok(HttpRequest {
        method: Method::Post,
        url: format!("{}/analytics_engine/sql", config.account_url()?),
        headers: vec![
            ("Authorization".into(), format!("Bearer {token}")),
            ("Content-Type".into(), "text/plain; charset=utf-8".into()),
        ],
        body: Some(sql),
    })
}

/// Why a query could not be built, or why its answer gives no data. Every response
/// variant is an inconclusive observation for the policy, never a crash.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AnalyticsError {
    /// The dataset name is not `[A-Za-z0-9_]+`.
    #[error("invalid Analytics Engine dataset name {0:?}")]
    InvalidDataset(String),
    /// A configured column is not an Analytics Engine column of the right kind.
    #[error("invalid column for `{field}`: {value:?}")]
    InvalidColumn {
        /// The `Columns` field.
        field: &'static str,
        /// The configured column name.
        value: String,
    },
    /// A version id is not a UUID.
    #[error("invalid version id {0:?}: expected a UUID")]
    InvalidVersionId(String),
    /// The time bounds are empty, reversed or before the epoch.
    #[error("invalid query window [{from}, {to})")]
    InvalidTimeRange {
        /// Start (inclusive).
        from: Timestamp,
        /// End (exclusive).
        to: Timestamp,
    },
    /// A number for the SQL text is negative or not finite.
    #[error("invalid {what}: {value}")]
    InvalidNumber {
        /// What the number is.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// A string for the SQL text has control characters.
    #[error("refusing to quote {0:?}: control characters")]
    InvalidString(String),
    /// The request could not be addressed (base URL, account id, token).
    #[error(transparent)]
    Endpoint(#[from] CloudflareError),
    /// 429 from the SQL API.
    #[error("Analytics Engine SQL API rate limited; retry in {retry_after_secs} s")]
    RateLimited {
        /// From `retry-after`, else 300.
        retry_after_secs: u64,
    },
    /// Another non-2xx status.
    #[error("Analytics Engine SQL API answered HTTP {status}: {detail}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The API's reason, bounded to 300 chars.
        detail: String,
    },
    /// 2xx, but the body is not JSON.
    #[error("Analytics Engine answer is not JSON")]
    NotJson,
    /// 2xx with a `success: false` envelope.
    #[error("Analytics Engine refused the query: {message}")]
    Rejected {
        /// The API's reason, bounded to 300 chars.
        message: String,
    },
    /// JSON without a `data` array.
    #[error("Analytics Engine answer has no `data` array")]
    MissingData,
    /// A row lacks a column or has the wrong type.
    #[error("Analytics Engine row {index}: {why}")]
    BadRow {
        /// 0-based row index in `data`.
        index: usize,
        /// What was wrong.
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_table() {
        let cases = [
            ("index1", Some(Kind::Text)),
            ("blob1", Some(Kind::Text)),
            ("blob20", Some(Kind::Text)),
            ("double1", Some(Kind::Number)),
            ("double20", Some(Kind::Number)),
            ("index2", None),
            ("blob0", None),
            ("blob21", None),
            ("blob01", None),
            ("double", None),
            ("timestamp", None),
            ("double1; DROP", None),
            ("BLOB1", None),
        ];
        for (name, want) in cases {
            assert!(column_kind(name) == want, "{name}");
        }
    }

    #[test]
    fn columns_must_have_the_right_kind() {
        let mut cols = Columns::default();
        assert_eq!(cols.validate(), Ok(()));
        cols.status = "blob3".into();
        assert_eq!(
            cols.validate(),
            Err(AnalyticsError::InvalidColumn {
                field: "status",
                value: "blob3".into()
            })
        );
        let cols = Columns {
            version: "double1".into(),
            ..Columns::default()
        };
        assert!(cols.validate().is_err());
    }

    #[test]
    fn dataset_names_table() {
        for (name, ok) in [
            ("mauntic_logs", true),
            ("Health2", true),
            ("", false),
            ("a-b", false),
            ("a.b", false),
            ("x; DROP TABLE y", false),
        ] {
            assert_eq!(is_dataset_name(name), ok, "{name}");
        }
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote_sql_string("http").as_deref(), Ok("'http'"));
        assert_eq!(
            quote_sql_string("a' OR '1'='1").as_deref(),
            Ok(r"'a\' OR \'1\'=\'1'")
        );
        assert_eq!(quote_sql_string(r"a\'").as_deref(), Ok(r"'a\\\''"));
        assert!(quote_sql_string("a\nb").is_err());
        assert!(quote_sql_string("a\0b").is_err());
    }

    #[test]
    fn time_window_must_be_forward() {
        let t = Timestamp::from_millis;
        assert!(time_bounds(t(60_000), t(120_000)).is_ok());
        assert!(time_bounds(t(60_000), t(60_000)).is_err());
        assert!(time_bounds(t(60_000), t(60_500)).is_err());
        assert!(time_bounds(t(-60_000), t(60_000)).is_err());
    }
}

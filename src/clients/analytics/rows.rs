//! Reading `FORMAT JSON` answers of the Analytics Engine SQL API (`{meta, data, rows}`)
//! into typed rows, lenient about 64-bit integers sent as strings and strict about
//! everything else: any surprise is an [`AnalyticsError`], never a panic.

use super::{alias, AnalyticsError};
use crate::clients::http::{parse_retry_after_secs, HttpResponse};
use crate::clients::truncate_chars_with_ellipsis;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One version's HTTP signals in one minute: sample-weighted counts, and the stored rows
/// behind them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpRow {
    /// Start of the minute.
    pub minute: Timestamp,
    /// Version id as written by the target Worker.
    pub version: String,
    /// Requests.
    pub requests: f64,
    /// Requests answered with status >= 500.
    pub errors_5xx: f64,
    /// Requests slower than the ceiling the query was built with.
    pub slow: f64,
    /// Requests slower than the very slow threshold the query was built with.
    pub very_slow: f64,
    /// Requests slower than the approaching threshold the query was built with.
    pub approaching: f64,
    /// Weighted p95 latency in ms; `None` when the engine gave no number (e.g. `nan`).
    pub p95_ms: Option<f64>,
    /// Stored rows behind the counts (each stands for `_sample_interval` requests).
    pub stored_rows: f64,
    /// Of those, rows of a 5xx answer.
    pub error_rows: f64,
    /// Of those, rows slower than the ceiling the query was built with.
    pub slow_rows: f64,
}

impl HttpRow {
    /// Mean `_sample_interval` of the rows (`requests / stored_rows`; 1 = unsampled, and 1
    /// when there are no rows).
    pub fn mean_sample_interval(&self) -> f64 {
        if self.stored_rows > 0.0 {
            self.requests / self.stored_rows
        } else {
            1.0
        }
    }
}

/// One queue's metrics in one minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    /// Start of the minute.
    pub minute: Timestamp,
    /// Queue name.
    pub queue: String,
    /// Highest backlog reported (messages).
    pub max_depth: f64,
    /// Retried messages (sample-weighted).
    pub retries: f64,
    /// Data points behind the row (sample-weighted).
    pub points: f64,
}

/// Parses the answer to [`super::build_http_query`].
///
/// # Errors
/// Every failure mode of the SQL API (see [`AnalyticsError`]); the caller records it as
/// an inconclusive observation.
pub fn parse_http_rows(resp: &HttpResponse) -> Result<Vec<HttpRow>, AnalyticsError> {
    parse_data(resp)?
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let bad = |why: String| bad_row(index, &why);
            Ok(HttpRow {
                minute: minute_field(row).map_err(bad)?,
                version: text_field(row, alias::VERSION).map_err(bad)?,
                requests: count_field(row, alias::REQUESTS).map_err(bad)?,
                errors_5xx: count_field(row, alias::ERRORS_5XX).map_err(bad)?,
                slow: count_field(row, alias::SLOW).map_err(bad)?,
                very_slow: count_field(row, alias::VERY_SLOW).map_err(bad)?,
                approaching: count_field(row, alias::APPROACHING).map_err(bad)?,
                p95_ms: optional_number(row, alias::P95_MS).map_err(bad)?,
                stored_rows: count_field(row, alias::STORED_ROWS).map_err(bad)?,
                error_rows: count_field(row, alias::ERROR_ROWS).map_err(bad)?,
                slow_rows: count_field(row, alias::SLOW_ROWS).map_err(bad)?,
            })
        })
        .collect()
}

/// Parses the answer to [`super::build_queue_query`].
///
/// # Errors
/// As [`parse_http_rows`].
pub fn parse_queue_rows(resp: &HttpResponse) -> Result<Vec<QueueRow>, AnalyticsError> {
    parse_data(resp)?
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let bad = |why: String| bad_row(index, &why);
            Ok(QueueRow {
                minute: minute_field(row).map_err(bad)?,
                queue: text_field(row, alias::QUEUE).map_err(bad)?,
                max_depth: count_field(row, alias::MAX_DEPTH).map_err(bad)?,
                retries: count_field(row, alias::RETRIES).map_err(bad)?,
                points: count_field(row, alias::POINTS).map_err(bad)?,
            })
        })
        .collect()
}

/// Longest `BadRow` reason kept (chars): the reason quotes the offending value, which the
/// answer may make as long as it likes, and it reaches the audit log and Slack.
const MAX_BAD_ROW_TEXT: usize = 300;

fn bad_row(index: usize, why: &str) -> AnalyticsError {
    AnalyticsError::BadRow {
        index,
        why: truncate_chars_with_ellipsis(why, MAX_BAD_ROW_TEXT),
    }
}

/// Seconds to hold SQL queries after a 429 without `retry-after` (same account limit as
/// the rest of the API).
const RATE_LIMITED_DEFAULT_SECS: u64 = 300;

/// The `data` rows of a `FORMAT JSON` answer (`{meta, data, rows}`), or why there are none.
fn parse_data(resp: &HttpResponse) -> Result<Vec<Map<String, Value>>, AnalyticsError> {
    if resp.status == 429 {
        return Err(AnalyticsError::RateLimited {
            retry_after_secs: resp
                .header("retry-after")
                .and_then(parse_retry_after_secs)
                .unwrap_or(RATE_LIMITED_DEFAULT_SECS),
        });
    }
    let json: Option<Value> = serde_json::from_str(&resp.body).ok();
    if !resp.is_success() {
        return Err(AnalyticsError::Status {
            status: resp.status,
            detail: error_detail(json.as_ref(), &resp.body),
        });
    }
    let mut json = json.ok_or(AnalyticsError::NotJson)?;
    if json.get("success") == Some(&Value::Bool(false)) {
        return Err(AnalyticsError::Rejected {
            message: error_detail(Some(&json), &resp.body),
        });
    }
    // Taken, not cloned: a copy of every row doubled the parse's peak memory.
    let data = match json.get_mut("data").map(Value::take) {
        Some(Value::Array(rows)) => rows,
        _ => return Err(AnalyticsError::MissingData),
    };
    data.into_iter()
        .enumerate()
        .map(|(index, row)| match row {
            Value::Object(map) => Ok(map),
            _ => Err(AnalyticsError::BadRow {
                index,
                why: "not a JSON object".into(),
            }),
        })
        .collect()
}

/// The API's reason, bounded: `errors[].message` of an envelope, else the body text.
fn error_detail(json: Option<&Value>, body: &str) -> String {
    let from_envelope = json
        .and_then(|j| j.get("errors"))
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty());
    let text = from_envelope.unwrap_or_else(|| body.trim().to_string());
    truncate_chars_with_ellipsis(&text, 300)
}

/// A number given as a JSON number or a string (ClickHouse quotes 64-bit integers).
/// `Ok(None)` for null or a non-finite value.
fn optional_number(row: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    let parsed = match row.get(key) {
        None => return Err(format!("missing `{key}`")),
        Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{key}` is not a number: {s:?}"))?,
        ),
        Some(other) => return Err(format!("`{key}` is not a number: {other}")),
    };
    Ok(parsed.filter(|f| f.is_finite()))
}

/// A required finite, non-negative number.
fn count_field(row: &Map<String, Value>, key: &str) -> Result<f64, String> {
    match optional_number(row, key)? {
        Some(n) if n >= 0.0 => Ok(n),
        Some(n) => Err(format!("`{key}` is negative: {n}")),
        None => Err(format!("`{key}` is null or not finite")),
    }
}

fn text_field(row: &Map<String, Value>, key: &str) -> Result<String, String> {
    match row.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("`{key}` is not a string: {other}")),
        None => Err(format!("missing `{key}`")),
    }
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, read field by field (chrono's format-string parser is
/// several kilobytes of wasm for this one string: docs/size.md).
fn date_time(text: &str) -> Option<Timestamp> {
    let (date, time) = text.trim().split_once(' ')?;
    let [year, month, day] = three_numbers(date, '-')?;
    let [hour, minute, second] = three_numbers(time, ':')?;
    let at = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_opt(hour, minute, second)?;
    Some(Timestamp::from_millis(at.and_utc().timestamp_millis()))
}

/// Exactly three whole numbers separated by `separator`.
fn three_numbers(text: &str, separator: char) -> Option<[u32; 3]> {
    let mut parts = text.split(separator).map(|part| part.parse().ok());
    let numbers = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(numbers)
}

/// The minute column: Unix seconds (number or string), or a ClickHouse `DateTime` text
/// `YYYY-MM-DD hh:mm:ss` in UTC (if the query groups by `toStartOfMinute`).
fn minute_field(row: &Map<String, Value>) -> Result<Timestamp, String> {
    let key = alias::MINUTE;
    if let Some(at) = row.get(key).and_then(Value::as_str).and_then(date_time) {
        return Ok(at);
    }
    let secs = count_field(row, key)?;
    if secs.fract() != 0.0 || secs > 1e12 {
        return Err(format!("`{key}` is not whole Unix seconds: {secs}"));
    }
    Ok(Timestamp::from_millis(secs as i64 * 1_000))
}

#[cfg(test)]
mod tests {
    use super::date_time;
    use crate::time::Timestamp;

    #[test]
    fn a_clickhouse_date_time_reads_as_that_utc_instant() {
        // 2026-11-27T10:00:00Z, and 1999-12-31T23:59:58Z.
        assert_eq!(
            date_time("2026-11-27 10:00:00"),
            Some(Timestamp::from_millis(1_795_773_600_000))
        );
        assert_eq!(
            date_time(" 1999-12-31 23:59:58 "),
            Some(Timestamp::from_millis(946_684_798_000))
        );
    }

    #[test]
    fn anything_but_a_valid_date_and_time_does_not_read() {
        for text in [
            "2026-11-27T10:00:00",
            "2026-11-27 10:00",
            "2026-11-27 10:00:00:00",
            "2026-13-01 00:00:00",
            "2026-02-30 00:00:00",
            "2026-11-27 24:00:00",
            "2026-11-x 10:00:00",
            "1795773600",
            "",
        ] {
            assert_eq!(date_time(text), None, "{text}");
        }
    }
}

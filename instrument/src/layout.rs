//! Where each value goes in an Analytics Engine data point, so that rollout-gate can read
//! it with its default column mapping (`Columns::default()` in the gate). Plain std Rust:
//! the gate compiles this same file (`src/instrument.rs`) and tests it against its columns.

/// `blob1` of a request point.
pub const HTTP_EVENT: &str = "http";
/// `blob1` of a queue metric point.
pub const QUEUE_EVENT: &str = "queue.metric";
/// Analytics Engine accepts exactly one index of at most 96 bytes.
pub const MAX_INDEX_BYTES: usize = 96;

/// One data point, laid out: `index1`, `blob1..`, `double1..`.
#[derive(Clone, Debug, PartialEq)]
pub struct PointLayout {
    /// `index1`: the Worker version id (sampling is keyed on it, so each version is
    /// sampled on its own).
    pub index: String,
    /// `blob1`, `blob2`, ...
    pub blobs: Vec<String>,
    /// `double1`, `double2`, ...
    pub doubles: Vec<f64>,
}

/// A column's value in a laid-out point.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnValue<'a> {
    Text(&'a str),
    Number(f64),
}

impl PointLayout {
    /// One request: `index1` = version id, `blob1` = `"http"`, `double1` = HTTP status,
    /// `double2` = latency in milliseconds.
    pub fn request(version_id: &str, status: u16, latency_ms: f64) -> PointLayout {
        PointLayout {
            index: index(version_id),
            blobs: vec![HTTP_EVENT.to_string()],
            doubles: vec![f64::from(status), finite(latency_ms)],
        }
    }

    /// One queue batch: `index1` = version id, `blob1` = `"queue.metric"`, `blob2` = queue
    /// name, `double3` = backlog (messages), `double4` = retried messages in the batch
    /// (`double1`/`double2` are 0: they are the request columns).
    pub fn queue_batch(version_id: &str, queue: &str, depth: f64, retries: f64) -> PointLayout {
        PointLayout {
            index: index(version_id),
            blobs: vec![QUEUE_EVENT.to_string(), queue.to_string()],
            doubles: vec![0.0, 0.0, finite(depth), finite(retries)],
        }
    }

    /// The value of `column` (`index1`, `blobN`, `doubleN`), if the point sets it.
    pub fn column(&self, column: &str) -> Option<ColumnValue<'_>> {
        if column == "index1" {
            return Some(ColumnValue::Text(&self.index));
        }
        let nth = |prefix: &str| {
            column
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
        };
        if let Some(i) = nth("blob") {
            return self.blobs.get(i).map(|b| ColumnValue::Text(b));
        }
        if let Some(i) = nth("double") {
            return self.doubles.get(i).map(|d| ColumnValue::Number(*d));
        }
        None
    }
}

/// The version id as an index: cut to 96 bytes on a character boundary (a longer index
/// makes Analytics Engine drop the whole point; version ids are 36-byte UUIDs).
fn index(version_id: &str) -> String {
    let mut end = version_id.len().min(MAX_INDEX_BYTES);
    while !version_id.is_char_boundary(end) {
        end -= 1;
    }
    version_id[..end].to_string()
}

/// Non-finite numbers become 0 (they would poison every sum over the column).
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

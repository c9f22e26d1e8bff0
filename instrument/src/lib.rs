//! rollout-gate-instrument: writes Analytics Engine data points that rollout-gate reads
//! with its default columns: one per request and one per queue batch, indexed by the
//! Worker's version id from the version-metadata binding.
//!
//! ```ignore
//! use rollout_gate_instrument::{record_request, VERSION_METADATA_BINDING};
//! let started = worker::Date::now().as_millis();
//! let resp = handle(req, &env).await?;
//! let latency_ms = (worker::Date::now().as_millis() - started) as f64;
//! record_request(&env, "AE", resp.status_code(), latency_ms)?;
//! ```

mod layout;

pub use layout::{ColumnValue, PointLayout, HTTP_EVENT, MAX_INDEX_BYTES, QUEUE_EVENT};

use worker::{AnalyticsEngineDataPointBuilder, Env, WorkerVersionMetadata};

/// Name of the version-metadata binding (`[version_metadata] binding = "CF_VERSION_METADATA"`).
pub const VERSION_METADATA_BINDING: &str = "CF_VERSION_METADATA";

/// The running version's id, from the version-metadata binding.
///
/// # Errors
/// The binding is missing from wrangler.toml.
pub fn version_id(env: &Env) -> worker::Result<String> {
    let metadata: WorkerVersionMetadata = env.get_binding(VERSION_METADATA_BINDING)?;
    Ok(metadata.id())
}

/// Writes one request point to the Analytics Engine dataset bound as `binding`:
/// `index1` = version id, `blob1` = `"http"`, `double1` = status, `double2` = latency ms.
/// Not awaited and never reported back by the platform (a lost point is a lost point).
///
/// # Errors
/// The dataset or version-metadata binding is missing.
pub fn record_request(
    env: &Env,
    binding: &str,
    status: u16,
    latency_ms: f64,
) -> worker::Result<()> {
    let point = PointLayout::request(&version_id(env)?, status, latency_ms);
    write(env, binding, &point)
}

/// Writes one queue-batch point: `index1` = version id, `blob1` = `"queue.metric"`,
/// `blob2` = queue name, `double3` = backlog in messages, `double4` = retried messages.
///
/// # Errors
/// As `record_request`.
pub fn record_queue_batch(
    env: &Env,
    binding: &str,
    queue: &str,
    depth: f64,
    retries: f64,
) -> worker::Result<()> {
    let point = PointLayout::queue_batch(&version_id(env)?, queue, depth, retries);
    write(env, binding, &point)
}

fn write(env: &Env, binding: &str, point: &PointLayout) -> worker::Result<()> {
    let mut builder = AnalyticsEngineDataPointBuilder::new().indexes([point.index.as_str()]);
    for blob in &point.blobs {
        builder = builder.add_blob(blob.as_str());
    }
    for double in &point.doubles {
        builder = builder.add_double(*double);
    }
    env.analytics_engine(binding)?
        .write_data_point(&builder.build())
}

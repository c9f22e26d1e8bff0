//! The controller's outbound calls: reading the live deployment, the Analytics Engine
//! query, the `/healthz` probe and deployment writes, each mapped to the core's
//! observation types. Every Cloudflare call passes the rate budget first.

use super::Controller;
use crate::clients::analytics::batch::{CountsBatch, SharedCounts};
use crate::clients::analytics::{self, HttpRow};
use crate::clients::cloudflare::{
    self, ApiBudget, CloudflareError, Endpoint, Split, VersionShare as ApiShare,
};
use crate::clients::http::{HttpClient, HttpRequest, HttpResponse};
use crate::clients::probe::{self, ProbeOutcome};
use crate::config::GateConfig;
use crate::http_error::ApiError;
use crate::observe::{
    CohortSplit, CountsQuery, CountsWindow, Fetched, LiveDeployment, MinuteCounts, ObservationPlan,
    Observations, Probe, QueueMetrics, StoredRows, VersionCounts, VersionLatency, VersionShare,
};
use crate::rollout::{RolloutState, WriteFailure, WriteOutcome};
use crate::time::{Timestamp, MINUTE_MS};

/// Reads what `plan` asks for; each source fails on its own. Counts come from `shared`
/// when it covers the planned query (the cron handler's one query for every rollout), and
/// from a query of this rollout's own otherwise.
pub(super) async fn observe<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    budget: &mut ApiBudget,
    state: &RolloutState,
    plan: &ObservationPlan,
    shared: Option<&SharedCounts>,
    now: Timestamp,
) -> Observations {
    let mut obs = Observations::default();
    if plan.read_deployment {
        obs.deployment = Some(read_deployment(ctl, budget, &state.script, now).await);
    }
    if plan.probe_healthz {
        obs.healthz = Some(probe_healthz(ctl, &state.script, &state.version_id).await);
    }
    if let Some(query) = &plan.counts {
        obs.counts = Some(match shared.filter(|s| s.batch.covers(query)) {
            Some(shared) => match &shared.answer {
                Ok(rows) => Fetched::Ok(counts_window(rows, query)),
                Err(why) => Fetched::Failed { why: why.clone() },
            },
            None => query_counts(ctl, budget, query, now).await,
        });
    }
    if let Some(query) = &plan.history {
        // The same per-minute query over the window before the rollout: only the old
        // version's rows matter there.
        obs.history = Some(query_counts(ctl, budget, query, now).await);
    }
    if plan.queue && !ctl.config.queues.is_empty() {
        let lag = i64::from(state.policy.ingestion_lag_minutes);
        obs.queue = Some(query_queue(ctl, budget, now, lag).await);
    }
    obs
}

/// One Cloudflare API call through the budget; a 429 blocks the budget for `retry-after`.
async fn call<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    budget: &mut ApiBudget,
    request: HttpRequest,
    now: Timestamp,
) -> Result<HttpResponse, String> {
    budget.take(now)?;
    let resp = ctl.http.send(request).await.map_err(|e| e.to_string())?;
    if resp.status == 429 {
        let secs = resp
            .header("retry-after")
            .and_then(crate::clients::http::parse_retry_after_secs)
            .unwrap_or(cloudflare::RATE_LIMITED_DEFAULT_SECS);
        budget.note_rate_limited(now, secs);
    }
    Ok(resp)
}

fn token<'c, H, S>(ctl: &Controller<'c, H, S>) -> Result<&'c str, String> {
    ctl.secrets
        .api_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "CLOUDFLARE_API_TOKEN is not configured".to_string())
}

/// Reads the script's live deployment (the newest in the list), through the budget.
pub(super) async fn read_deployment<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    budget: &mut ApiBudget,
    script: &str,
    now: Timestamp,
) -> Fetched<LiveDeployment> {
    let result = async {
        let endpoint = Endpoint::ListDeployments {
            script: script.to_string(),
        };
        let req = endpoint
            .to_request(&ctl.config.api, token(ctl)?)
            .map_err(|e| e.to_string())?;
        let resp = call(ctl, budget, req, now).await?;
        let deployments = cloudflare::parse_deployments(&resp).map_err(|e| e.to_string())?;
        deployments
            .into_iter()
            .next()
            .map(live_deployment)
            .ok_or_else(|| "the script has no deployment".to_string())
    }
    .await;
    result.into()
}

fn shares(versions: Vec<ApiShare>) -> Vec<VersionShare> {
    versions
        .into_iter()
        .map(|v| VersionShare {
            version_id: v.version_id,
            percent: v.percentage,
        })
        .collect()
}

/// The API's deployment as the core sees it, cohorts included (drift detection sees them).
pub(super) fn live_deployment(d: cloudflare::Deployment) -> LiveDeployment {
    LiveDeployment {
        deployment_id: d.id,
        versions: shares(d.versions),
        author_email: d.author_email,
        message: d.annotations.message,
        triggered_by: d.annotations.triggered_by,
        created_on: d.created_on,
        cohorts: d
            .cohorts
            .into_iter()
            .map(|c| CohortSplit {
                name: c.name,
                versions: shares(c.versions),
            })
            .collect(),
    }
}

/// Probes the new version's `/healthz`, pinned with the version-override header.
pub(super) async fn probe_healthz<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    script: &str,
    version_id: &str,
) -> Probe {
    let req = match probe::build_probe_request(&ctl.config.probe, script, version_id) {
        Ok(req) => req,
        Err(err) => {
            return Probe::Failed {
                status: None,
                error: Some(err.to_string()),
            }
        }
    };
    let answer = ctl.http.send(req).await;
    match probe::read_probe(&ctl.config.probe, version_id, answer.as_ref()) {
        ProbeOutcome::Ok => Probe::Ok,
        ProbeOutcome::Failed { status, error } => Probe::Failed { status, error },
        ProbeOutcome::WrongVersion { answered_by } => Probe::WrongVersion { answered_by },
        ProbeOutcome::Unattributed { status } => Probe::Failed {
            status: Some(status),
            error: Some("the answer does not name the version that served it".into()),
        },
    }
}

async fn query_counts<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    budget: &mut ApiBudget,
    query: &CountsQuery,
    now: Timestamp,
) -> Fetched<CountsWindow> {
    let result = async {
        // One query covers both the new minutes and the trailing latency window.
        let own = CountsBatch::of(query);
        let req = super::batch::request(ctl.config, ctl.secrets, &own)?;
        let resp = call(ctl, budget, req, now).await?;
        let rows = analytics::parse_http_rows(&resp).map_err(|e| e.to_string())?;
        Ok::<_, String>(counts_window(&rows, query))
    }
    .await;
    result.into()
}

/// Per-minute rows to the core's window. Latency over the trailing window is the
/// request-weighted mean of the per-minute p95s: one grouped query cannot give an exact
/// p95 over several minutes, and the budget allows one query (documented approximation).
pub fn counts_window(rows: &[HttpRow], query: &CountsQuery) -> CountsWindow {
    let is = |row: &HttpRow, version: &str| row.version.eq_ignore_ascii_case(version);
    let mut minutes = Vec::new();
    let mut minute = query.from;
    while minute < query.to {
        let at = |version: &str| rows.iter().find(|r| r.minute == minute && is(r, version));
        let (new, old) = (at(&query.new_version), at(&query.old_version));
        if new.is_some() || old.is_some() {
            let interval = [new, old]
                .iter()
                .flatten()
                .map(|r| r.mean_sample_interval())
                .fold(1.0, f64::max);
            minutes.push(MinuteCounts {
                minute,
                new: new.map(counts).unwrap_or_default(),
                old: old.map(counts).unwrap_or_default(),
                sample_interval: interval,
            });
        }
        minute = minute.plus_minutes(1);
    }
    let latency = |version: &str| {
        let recent = rows
            .iter()
            .filter(|r| is(r, version) && r.minute >= query.latency_from && r.minute < query.to);
        weighted_p95(recent)
    };
    CountsWindow {
        from: query.from,
        to: query.to,
        minutes,
        new_latency: latency(&query.new_version),
        old_latency: latency(&query.old_version),
    }
}

fn counts(row: &HttpRow) -> VersionCounts {
    VersionCounts {
        requests: row.requests,
        errors: row.errors_5xx,
        slow: row.slow,
        very_slow: row.very_slow,
        approaching: row.approaching,
        stored: StoredRows {
            rows: row.stored_rows,
            errors: row.error_rows,
            slow: row.slow_rows,
        },
    }
}

fn weighted_p95<'a>(rows: impl Iterator<Item = &'a HttpRow>) -> VersionLatency {
    let (mut requests, mut weighted, mut weight) = (0.0, 0.0, 0.0);
    for row in rows {
        requests += row.requests;
        if let Some(p95) = row.p95_ms.filter(|p| p.is_finite()) {
            weighted += p95 * row.requests;
            weight += row.requests;
        }
    }
    VersionLatency {
        requests,
        p95_ms: (weight > 0.0).then(|| weighted / weight),
    }
}

async fn query_queue<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    budget: &mut ApiBudget,
    now: Timestamp,
    lag_minutes: i64,
) -> Fetched<QueueMetrics> {
    // The newest complete minute past the ingestion lag.
    let to = now.floor_minute().plus_minutes(-lag_minutes);
    let from = to.plus_minutes(-1);
    let result = async {
        let queues: Vec<&str> = ctl.config.queues.iter().map(String::as_str).collect();
        let sql = analytics::build_queue_query(
            &ctl.config.dataset,
            &ctl.config.columns,
            &queues,
            from,
            to,
        )
        .map_err(|e| e.to_string())?;
        let req =
            analytics::build_sql_request(&ctl.config.api, ctl.secrets.analytics_token()?, sql)
                .map_err(|e| e.to_string())?;
        let resp = call(ctl, budget, req, now).await?;
        let rows = analytics::parse_queue_rows(&resp).map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Err("no queue.metric points in the last complete minute".to_string());
        }
        let minutes = ((to.millis() - from.millis()) / MINUTE_MS).max(1) as f64;
        Ok(QueueMetrics {
            depth: rows.iter().map(|r| r.max_depth).fold(0.0, f64::max),
            retries_per_minute: rows.iter().map(|r| r.retries).sum::<f64>() / minutes,
        })
    }
    .await;
    result.into()
}

/// Writes the full split (with `?force=true` when the core asked for it); the outcome goes
/// back to the core. A refusal until forced (code 10220) comes back as
/// `WriteOutcome::SecretsChanged` with the secret names and the configured
/// `ROLLBACK_WHEN_SECRETS_CHANGED`: the core, not the shell, decides whether to force.
pub(super) async fn write_deployment<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    budget: &mut ApiBudget,
    state: &RolloutState,
    split: &[VersionShare],
    message: &str,
    force: bool,
    now: Timestamp,
) -> WriteOutcome {
    let shares = split
        .iter()
        .map(|s| ApiShare {
            version_id: s.version_id.clone(),
            percentage: s.percent,
        })
        .collect();
    let request = Split::new(shares).and_then(|split| {
        let token = token(ctl).map_err(|_| CloudflareError::InvalidToken)?;
        Endpoint::CreateDeployment {
            script: state.script.clone(),
            split,
            message: message.to_string(),
            force,
        }
        .to_request(&ctl.config.api, token)
    });
    let req = match request {
        Ok(req) => req,
        Err(err) => return write_failure(Some(400), &err),
    };
    let resp = match call(ctl, budget, req, now).await {
        Ok(resp) => resp,
        Err(why) => {
            return WriteOutcome::Failed(WriteFailure {
                status: None,
                retry_after_secs: None,
                message: why,
                credentials: false,
            })
        }
    };
    match cloudflare::parse_created_deployment(&resp) {
        Ok(deployment) => WriteOutcome::Confirmed {
            deployment_id: deployment.id,
        },
        Err(CloudflareError::SecretsChanged { secrets, message }) => WriteOutcome::SecretsChanged {
            status: resp.status,
            secrets,
            message,
            sent_forced: force,
            setting: ctl.config.rollback_when_secrets_changed,
        },
        Err(err) => write_failure(Some(resp.status), &err),
    }
}

/// A failed write as the core's `WriteFailure`: a missing, malformed or refused token is a
/// credentials problem (resumable once fixed), whatever the status.
fn write_failure(status: Option<u16>, err: &CloudflareError) -> WriteOutcome {
    WriteOutcome::Failed(WriteFailure {
        status,
        retry_after_secs: err
            .retry_after_secs()
            .map(|s| s.min(u64::from(u32::MAX)) as u32),
        message: err.to_string(),
        credentials: matches!(
            err,
            CloudflareError::Unauthorized { .. } | CloudflareError::InvalidToken
        ),
    })
}

/// The stable version when the hook did not name one: the live deployment's version
/// with the largest share that is not the new version.
///
/// # Errors
/// 422 `unknown_script` when Cloudflare does not know the script (its message passed on),
/// 422 `no_stable_version` when nothing else serves, 502 when the API could not answer.
pub async fn resolve_baseline<H: HttpClient>(
    http: &H,
    config: &GateConfig,
    token: &str,
    script: &str,
    new_version: &str,
) -> Result<String, ApiError> {
    let endpoint = Endpoint::ListDeployments {
        script: script.to_string(),
    };
    let req = endpoint
        .to_request(&config.api, token)
        .map_err(|e| ApiError::Upstream(e.to_string()))?;
    let resp = http
        .send(req)
        .await
        .map_err(|e| ApiError::Upstream(format!("Cloudflare API unreachable: {e}")))?;
    let deployments = cloudflare::parse_deployments(&resp).map_err(|err| match err {
        CloudflareError::NotFound { message, .. } => {
            ApiError::unprocessable("unknown_script", format!("Cloudflare: {message}"))
        }
        other => ApiError::Upstream(other.to_string()),
    })?;
    deployments
        .first()
        .and_then(|live| {
            live.versions
                .iter()
                .filter(|v| !v.version_id.eq_ignore_ascii_case(new_version))
                .max_by(|a, b| a.percentage.total_cmp(&b.percentage))
        })
        .map(|v| v.version_id.to_ascii_lowercase())
        .ok_or_else(|| {
            ApiError::unprocessable(
                "no_stable_version",
                format!("{script} has no deployed version other than {new_version} to fall back to; give baseline_version_id"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "11111111-1111-4111-8111-111111111111";
    const OLD: &str = "22222222-2222-4222-8222-222222222222";
    const T0: i64 = 1_795_773_600_000;

    fn row(min: i64, version: &str, requests: f64, errors: f64, p95: f64) -> HttpRow {
        HttpRow {
            minute: Timestamp::from_millis(T0 + min * MINUTE_MS),
            version: version.into(),
            requests,
            errors_5xx: errors,
            slow: 0.0,
            very_slow: 0.0,
            approaching: 0.0,
            p95_ms: Some(p95),
            stored_rows: requests / 2.0,
            error_rows: errors / 2.0,
            slow_rows: 0.0,
        }
    }

    #[test]
    fn rows_become_minutes_within_the_query_and_latency_over_the_trailing_window() {
        let query = CountsQuery {
            new_version: NEW.into(),
            old_version: OLD.into(),
            from: Timestamp::from_millis(T0 + 2 * MINUTE_MS),
            to: Timestamp::from_millis(T0 + 4 * MINUTE_MS),
            latency_from: Timestamp::from_millis(T0),
            slow_above_ms: 250.0,
            very_slow_above_ms: 1000.0,
            approach_above_ms: 125.0,
        };
        let rows = [
            row(0, NEW, 10.0, 0.0, 100.0),
            row(2, NEW, 30.0, 1.0, 200.0),
            row(2, OLD, 270.0, 2.0, 90.0),
            row(3, OLD, 300.0, 0.0, 95.0),
            row(4, NEW, 99.0, 9.0, 999.0), // past `to`: not counted
        ];
        let window = counts_window(&rows, &query);
        assert_eq!(window.minutes.len(), 2);
        assert_eq!(window.minutes[0].new.errors, 1.0);
        assert_eq!(window.minutes[0].sample_interval, 2.0);
        let stored = StoredRows {
            rows: 15.0,
            errors: 0.5,
            slow: 0.0,
        };
        assert_eq!(
            window.minutes[0].new.stored, stored,
            "the rows behind the counts"
        );
        assert_eq!(
            window.minutes[1].new,
            VersionCounts::default(),
            "no row: no traffic"
        );
        assert_eq!(window.new_latency.requests, 40.0);
        assert_eq!(
            window.new_latency.p95_ms,
            Some(175.0),
            "(10·100 + 30·200) / 40"
        );
    }
}

//! Queue depth watched outside rollouts, on every cron tick: one Analytics Engine query
//! for the configured queues, judged by `QueueWatch`, alerts through a Slack outbox.

use crate::clients::analytics;
use crate::clients::cloudflare::ApiBudget;
use crate::clients::http::HttpClient;
use crate::clients::slack::SlackMessage;
use crate::config::{GateConfig, Secrets};
use crate::notify::Outbox;
use crate::observe::QueueMetrics;
use crate::queue_watch::{QueueAlert, QueueWatch, DEFAULT_REMINDER_MINUTES};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// What the registry keeps for the queue watch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueDesk {
    pub watch: QueueWatch,
    pub outbox: Outbox,
    /// The last query failure, for `/healthz`.
    pub last_error: Option<String>,
}

/// One tick of the queue watch. Does nothing when no queues are configured. Its query
/// counts against `budget`, the account's (the registry's book).
pub async fn watch_queues<H: HttpClient>(
    http: &H,
    config: &GateConfig,
    secrets: &Secrets,
    desk: &mut QueueDesk,
    budget: &mut ApiBudget,
    now: Timestamp,
) -> Option<QueueAlert> {
    if config.queues.is_empty() {
        return None;
    }
    let limits = config.policy.queue.clone().unwrap_or_default();
    let metrics = match query(http, config, secrets, budget, now).await {
        Ok(metrics) => {
            desk.last_error = None;
            metrics
        }
        Err(why) => {
            desk.last_error = Some(why);
            None
        }
    };
    let alert = desk
        .watch
        .observe(metrics, &limits, DEFAULT_REMINDER_MINUTES, now);
    if let Some(alert) = &alert {
        desk.outbox.push(message(alert, config), now);
    }
    super::deliver_outbox(
        http,
        secrets.slack_webhook_url.as_deref(),
        &mut desk.outbox,
        now,
    )
    .await;
    alert
}

async fn query<H: HttpClient>(
    http: &H,
    config: &GateConfig,
    secrets: &Secrets,
    budget: &mut ApiBudget,
    now: Timestamp,
) -> Result<Option<QueueMetrics>, String> {
    let token = secrets.analytics_token()?;
    let lag = i64::from(config.policy.ingestion_lag_minutes);
    let to = now.floor_minute().plus_minutes(-lag);
    let from = to.plus_minutes(-1);
    let queues: Vec<&str> = config.queues.iter().map(String::as_str).collect();
    let sql = analytics::build_queue_query(&config.dataset, &config.columns, &queues, from, to)
        .map_err(|e| e.to_string())?;
    let req = analytics::build_sql_request(&config.api, token, sql).map_err(|e| e.to_string())?;
    budget.take(now)?;
    let resp = http.send(req).await.map_err(|e| e.to_string())?;
    let rows = analytics::parse_queue_rows(&resp).map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(QueueMetrics {
        depth: rows.iter().map(|r| r.max_depth).fold(0.0, f64::max),
        retries_per_minute: rows.iter().map(|r| r.retries).sum(),
    }))
}

fn message(alert: &QueueAlert, config: &GateConfig) -> SlackMessage {
    let emoji = match alert {
        QueueAlert::Resolved { .. } => ":white_check_mark:",
        _ => ":rotating_light:",
    };
    let headline = alert.headline();
    SlackMessage::new(format!("{emoji} {headline}"))
        .header(format!("{emoji} {headline}"))
        .section(format!(
            "*Queues:* {} · *Environment:* `{}`",
            config.queues.join(", "),
            config.environment
        ))
        .context(vec![
            "One alert per incident; a reminder while it lasts; one when it is over.".into(),
        ])
}

//! Runs the parity audit against the Cloudflare API: for each configured Worker, its live
//! deployment's main version, then that version's bindings. Posts gaps to Slack once.

use crate::clients::cloudflare::{self, ApiBudget, Endpoint};
use crate::clients::http::HttpClient;
use crate::config::{GateConfig, Secrets};
use crate::notify::Outbox;
use crate::parity::{Finding, ParityReport};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// What the registry keeps between audits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParityDesk {
    /// Fingerprint of the gaps last posted (empty: none posted or all fixed).
    pub posted: String,
    pub last: Option<ParityReport>,
    pub last_run: Option<Timestamp>,
    pub outbox: Outbox,
}

/// Audits every Worker in `config.audit_scripts`; queues a Slack message when the set of
/// gaps differs from the one last posted. Its calls count against `budget`, the
/// account's (the registry's book).
pub async fn audit<H: HttpClient>(
    http: &H,
    config: &GateConfig,
    secrets: &Secrets,
    desk: &mut ParityDesk,
    budget: &mut ApiBudget,
    now: Timestamp,
) -> ParityReport {
    let mut findings = Vec::new();
    for script in &config.audit_scripts {
        let finding = match live_version(http, config, secrets, budget, script, now).await {
            Ok(version) => ParityReport::judge(script, &version, &config.required_bindings),
            Err(why) => Finding::Unreadable {
                script: script.clone(),
                why,
            },
        };
        findings.push(finding);
    }
    let report = ParityReport {
        environment: config.environment.clone(),
        findings,
    };
    let fingerprint = report.fingerprint();
    if fingerprint != desk.posted {
        if report.has_gaps() {
            desk.outbox.push(report.message(), now);
        }
        desk.posted = fingerprint;
    }
    super::deliver_outbox(
        http,
        secrets.slack_webhook_url.as_deref(),
        &mut desk.outbox,
        now,
    )
    .await;
    desk.last = Some(report.clone());
    desk.last_run = Some(now);
    report
}

async fn live_version<H: HttpClient>(
    http: &H,
    config: &GateConfig,
    secrets: &Secrets,
    budget: &mut ApiBudget,
    script: &str,
    now: Timestamp,
) -> Result<cloudflare::Version, String> {
    let token = secrets
        .api_token
        .as_deref()
        .ok_or("CLOUDFLARE_API_TOKEN is not configured")?;
    let mut send = |endpoint: Endpoint| {
        let req = endpoint
            .to_request(&config.api, token)
            .map_err(|e| e.to_string());
        let taken = budget.take(now);
        async move {
            taken?;
            http.send(req?).await.map_err(|e| e.to_string())
        }
    };
    let resp = send(Endpoint::ListDeployments {
        script: script.to_string(),
    })
    .await?;
    let deployments = cloudflare::parse_deployments(&resp).map_err(|e| e.to_string())?;
    let main = deployments
        .first()
        .and_then(|d| {
            d.versions
                .iter()
                .max_by(|a, b| a.percentage.total_cmp(&b.percentage))
        })
        .ok_or("no live deployment")?
        .version_id
        .clone();
    let resp = send(Endpoint::GetVersion {
        script: script.to_string(),
        version_id: main,
    })
    .await?;
    cloudflare::parse_version(&resp).map_err(|e| e.to_string())
}

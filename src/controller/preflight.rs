//! Pre-flight checks on the new version before any user sees it: it exists on the
//! script, it carries the required bindings, its static asset is published, the live
//! deployment carries no cohorts (which any write would erase), and its `/healthz`
//! answers 200 when pinned with a version override. Each check says why.

use super::{fetch, Controller};
use crate::clients::cloudflare::{
    self, CloudflareError, Deployment, DeploymentCohort, Endpoint, Split, VersionShare,
};
use crate::clients::http::{HttpClient, HttpRequest, Method};
use crate::observe::{Check, PreflightReport, Probe};
use crate::rollout::RolloutState;

/// Message annotation of the 0% deployment that lets version overrides reach the version.
pub const ZERO_PERCENT_MESSAGE: &str = "rollout-gate: pre-flight, new version at 0%";

/// Runs every check. Never fails: an undecidable check is `Check::Unknown` (retried).
pub(super) async fn run<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    state: &RolloutState,
) -> PreflightReport {
    let (version_exists, bindings) = version_checks(ctl, state).await;
    let asset = asset_check(ctl, state).await;
    let live = read_live(ctl, state).await;
    // The probe needs the version deployed at 0%; make no deployment write for a
    // version another check has already refused (or could not confirm), nor over a
    // deployment with cohorts: the gate writes none, so its first write would erase them.
    let refused = [&bindings, &asset]
        .iter()
        .any(|c| matches!(c, Check::Fail { .. }));
    let healthz = match (&live, &version_exists) {
        (Ok(Some(live)), _) if !live.cohorts.is_empty() => Check::Fail {
            reason: cohorts_refusal(&state.script, &live.cohorts),
        },
        (Err(why), Check::Pass { .. }) if !refused => Check::Unknown {
            why: format!("could not read the live deployment: {why}"),
        },
        (Ok(live), Check::Pass { .. }) if !refused => {
            healthz_check(ctl, state, live.as_ref()).await
        }
        (_, Check::Pass { .. }) => Check::Skipped {
            reason: "another check refused the version; no deployment made to probe it".into(),
        },
        _ => Check::Skipped {
            reason: "the version could not be confirmed".into(),
        },
    };
    PreflightReport {
        version_exists,
        healthz,
        asset,
        bindings,
    }
}

/// Why a deployment with cohorts refuses the rollout. Cohort-based deployments give named
/// user segments their own split; a `POST .../deployments` without `cohorts` replaces the
/// deployment and drops them (cloudflare/cloudflare-docs
/// `src/content/docs/workers/configuration/versions-and-deployments/cohort-based-deployments.mdx`),
/// and the gate only writes plain percentage splits, so it refuses rather than erase what
/// it does not manage.
pub fn cohorts_refusal(script: &str, cohorts: &[DeploymentCohort]) -> String {
    let names: Vec<String> = cohorts
        .iter()
        .take(10)
        .map(|c| format!("{:?}", c.name))
        .collect();
    format!(
        "the live deployment of {script} carries cohorts ({}), which the gate does not \
         manage: any deployment it writes would erase them. Release this Worker by hand, \
         or remove the cohorts and send the hook again",
        names.join(", ")
    )
}

/// The live deployment (the first listed), `None` when the script has none.
async fn read_live<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    state: &RolloutState,
) -> Result<Option<Deployment>, String> {
    let token = ctl.secrets.api_token.as_deref().unwrap_or_default();
    let list = Endpoint::ListDeployments {
        script: state.script.clone(),
    }
    .to_request(&ctl.config.api, token)
    .map_err(|e| e.to_string())?;
    let resp = ctl.http.send(list).await.map_err(|e| e.to_string())?;
    let live = cloudflare::parse_deployments(&resp).map_err(|e| e.to_string())?;
    Ok(live.into_iter().next())
}

async fn version_checks<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    state: &RolloutState,
) -> (Check, Check) {
    let endpoint = Endpoint::GetVersion {
        script: state.script.clone(),
        version_id: state.version_id.clone(),
    };
    let token = ctl.secrets.api_token.as_deref().unwrap_or_default();
    let answer = match endpoint.to_request(&ctl.config.api, token) {
        Ok(req) => ctl.http.send(req).await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let version = answer
        .map_err(Refusal::Undecided)
        .and_then(|resp| cloudflare::parse_version(&resp).map_err(classify));
    match version {
        Ok(version) => {
            let exists = Check::Pass {
                detail: format!("version {} exists on {}", state.version_id, state.script),
            };
            let required = &ctl.config.required_bindings;
            let bindings = if required.is_empty() {
                Check::Skipped {
                    reason: "no required bindings configured".into(),
                }
            } else {
                let missing = version.missing_bindings(required);
                if missing.is_empty() {
                    Check::Pass {
                        detail: format!("all {} required bindings present", required.len()),
                    }
                } else {
                    let names: Vec<String> = missing.iter().map(|b| b.to_string()).collect();
                    Check::Fail {
                        reason: format!("missing bindings: {}", names.join(", ")),
                    }
                }
            };
            (exists, bindings)
        }
        Err(Refusal::Definite(reason)) => (
            Check::Fail { reason },
            Check::Skipped {
                reason: "no version to inspect".into(),
            },
        ),
        Err(Refusal::Undecided(why)) => {
            (Check::Unknown { why: why.clone() }, Check::Unknown { why })
        }
    }
}

enum Refusal {
    Definite(String),
    Undecided(String),
}

fn classify(err: CloudflareError) -> Refusal {
    match err {
        CloudflareError::NotFound { message, .. } => {
            Refusal::Definite(format!("Cloudflare does not know this version: {message}"))
        }
        CloudflareError::Invalid { message, .. } => {
            Refusal::Definite(format!("Cloudflare refused: {message}"))
        }
        other => Refusal::Undecided(other.to_string()),
    }
}

async fn asset_check<H: HttpClient, S>(ctl: &Controller<'_, H, S>, state: &RolloutState) -> Check {
    let Some(base) = &ctl.config.asset_base_url else {
        return Check::Skipped {
            reason: "no asset base URL configured".into(),
        };
    };
    let Some(sha) = &state.git_sha else {
        return Check::Skipped {
            reason: "the deploy hook gave no git_sha".into(),
        };
    };
    let url = format!("{}/styles/{sha}.css", base.trim_end_matches('/'));
    let req = HttpRequest {
        method: Method::Get,
        url: url.clone(),
        headers: vec![("Cache-Control".into(), "no-store".into())],
        body: None,
    };
    match ctl.http.send(req).await {
        Ok(resp) if resp.is_success() => Check::Pass {
            detail: format!("{url} is published"),
        },
        Ok(resp) if resp.status == 404 || resp.status == 403 => Check::Fail {
            reason: format!("static asset {url} is not published (HTTP {})", resp.status),
        },
        Ok(resp) => Check::Unknown {
            why: format!("asset host answered HTTP {}", resp.status),
        },
        Err(err) => Check::Unknown {
            why: format!("asset host unreachable: {err}"),
        },
    }
}

/// Version overrides only reach a version that is in the live deployment, so unless it is
/// already there the gate first deploys it at 0% (serving nobody), then probes it pinned.
async fn healthz_check<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    state: &RolloutState,
    live: Option<&Deployment>,
) -> Check {
    if !state.dry_run {
        if let Err(why) = deploy_at_zero(ctl, state, live).await {
            return Check::Unknown {
                why: format!("could not deploy the version at 0% to probe it: {why}"),
            };
        }
    }
    match fetch::probe_healthz(ctl, &state.script, &state.version_id).await {
        Probe::Ok => Check::Pass {
            detail: "/healthz answered 200 pinned to the version".into(),
        },
        Probe::Failed {
            status: Some(status),
            ..
        } => Check::Fail {
            reason: format!("/healthz of the new version answered HTTP {status}"),
        },
        Probe::Failed {
            status: None,
            error,
        } => Check::Unknown {
            why: format!("/healthz unreachable: {}", error.unwrap_or_default()),
        },
        Probe::WrongVersion { answered_by } if state.dry_run => Check::Skipped {
            reason: format!(
                "dry run: the version is not deployed, so the probe reached {answered_by}"
            ),
        },
        Probe::WrongVersion { answered_by } => Check::Unknown {
            why: format!("the override has not reached the version yet ({answered_by} answered)"),
        },
    }
}

async fn deploy_at_zero<H: HttpClient, S>(
    ctl: &Controller<'_, H, S>,
    state: &RolloutState,
    live: Option<&Deployment>,
) -> Result<(), String> {
    let deployed = live.is_some_and(|d| {
        d.versions
            .iter()
            .any(|v| v.version_id.eq_ignore_ascii_case(&state.version_id))
    });
    if deployed {
        return Ok(());
    }
    let token = ctl.secrets.api_token.as_deref().unwrap_or_default();
    let split = Split::new(vec![
        VersionShare {
            version_id: state.version_id.clone(),
            percentage: 0.0,
        },
        VersionShare {
            version_id: state.baseline_version_id.clone(),
            percentage: 100.0,
        },
    ])
    .map_err(|e| e.to_string())?;
    let create = Endpoint::CreateDeployment {
        script: state.script.clone(),
        split,
        message: ZERO_PERCENT_MESSAGE.into(),
        force: false,
    }
    .to_request(&ctl.config.api, token)
    .map_err(|e| e.to_string())?;
    let resp = ctl.http.send(create).await.map_err(|e| e.to_string())?;
    cloudflare::parse_created_deployment(&resp)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

//! The rollout Durable Object: one per (environment, script), the only writer of that
//! rollout's state and audit log. Requests to it are serialised by the runtime, so hooks,
//! ticks and operator commands never interleave. It delegates to the controller.

use super::query::{query_param, query_string};
use super::respond::{self, Failure};
use super::{env, http::FetchClient, json, storage::DoStore};
use crate::api::{parse_events_query, DeployHook};
use crate::controller::{Controller, RolloutStore, TickSupply};
use crate::http_error::ApiError;
use crate::rollout::Command;
use crate::status::RolloutView;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Method, Request, Response, Result, State,
};

/// Binding name of the rollout namespace in wrangler.toml.
pub const BINDING: &str = "ROLLOUTS";

/// The header on every answer that says how many Cloudflare API calls the call made (the
/// entry gives back the rest of a hook's or a command's grant).
pub const API_CALLS_HEADER: &str = "x-gate-api-calls";

/// Body of `POST /start`.
#[derive(Serialize, Deserialize)]
pub struct StartBody {
    pub hook: DeployHook,
    pub now_ms: i64,
    /// Cloudflare API calls the start may make (granted by the registry).
    pub api_calls: Option<u32>,
}

/// Body of `POST /tick`.
#[derive(Serialize, Deserialize)]
pub struct TickBody {
    pub now_ms: i64,
    #[serde(default)]
    pub supply: TickSupply,
}

/// Body of `POST /command`.
#[derive(Serialize, Deserialize)]
pub struct CommandBody {
    pub command: Command,
    pub by: String,
    pub why: Option<String>,
    pub now_ms: i64,
    /// Cloudflare API calls the command may make (granted by the registry).
    pub api_calls: Option<u32>,
    /// The rollout the command is for (a Slack button's); refused with 409
    /// `rollout_ended` when the object holds another one, or it has ended.
    #[serde(default)]
    pub expect: Option<Expected>,
}

/// The rollout a command was made for: its version and start.
#[derive(Serialize, Deserialize)]
pub struct Expected {
    pub version_id: String,
    pub started_ms: i64,
}

/// What the status pages need of one rollout.
#[derive(Serialize, Deserialize)]
pub struct PageData {
    pub stored: crate::controller::StoredRollout,
    pub events: Vec<crate::rollout::AuditEvent>,
}

#[derive(Serialize)]
struct StartAnswer {
    created: bool,
    rollout: RolloutView,
}

#[durable_object]
pub struct RolloutObject {
    state: State,
    env: Env,
}

impl DurableObject for RolloutObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let path = format!("rollout object {}", req.path());
        respond::answer(&path, self.handle(req).await)
    }
}

impl RolloutObject {
    async fn handle(&self, mut req: Request) -> std::result::Result<Response, Failure> {
        let config = env::config(&self.env).map_err(|errors| {
            let names: Vec<String> = errors.iter().map(ToString::to_string).collect();
            ApiError::internal(format!("configuration invalid: {}", names.join("; ")))
        })?;
        let secrets = env::secrets(&self.env).await;
        let telemetry = self
            .env
            .analytics_engine("GATE_EVENTS")
            .ok()
            .map(|dataset| (dataset, config.environment.clone()));
        let store =
            DoStore::open(&self.state, telemetry).map_err(|e| ApiError::internal(e.to_string()))?;
        let ctl = Controller::new(&FetchClient, &store, &config, &secrets);
        let path = req.path();
        let resp = match (req.method(), path.as_str()) {
            (Method::Post, "/start") => {
                let body: StartBody = json::body(&mut req).await?;
                let now = Timestamp::from_millis(body.now_ms);
                ctl.limit_api_calls(body.api_calls);
                let started = ctl.start(body.hook, now).await?;
                let status = if started.created { 201 } else { 200 };
                respond::json(
                    status,
                    &StartAnswer {
                        created: started.created,
                        rollout: RolloutView::of(&started.rollout, now),
                    },
                )?
            }
            (Method::Post, "/tick") => {
                let body: TickBody = json::body(&mut req).await?;
                let now = Timestamp::from_millis(body.now_ms);
                let report = ctl.tick_with(now, body.supply).await?;
                respond::json(200, &report)?
            }
            (Method::Post, "/command") => {
                let body: CommandBody = json::body(&mut req).await?;
                let now = Timestamp::from_millis(body.now_ms);
                if let Some(expect) = &body.expect {
                    let stored = store
                        .load()
                        .await
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    let Some(stored) = stored else {
                        return Err(ApiError::conflict("rollout_ended", "no rollout here").into());
                    };
                    let target = crate::slack_actions::ButtonTarget {
                        script: stored.state.script.clone(),
                        version_id: expect.version_id.clone(),
                        started_ms: expect.started_ms,
                    };
                    crate::slack_actions::check_target(
                        &target,
                        &stored.state.version_id,
                        stored.state.started_at.millis(),
                        stored.state.phase.is_terminal(),
                    )
                    .map_err(|r| r.to_api_error())?;
                }
                ctl.limit_api_calls(body.api_calls);
                let stored = ctl.command(body.command, body.by, body.why, now).await?;
                respond::json(200, &RolloutView::of(&stored, now))?
            }
            (Method::Get, "/status") => {
                let now = Timestamp::from_millis(worker::Date::now().as_millis() as i64);
                let stored = store
                    .load()
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?
                    .ok_or_else(|| ApiError::NotFound("no rollout for this script".into()))?;
                let now = now.max(stored.last_now);
                respond::json(200, &RolloutView::of(&stored, now))?
            }
            (Method::Get, "/page-data") => {
                // The stored rollout and its newest events, for the status pages.
                let limit = query_param(&req, "latest")?
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(100)
                    .min(1_000);
                let stored = store
                    .load()
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?
                    .ok_or_else(|| ApiError::NotFound("no rollout for this script".into()))?;
                let events = store
                    .latest_events(&stored.state.version_id, limit)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                respond::json(200, &PageData { stored, events })?
            }
            (Method::Get, "/events") => {
                let page = parse_events_query(query_string(&req)?.as_deref())?;
                let events = store
                    .events(page.after, page.limit)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let next_after = events.last().map(|e| e.seq);
                respond::json(
                    200,
                    &serde_json::json!({ "events": events, "next_after": next_after }),
                )?
            }
            (method, path) => respond::error(&ApiError::NotFound(format!(
                "rollout object: no route {method} {path}"
            )))?,
        };
        resp.headers()
            .set(API_CALLS_HEADER, &ctl.api_calls().to_string())?;
        Ok(resp)
    }
}

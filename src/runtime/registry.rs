//! The registry Durable Object: the one writer of gate-wide state (the cron ledger now;
//! the set of active rollouts to fan ticks out to, later). Handlers only delegate to the core.

use super::respond;
use crate::cron::{CronLedger, TickOutcome};
use crate::http_error::ApiError;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Method, Request, RequestInit, Response,
    Result, State,
};

/// Binding name of the registry namespace in wrangler.toml.
const BINDING: &str = "REGISTRY";
/// The one registry object per environment (each environment is its own Worker).
const OBJECT_NAME: &str = "registry";
const LEDGER_KEY: &str = "cron_ledger";

#[derive(Serialize, Deserialize)]
struct TickRequest {
    scheduled_ms: i64,
}

#[durable_object]
pub struct Registry {
    state: State,
}

impl DurableObject for Registry {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/tick") => {
                let body: TickRequest = req.json().await?;
                let outcome = self
                    .record_tick(Timestamp::from_millis(body.scheduled_ms))
                    .await?;
                respond::json(200, &outcome)
            }
            (Method::Get, "/ledger") => respond::json(200, &self.load_ledger().await?),
            (method, path) => respond::error(&ApiError::NotFound(format!(
                "registry: no route {method} {path}"
            ))),
        }
    }
}

impl Registry {
    async fn load_ledger(&self) -> Result<CronLedger> {
        Ok(self
            .state
            .storage()
            .get(LEDGER_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Requests to one object are serialised by the runtime while this handler does not
    /// await anything but its own storage, so load-modify-save is race-free here.
    async fn record_tick(&self, scheduled: Timestamp) -> Result<TickOutcome> {
        let mut ledger = self.load_ledger().await?;
        let outcome = ledger.record(scheduled);
        // Saved either way: a duplicate moves the `duplicates` counter.
        self.state.storage().put(LEDGER_KEY, &ledger).await?;
        Ok(outcome)
    }
}

fn stub(env: &Env) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.get_by_name(OBJECT_NAME)
}

/// Forwards one cron tick to the registry.
pub async fn tick(env: &Env, now: Timestamp) -> Result<String> {
    let body = serde_json::to_string(&TickRequest {
        scheduled_ms: now.millis(),
    })?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://registry/tick", &init)?;
    let mut resp = stub(env)?.fetch_with_request(req).await?;
    resp.text().await
}

/// Reads the cron ledger (for `/healthz`).
pub async fn ledger(env: &Env) -> Result<CronLedger> {
    let mut resp = stub(env)?.fetch_with_str("https://registry/ledger").await?;
    resp.json().await
}

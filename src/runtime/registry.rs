//! The registry Durable Object: the one writer of gate-wide state (the book,
//! src/registry.rs): the cron ledger, the scripts with an active rollout (so cron fans out
//! without scanning), recently finished ones (for listing), and Slack webhook health.
//! Handlers only delegate to the core.

use super::{env as gate_env, http::FetchClient, respond};
use crate::controller::parity::audit;
use crate::controller::queues::watch_queues;
use crate::cron::TickOutcome;
use crate::http_error::ApiError;
pub use crate::registry::Book;
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
const KEY: &str = "registry";

#[derive(Serialize, Deserialize)]
struct TickRequest {
    scheduled_ms: i64,
}

#[derive(Serialize, Deserialize)]
pub struct TickAnswer {
    pub outcome: TickOutcome,
    /// Scripts to tick now (empty for a duplicate tick).
    pub active: Vec<String>,
}

/// A rollout object's report after a hook or a tick.
#[derive(Serialize, Deserialize)]
pub struct ScriptReport {
    pub script: String,
    pub active: bool,
    /// The rollout's phase tag after the call (`None` before its object has answered).
    pub phase: Option<String>,
    pub dead_webhook: Option<String>,
    pub now_ms: i64,
}

#[durable_object]
pub struct Registry {
    state: State,
    env: Env,
}

impl DurableObject for Registry {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/tick") => {
                let body: TickRequest = req.json().await?;
                let mut book = self.load().await?;
                let outcome = book
                    .ledger
                    .record(Timestamp::from_millis(body.scheduled_ms));
                self.save(&book).await?;
                let now = Timestamp::from_millis(body.scheduled_ms);
                let active = match outcome {
                    TickOutcome::Fresh { .. } => {
                        self.watch_queues(&mut book, now).await;
                        self.save(&book).await?;
                        book.active()
                    }
                    TickOutcome::Duplicate { .. } => Vec::new(),
                };
                respond::json(200, &TickAnswer { outcome, active })
            }
            (Method::Post, "/report") => {
                let report: ScriptReport = req.json().await?;
                let mut book = self.load().await?;
                book.note(
                    &report.script,
                    report.active,
                    report.phase.as_deref(),
                    report.now_ms,
                );
                if report.dead_webhook.is_some() || report.active {
                    book.dead_webhook = report.dead_webhook;
                }
                self.save(&book).await?;
                respond::json(200, &serde_json::json!({"ok": true}))
            }
            (Method::Get, "/book") => respond::json(200, &self.load().await?),
            (Method::Post, "/parity") => {
                let body: TickRequest = req.json().await?;
                let mut book = self.load().await?;
                let Ok(config) = gate_env::config(&self.env) else {
                    return respond::error(&ApiError::internal("configuration invalid"));
                };
                let secrets = gate_env::secrets(&self.env).await;
                let now = Timestamp::from_millis(body.scheduled_ms);
                let report = audit(&FetchClient, &config, &secrets, &mut book.parity, now).await;
                self.save(&book).await?;
                respond::json(200, &report)
            }
            (method, path) => respond::error(&ApiError::NotFound(format!(
                "registry: no route {method} {path}"
            ))),
        }
    }
}

impl Registry {
    /// Queue depth outside rollouts; problems are logged, never fail the tick.
    async fn watch_queues(&self, book: &mut Book, now: Timestamp) {
        let Ok(config) = gate_env::config(&self.env) else {
            return;
        };
        let secrets = gate_env::secrets(&self.env).await;
        if let Some(alert) =
            watch_queues(&FetchClient, &config, &secrets, &mut book.queues, now).await
        {
            worker::console_log!("queue watch: {}", alert.headline());
        }
        if let Some(why) = &book.queues.last_error {
            worker::console_warn!("queue watch: {why}");
        }
    }

    async fn load(&self) -> Result<Book> {
        Ok(self.state.storage().get(KEY).await?.unwrap_or_default())
    }

    async fn save(&self, book: &Book) -> Result<()> {
        self.state.storage().put(KEY, book).await
    }
}

fn stub(env: &Env) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.get_by_name(OBJECT_NAME)
}

async fn post<T: Serialize>(env: &Env, path: &str, body: &T) -> Result<Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(body)?.into()));
    let req = Request::new_with_init(&format!("https://registry{path}"), &init)?;
    stub(env)?.fetch_with_request(req).await
}

/// Records one cron tick; answers which scripts to tick.
pub async fn tick(env: &Env, now: Timestamp) -> Result<TickAnswer> {
    let mut resp = post(
        env,
        "/tick",
        &TickRequest {
            scheduled_ms: now.millis(),
        },
    )
    .await?;
    resp.json().await
}

/// Tells the registry whether a script still needs ticks.
pub async fn report(env: &Env, report: &ScriptReport) -> Result<()> {
    post(env, "/report", report).await.map(|_| ())
}

/// Runs the parity audit in the registry (the one writer of what was posted).
pub async fn parity(env: &Env, now: Timestamp) -> Result<Response> {
    post(
        env,
        "/parity",
        &TickRequest {
            scheduled_ms: now.millis(),
        },
    )
    .await
}

/// The whole registry book (for `/healthz` and listing).
pub async fn book(env: &Env) -> Result<Book> {
    let mut resp = stub(env)?.fetch_with_str("https://registry/book").await?;
    resp.json().await
}

//! The registry Durable Object: the one writer of gate-wide state (the book,
//! src/registry.rs): the cron ledger, the scripts with an active rollout (so cron fans out
//! without scanning), recently finished ones (for listing), the account's API budget and
//! each tick's share of it, and Slack webhook health. Handlers only delegate to the core.

use super::{env as gate_env, http::FetchClient, json, respond};
use crate::controller::parity::audit;
use crate::controller::queues::watch_queues;
use crate::cron::TickOutcome;
use crate::http_error::ApiError;
pub use crate::registry::{Book, Grant, ScriptReport, TickPlan};
use crate::slack_actions::SeenRequests;
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
    /// What to do this minute (nothing for a duplicate tick).
    pub plan: TickPlan,
}

#[derive(Serialize, Deserialize)]
struct GrantRequest {
    calls: u32,
    now_ms: i64,
    /// A deploy hook's ask: all or none, keeping the running rollouts' reserve.
    #[serde(default)]
    start: bool,
}

/// Body of `POST /slack-seen`: a verified Slack request's replay key.
#[derive(Serialize, Deserialize)]
struct SeenRequest {
    key: String,
    ts: i64,
    now_secs: i64,
}

/// Where the Slack requests seen lately are kept (`slack_actions::SeenRequests`).
const SEEN_KEY: &str = "slack_seen";

#[derive(Serialize, Deserialize)]
struct ReleaseRequest {
    grant: Grant,
    used: u32,
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
                let body: TickRequest = json::body(&mut req).await?;
                let mut book = self.load().await?;
                let outcome = book
                    .ledger
                    .record(Timestamp::from_millis(body.scheduled_ms));
                self.save(&book).await?;
                let now = Timestamp::from_millis(body.scheduled_ms);
                let plan = match outcome {
                    TickOutcome::Fresh { .. } => {
                        self.watch_queues(&mut book, now).await;
                        let plan = book.plan_tick(now);
                        self.save(&book).await?;
                        plan
                    }
                    TickOutcome::Duplicate { .. } => TickPlan::default(),
                };
                respond::json(200, &TickAnswer { outcome, plan })
            }
            (Method::Post, "/report") => {
                let report: ScriptReport = json::body(&mut req).await?;
                let mut book = self.load().await?;
                book.settle(&report);
                self.save(&book).await?;
                respond::json(200, &serde_json::json!({"ok": true}))
            }
            (Method::Post, "/settle") => {
                let reports: Vec<ScriptReport> = json::body(&mut req).await?;
                let mut book = self.load().await?;
                for report in &reports {
                    book.settle(report);
                }
                self.save(&book).await?;
                respond::json(200, &serde_json::json!({"ok": true}))
            }
            (Method::Post, "/grant") => {
                let body: GrantRequest = json::body(&mut req).await?;
                let mut book = self.load().await?;
                let now = Timestamp::from_millis(body.now_ms);
                let grant = if body.start {
                    book.grant_start(now, body.calls)
                } else {
                    book.grant(now, body.calls)
                };
                self.save(&book).await?;
                respond::json(200, &grant)
            }
            (Method::Post, "/release") => {
                let body: ReleaseRequest = json::body(&mut req).await?;
                let mut book = self.load().await?;
                book.release(body.grant, body.used);
                self.save(&book).await?;
                respond::json(200, &serde_json::json!({"ok": true}))
            }
            (Method::Get, "/book") => respond::json(200, &self.load().await?),
            (Method::Post, "/slack-seen") => {
                let body: SeenRequest = json::body(&mut req).await?;
                let storage = self.state.storage();
                let mut seen: SeenRequests =
                    json::get(&storage, SEEN_KEY).await?.unwrap_or_default();
                let first = seen.first_time(&body.key, body.ts, body.now_secs);
                if first {
                    storage.put(SEEN_KEY, &seen).await?;
                }
                respond::json(200, &serde_json::json!({ "first": first }))
            }
            (Method::Post, "/parity") => {
                let body: TickRequest = json::body(&mut req).await?;
                let mut book = self.load().await?;
                let Ok(config) = gate_env::config(&self.env) else {
                    return respond::error(&ApiError::internal("configuration invalid"));
                };
                let secrets = gate_env::secrets(&self.env).await;
                let now = Timestamp::from_millis(body.scheduled_ms);
                let (desk, budget) = (&mut book.parity, &mut book.api);
                let report = audit(&FetchClient, &config, &secrets, desk, budget, now).await;
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
        if let Some(alert) = watch_queues(
            &FetchClient,
            &config,
            &secrets,
            &mut book.queues,
            &mut book.api,
            now,
        )
        .await
        {
            worker::console_log!("queue watch: {}", alert.headline());
        }
        if let Some(why) = &book.queues.last_error {
            worker::console_warn!("queue watch: {why}");
        }
    }

    /// The book, its API budget's cap as configured now (`API_CALLS_PER_5_MIN`).
    async fn load(&self) -> Result<Book> {
        let mut book: Book = json::get(&self.state.storage(), KEY)
            .await?
            .unwrap_or_default();
        if let Ok(config) = gate_env::config(&self.env) {
            book.api.cap = config.api_calls_per_5_min;
        }
        Ok(book)
    }

    /// Written by serde_wasm_bindgen, as every build before wrote it (maps as JS `Map`s,
    /// `None` as `undefined`), so the stored book's form never changed (docs/size.md).
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

/// Records a verified Slack request; false when it was seen before (a replay).
pub async fn first_time(env: &Env, key: &str, ts: i64, now_secs: i64) -> Result<bool> {
    let body = SeenRequest {
        key: key.to_string(),
        ts,
        now_secs,
    };
    let mut resp = post(env, "/slack-seen", &body).await?;
    let answer: serde_json::Value = resp.json().await?;
    Ok(answer["first"].as_bool() == Some(true))
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

/// Books every rollout's report of one cron run in one call.
pub async fn settle(env: &Env, reports: &[ScriptReport]) -> Result<()> {
    post(env, "/settle", &reports).await.map(|_| ())
}

/// Takes up to `calls` of the account's API budget for an operator command.
pub async fn grant(env: &Env, calls: u32, now: Timestamp) -> Result<Grant> {
    ask(env, calls, now, false).await
}

/// Takes `calls` of the account's API budget for a deploy hook, or none and says until
/// when to wait (`Book::grant_start`).
pub async fn grant_start(env: &Env, calls: u32, now: Timestamp) -> Result<Grant> {
    ask(env, calls, now, true).await
}

async fn ask(env: &Env, calls: u32, now: Timestamp, start: bool) -> Result<Grant> {
    let body = GrantRequest {
        calls,
        now_ms: now.millis(),
        start,
    };
    let mut resp = post(env, "/grant", &body).await?;
    resp.json().await
}

/// Gives back what a hook's or a command's grant did not use: `used` is what its object
/// reported (the `x-gate-api-calls` header); without it the whole grant stays counted.
pub async fn release(env: &Env, grant: Grant, used: Option<u32>) {
    let Some(used) = used else { return };
    if let Err(err) = post(env, "/release", &ReleaseRequest { grant, used }).await {
        worker::console_warn!("registry: release of unused API calls failed: {err}");
    }
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

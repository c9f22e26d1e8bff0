//! Worker entry points: `fetch` (the HTTP API of SPEC "Interfaces") and `scheduled` (cron:
//! the shared counts queries, then one tick per active rollout, a few at a time, with the
//! scheduled time as "now"). Routing, auth and validation are the core's (`api`); this
//! file moves requests to the right object.

use super::env;
use super::query::query_string;
use super::registry::{self, ScriptReport};
use super::respond::{self, Failure};
use super::rollout_object::{CommandBody, PageData, StartBody, TickBody, BINDING};
use crate::api::{self, Route, MAX_BODY_BYTES};
use crate::auth::{self, Caller};
use crate::build_info::BUILD;
use crate::controller::batch::{self, BatchAnswer};
use crate::controller::{Report, TickSupply};
use crate::http_error::ApiError;
use crate::status::RolloutView;
use crate::time::Timestamp;
use futures_util::{future::join_all, stream, StreamExt};
use serde::Serialize;
use worker::{
    console_error, console_log, event, Context, Env, Method, Request, RequestInit, Response,
    Result, ScheduleContext, ScheduledEvent,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

pub(super) fn wall_clock() -> Timestamp {
    Timestamp::from_millis(worker::Date::now().as_millis() as i64)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let path = req.path();
    respond::answer(&path, handle(req, &env, &ctx).await)
}

async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
) -> std::result::Result<Response, Failure> {
    let route = api::route(req.method().as_ref(), &req.path())?;
    let mut actor = None;
    if route.needs_token() {
        let caller = match identify(&req, env).await {
            Ok(caller) => caller,
            Err(Failure::Api(ApiError::Unauthorized))
                if matches!(route, Route::StatusPage | Route::RolloutPage { .. }) =>
            {
                // Lets a browser ask for the token (as the password of Basic auth).
                let resp = respond::error(&ApiError::Unauthorized)?;
                resp.headers()
                    .set("www-authenticate", "Basic realm=\"rollout-gate\"")?;
                return Ok(resp);
            }
            Err(err) => return Err(err),
        };
        auth::check_scope(&caller, &route)?;
        actor = Some(caller.name);
    }
    let now = wall_clock();
    Ok(match route {
        Route::Health => healthz(env).await?,
        // Authenticated by Slack's signature, not a token (`runtime::slack`).
        Route::SlackActions => super::slack::handle(&mut req, env, ctx).await?,
        Route::StatusPage => status_page(env, query_string(&req)?.as_deref(), now).await?,
        Route::RolloutPage { script } => rollout_page(env, &script, now).await?,
        Route::OpenApi => {
            let resp = Response::ok(crate::openapi::document())?;
            resp.headers()
                .set("content-type", crate::openapi::CONTENT_TYPE)?;
            resp
        }
        Route::ListRollouts => {
            let query = query_string(&req)?;
            let query = api::parse_list_query(query.as_deref(), api::LIST_PAGE_DEFAULT)?;
            list(env, &query).await?
        }
        Route::StartRollout => {
            let content_type = req.headers().get("content-type")?;
            let body = read_body(&mut req).await?;
            let hook = api::parse_deploy_hook(content_type.as_deref(), &body)?;
            let script = hook.script.clone();
            let report = ScriptReport {
                script: script.clone(),
                active: true,
                now_ms: now.millis(),
                ..ScriptReport::default()
            };
            // The budget first: a hook that must wait for it leaves no trace (CI retries
            // after `Retry-After`; curl's --retry honours it on a 503).
            let grant = registry::grant_start(env, HOOK_API_CALLS, now).await?;
            if let Some(wait) = grant.wait {
                return Err(ApiError::Unavailable {
                    code: "api_budget_in_use",
                    message: wait.message(now),
                    retry_after_secs: wait.retry_after_secs(now),
                }
                .into());
            }
            // Cron ticks the script before the object starts the rollout: the start moves
            // traffic, and a crash between the start and a report made after it would leave
            // that traffic unwatched until the hook is retried (tests/e2e/test_crash.py).
            // A refused start costs one idle tick, which finds no rollout (or the one that
            // was already there) and reports what it found.
            registry::report(env, &report).await?;
            let resp = call_object(
                env,
                &script,
                Method::Post,
                "/start",
                Some(&StartBody {
                    hook,
                    now_ms: now.millis(),
                    api_calls: Some(grant.granted),
                }),
            )
            .await?;
            registry::release(env, grant, api_calls_used(&resp)).await;
            if resp.status_code() < 300 {
                // Again: a tick between the first report and the start found no rollout
                // and reported the script idle.
                registry::report(env, &report).await?;
            }
            resp
        }
        Route::RolloutStatus { script } => {
            call_object::<()>(env, &script, Method::Get, "/status", None).await?
        }
        Route::RolloutEvents { script } => {
            let query = query_string(&req)?
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            api::parse_events_query(query.strip_prefix('?'))?;
            call_object::<()>(env, &script, Method::Get, &format!("/events{query}"), None).await?
        }
        Route::Parity => registry::parity(env, now).await?,
        Route::Operator { script, command } => {
            let content_type = req.headers().get("content-type")?;
            let body = read_body(&mut req).await?;
            let who = api::parse_operator_body(content_type.as_deref(), &body)?;
            let grant = registry::grant(env, COMMAND_API_CALLS, now).await?;
            // Who acted is the verified caller; a typed `by` is only a note in `why`.
            let command = CommandBody {
                command,
                by: actor.unwrap_or_else(|| "operator".into()),
                why: api::operator_why(who),
                now_ms: now.millis(),
                api_calls: Some(grant.granted),
                expect: None,
            };
            let resp = call_object(env, &script, Method::Post, "/command", Some(&command)).await?;
            registry::release(env, grant, api_calls_used(&resp)).await;
            resp
        }
    })
}

/// Who is calling. With `STATUS_PAGE_AUTH=access` and Access's `Cf-Access-Jwt-Assertion`
/// header present, that JWT must verify (a bad one is refused, never passed on to the
/// token check: it means someone reached the gate around Access, or tampered); the
/// identity gets `ACCESS_SCOPES`, plus a token's scopes when one is also sent. Otherwise
/// a token is needed. Only the header is read, not the `CF_Authorization` cookie, as
/// Cloudflare advises ("the cookie is not guaranteed to be passed":
/// https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/).
/// An invalid configuration turns Access off (the token is needed; /healthz names the
/// problem).
async fn identify(req: &Request, env: &Env) -> std::result::Result<Caller, Failure> {
    let config = env::config(env).ok();
    let assertion = req.headers().get("cf-access-jwt-assertion")?;
    let authorization = req.headers().get("authorization")?;
    let access_caller = match (config.as_ref().and_then(|c| c.access.as_ref()), assertion) {
        (Some(access), Some(jwt)) => {
            let who = super::access::verify(access, &jwt)
                .await
                .map_err(ApiError::from)?;
            Some(Caller {
                name: format!("access:{who}"),
                scopes: config.as_ref().map(|c| c.access_scopes).unwrap_or_default(),
            })
        }
        _ => None,
    };
    if let (Some(caller), None) = (&access_caller, &authorization) {
        return Ok(caller.clone());
    }
    let secrets = env::secrets(env).await;
    let (credentials, _) = env::credentials(env, config.as_ref(), &secrets).await;
    let by_token = auth::authenticate(authorization.as_deref(), &credentials)?;
    Ok(match access_caller {
        Some(caller) => Caller {
            scopes: caller.scopes.union(by_token.scopes),
            ..caller
        },
        None => by_token,
    })
}

/// The Cloudflare API calls a rollout object's answer says its call made.
pub(super) fn api_calls_used(resp: &Response) -> Option<u32> {
    resp.headers()
        .get(super::rollout_object::API_CALLS_HEADER)
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
}

/// Reads at most `MAX_BODY_BYTES` (413 past it, before parsing anything).
async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, Failure> {
    read_limited(req, MAX_BODY_BYTES).await
}

/// Reads at most `limit` bytes (413 past it).
pub(super) async fn read_limited(
    req: &mut Request,
    limit: usize,
) -> std::result::Result<Vec<u8>, Failure> {
    if let Some(len) = req.headers().get("content-length")? {
        if len.parse::<usize>().is_ok_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge(limit).into());
        }
    }
    let body = req.bytes().await?;
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge(limit).into());
    }
    Ok(body)
}

fn object_name(env: &Env, script: &str) -> String {
    let environment = env
        .var("GATE_ENV")
        .map(|v| v.to_string())
        .unwrap_or_default();
    format!("{environment}:{script}")
}

/// Sends a request to the rollout object of `script` and returns its answer as is.
pub(super) async fn call_object<T: Serialize>(
    env: &Env,
    script: &str,
    method: Method,
    path: &str,
    body: Option<&T>,
) -> Result<Response> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        init.with_body(Some(serde_json::to_string(body)?.into()));
    }
    let req = Request::new_with_init(&format!("https://rollout{path}"), &init)?;
    let stub = env
        .durable_object(BINDING)?
        .get_by_name(&object_name(env, script))?;
    stub.fetch_with_request(req).await
}

/// The daily cron expression of the parity audit (wrangler.toml `[triggers]`).
const AUDIT_CRON: &str = "0 6 * * *";

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // The scheduled time, not the wall clock, is "now": tests replay a rollout by firing
    // ticks with increasing `time`, and a late delivery still counts for its own minute.
    let now = Timestamp::from_millis(event.schedule() as i64);
    if event.cron() == AUDIT_CRON {
        match registry::parity(&env, now).await {
            Ok(resp) => console_log!("parity audit {now}: HTTP {}", resp.status_code()),
            Err(err) => console_error!("parity audit {now} failed: {err}"),
        }
        return;
    }
    if let Err(err) = fan_out(&env, now).await {
        // The scheduled handler returns nothing; an unlogged error would vanish.
        console_error!("tick {now} failed: {err}");
    }
}

/// Cloudflare API calls a deploy hook is granted: the stable version's lookup, the
/// pre-flight's reads and its write at 0%, with room for a retry.
const HOOK_API_CALLS: u32 = 10;
/// Cloudflare API calls an operator command is granted: a read before its write, the write
/// and a forced re-send.
pub(super) const COMMAND_API_CALLS: u32 = 4;

/// Rollout ticks in flight at once. An invocation may have six connections waiting for
/// response headers, and a seventh is queued until one of them has its headers
/// (https://developers.cloudflare.com/workers/platform/limits/#simultaneous-open-connections,
/// and the changelog of 2026-04-09), not refused. Whether a call into a Durable Object is
/// such a connection is not documented: if it is, the platform runs six of these at a time
/// and queues the rest; if not, all of them run. Both are within the limits, and each
/// answer's body is read as soon as it comes, so none holds a connection. wrangler dev does
/// not enforce the six, so the load run (docs/scale.md) measures the second case.
const TICKS_IN_FLIGHT: usize = 24;

fn elapsed_ms(since: f64) -> i64 {
    (worker::Date::now().as_millis() as f64 - since) as i64
}

/// One minute of cron: the registry plans it (who ticks, each one's share of the API
/// budget, the shared counts queries), the shared queries run, the ticks run
/// `TICKS_IN_FLIGHT` at a time, and every report is booked in one call. Each line logged
/// carries the milliseconds since the handler started (`+N ms`), which the load run reads.
async fn fan_out(env: &Env, now: Timestamp) -> Result<()> {
    let started = worker::Date::now().as_millis() as f64;
    let plan = registry::tick(env, now).await?.plan;
    let answers = shared_counts(env, &plan.batches).await;
    let supplies = batch::supplies(&plan, &answers);
    let reports: Vec<ScriptReport> = stream::iter(supplies)
        .map(|(script, supply)| tick_one(env, now, started, script, supply))
        .buffer_unordered(TICKS_IN_FLIGHT)
        .filter_map(|report| async move { report })
        .collect()
        .await;
    registry::settle(env, &reports).await?;
    console_log!(
        "tick {now}: {} of {} rollout(s) ticked, {} shared counts quer(ies), done +{} ms",
        reports.len(),
        plan.ticks.len(),
        plan.batches.len(),
        elapsed_ms(started)
    );
    Ok(())
}

/// The shared counts queries, all at once (at most one per 50 rollouts).
async fn shared_counts(
    env: &Env,
    batches: &[crate::clients::analytics::batch::CountsBatch],
) -> Vec<BatchAnswer> {
    if batches.is_empty() {
        return Vec::new();
    }
    let Ok(config) = env::config(env) else {
        let why = || Err("the gate's configuration is invalid".to_string());
        return batches.iter().map(|_| why()).collect();
    };
    let secrets = env::secrets(env).await;
    let http = super::http::FetchClient;
    join_all(
        batches
            .iter()
            .map(|b| batch::query_batch(&http, &config, &secrets, b)),
    )
    .await
}

/// One rollout's tick; its report for the registry, `None` when the object failed (the
/// registry keeps it active, so the next minute ticks it again).
async fn tick_one(
    env: &Env,
    now: Timestamp,
    started: f64,
    script: String,
    supply: TickSupply,
) -> Option<ScriptReport> {
    let body = TickBody {
        now_ms: now.millis(),
        supply,
    };
    let report: Report = match call_object(env, &script, Method::Post, "/tick", Some(&body)).await {
        Ok(mut resp) if resp.status_code() == 200 => match resp.json().await {
            Ok(report) => report,
            Err(err) => {
                console_error!("tick {now} {script}: unreadable report: {err}");
                return None;
            }
        },
        Ok(mut resp) => {
            let text = resp.text().await.unwrap_or_default();
            console_error!("tick {now} {script}: HTTP {} {text}", resp.status_code());
            return None;
        }
        Err(err) => {
            console_error!("tick {now} {script}: {err}");
            return None;
        }
    };
    console_log!(
        "tick {now} {script}: phase {:?}, {} subrequest(s), {} API call(s), done +{} ms",
        report.phase,
        report.subrequests,
        report.account.api_calls,
        elapsed_ms(started)
    );
    Some(ScriptReport {
        script,
        active: !report.finished,
        phase: report.phase_tag,
        dead_webhook: report.dead_webhook,
        now_ms: now.millis(),
        account: report.account,
    })
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    environment: String,
    build: &'a crate::build_info::BuildInfo,
    cron: Option<crate::cron::CronLedger>,
    active_rollouts: Vec<String>,
    /// The account's Cloudflare API budget: calls in the last 5 minutes, cap, any block.
    cloudflare_api: Option<crate::registry::ApiUse>,
    slack_webhook: &'a str,
    /// Whether Analytics Engine SQL has its own token (`separate`) or shares the API token
    /// (`shared`), never the token.
    analytics_token: &'static str,
    /// The α budget of the configured policy (docs/statistics.md, "The α budget").
    alpha_budget: Option<crate::policy::Budget>,
    /// Who may call: "token", or "access" with the team's issuer; the named tokens and
    /// their scopes (never a value).
    auth: AuthView,
    problems: Vec<String>,
    /// Not broken, but worth changing (e.g. `HOOK_TOKEN`, which has every scope).
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct AuthView {
    page_auth: crate::config::PageAuth,
    access_issuer: Option<String>,
    access_scopes: Option<crate::auth::Scopes>,
    tokens: Vec<crate::auth::TokenSpec>,
    hook_token: bool,
}

/// The gate's own health: build identity, cron progress, and what is wrong, by name
/// (a missing secret is named, never shown).
async fn healthz(env: &Env) -> Result<Response> {
    let environment = env
        .var("GATE_ENV")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mut problems: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let config = env::config(env);
    let alpha_budget = match &config {
        Ok(config) => Some(config.policy.budget()),
        Err(errors) => {
            problems.extend(errors.iter().map(|e| format!("config {e}")));
            None
        }
    };
    let config = config.ok();
    let secrets = env::secrets(env).await;
    let (_, missing_tokens) = env::credentials(env, config.as_ref(), &secrets).await;
    let named_tokens = config.as_ref().is_some_and(|c| !c.tokens.is_empty());
    problems.extend(
        secrets
            .missing()
            .iter()
            // With named tokens, HOOK_TOKEN is not needed.
            .filter(|name| !(named_tokens && **name == "HOOK_TOKEN"))
            .map(|name| format!("secret {name} is not set"))
            .chain(
                missing_tokens
                    .iter()
                    .map(|name| format!("secret {name} is not set (API_TOKENS names it)")),
            ),
    );
    let signing_secret = secrets.slack_signing_secret.is_some();
    let operators = config
        .as_ref()
        .is_some_and(|c| !c.slack_operators.is_empty());
    if signing_secret != operators {
        warnings.push(
            "Slack actions are off: they need both the secret SLACK_SIGNING_SECRET and the var \
             SLACK_OPERATORS, and only one is set (docs/deploy.md, step 6)"
                .into(),
        );
    }
    let hook_token = secrets.hook_token.as_deref().is_some_and(|t| !t.is_empty());
    if hook_token {
        warnings.push(
            "HOOK_TOKEN has every scope (start, operate, read): give each caller a named token \
             with only its scopes (API_TOKENS, docs/deploy.md) and remove HOOK_TOKEN"
                .into(),
        );
    }
    let auth = AuthView {
        page_auth: config.as_ref().map(|c| c.page_auth).unwrap_or_default(),
        access_issuer: config
            .as_ref()
            .and_then(|c| c.access.as_ref())
            .map(|a| a.issuer.clone()),
        access_scopes: config
            .as_ref()
            .filter(|c| c.access.is_some())
            .map(|c| c.access_scopes),
        tokens: config.map(|c| c.tokens).unwrap_or_default(),
        hook_token,
    };
    let (cron, active, api, dead) = match registry::book(env).await {
        Ok(book) => {
            let active = book.active();
            let api = book.api_use(wall_clock());
            (Some(book.ledger), active, Some(api), book.dead_webhook)
        }
        Err(err) => {
            console_error!("healthz: registry unreachable: {err}");
            problems.push("registry durable object unreachable".to_string());
            (None, Vec::new(), None, None)
        }
    };
    let slack_webhook = match &dead {
        Some(_) => "dead",
        None if secrets.slack_webhook_url.is_some() => "ok",
        None => "not configured",
    };
    if let Some(code) = dead {
        problems.push(format!("Slack webhook is dead ({code}); messages are held"));
    }
    let healthy = problems.is_empty();
    respond::json(
        if healthy { 200 } else { 503 },
        &Health {
            status: if healthy { "ok" } else { "degraded" },
            environment,
            build: &BUILD,
            cron,
            active_rollouts: active,
            cloudflare_api: api,
            slack_webhook,
            analytics_token: secrets.analytics_token_mode(),
            alpha_budget,
            auth,
            problems,
            warnings,
        },
    )
}

/// Every known script's rollout view (active and recent).
/// `GET /v1/rollouts`: one page of the registry's listing, each script's status read from
/// its object (one call per script shown, whatever the number of rollouts).
async fn list(env: &Env, query: &api::ListQuery) -> Result<Response> {
    let book = registry::book(env).await?;
    let listing = book.list(query);
    let mut rollouts = Vec::new();
    for script in &listing.scripts {
        let mut resp = call_object::<()>(env, script, Method::Get, "/status", None).await?;
        if resp.status_code() == 200 {
            rollouts.push(resp.json::<serde_json::Value>().await?);
        }
    }
    respond::json(
        200,
        &serde_json::json!({
            "rollouts": rollouts,
            "matching": listing.matching,
            "next_cursor": listing.next_cursor,
        }),
    )
}

async fn page_data(env: &Env, script: &str, latest: u32) -> Result<Option<PageData>> {
    let path = format!("/page-data?latest={latest}");
    let mut resp = call_object::<()>(env, script, Method::Get, &path, None).await?;
    if resp.status_code() != 200 {
        return Ok(None);
    }
    resp.json().await.map(Some)
}

fn page(html: String) -> Result<Response> {
    let resp = Response::ok(html)?;
    for (name, value) in crate::page::HEADERS {
        resp.headers().set(name, value)?;
    }
    Ok(resp)
}

fn environment(env: &Env) -> String {
    env.var("GATE_ENV")
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// `GET /`: one page of active and recent rollouts (server-rendered, no script), filtered
/// and paged as `GET /v1/rollouts` is, `INDEX_PAGE` to a page.
async fn status_page(env: &Env, query: Option<&str>, now: Timestamp) -> Result<Response> {
    let query = match api::parse_list_query(query, api::INDEX_PAGE) {
        Ok(query) => query,
        Err(err) => return respond::error(&err),
    };
    let book = registry::book(env).await?;
    let listing = book.list(&query);
    let mut rollouts = Vec::new();
    for script in &listing.scripts {
        if let Some(data) = page_data(env, script, 60).await? {
            let view = RolloutView::of(&data.stored, now.max(data.stored.last_now));
            rollouts.push((view, data.events));
        }
    }
    let nav = crate::page::IndexPage {
        query,
        matching: listing.matching,
        next_cursor: listing.next_cursor,
    };
    page(crate::page::render_index_page(
        &environment(env),
        &rollouts,
        Some(&nav),
        now,
    ))
}

/// `GET /rollouts/{script}`: one rollout's timeline, reasons and audit log.
async fn rollout_page(env: &Env, script: &str, now: Timestamp) -> Result<Response> {
    let Some(data) = page_data(env, script, 500).await? else {
        return respond::error(&ApiError::NotFound(format!("no rollout for {script}")));
    };
    let now = now.max(data.stored.last_now);
    let view = RolloutView::of(&data.stored, now);
    page(crate::page::render_rollout(
        &environment(env),
        &view,
        &data.events,
        now,
    ))
}

//! Worker entry points: `fetch` (HTTP routes) and `scheduled` (cron, forwarded to the
//! registry Durable Object with the scheduled time as "now").

use super::{registry, respond};
use crate::build_info::BUILD;
use crate::http_error::ApiError;
use crate::time::Timestamp;
use serde::Serialize;
use worker::{
    console_error, console_log, event, Context, Env, Method, Request, Response, Result,
    ScheduleContext, ScheduledEvent,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let answer = match (req.method(), path.as_str()) {
        (Method::Get, "/healthz") => healthz(&env).await,
        (method, "/healthz") => respond::error(&ApiError::MethodNotAllowed(method.to_string())),
        (method, _) => respond::error(&ApiError::NotFound(format!("no route {method} {path}"))),
    };
    answer.or_else(|err| respond::internal(&path, &err))
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // The scheduled time, not the wall clock, is "now": tests replay a rollout by firing
    // ticks with increasing `time`, and a late delivery still counts for its own minute.
    let now = Timestamp::from_millis(event.schedule() as i64);
    match registry::tick(&env, now).await {
        Ok(outcome) => console_log!("tick {now}: {outcome}"),
        // The scheduled handler returns nothing; an unlogged error would vanish.
        Err(err) => console_error!("tick {now} failed: {err}"),
    }
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    environment: String,
    build: &'a crate::build_info::BuildInfo,
    cron: Option<crate::cron::CronLedger>,
    problems: Vec<String>,
}

/// The gate's own health: build identity, cron progress, and what is wrong (never secrets).
async fn healthz(env: &Env) -> Result<Response> {
    let environment = env
        .var("GATE_ENV")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mut problems = Vec::new();
    let cron = match registry::ledger(env).await {
        Ok(ledger) => Some(ledger),
        Err(err) => {
            console_error!("healthz: registry unreachable: {err}");
            problems.push("registry durable object unreachable".to_string());
            None
        }
    };
    let status = if problems.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    let code = if problems.is_empty() { 200 } else { 503 };
    respond::json(
        code,
        &Health {
            status,
            environment,
            build: &BUILD,
            cron,
            problems,
        },
    )
}

//! `POST /slack/actions`, the Slack app's interactivity Request URL: checks a click
//! (`slack_actions` has the rules; the HMAC runs in WebCrypto, the replay store is the
//! registry object), answers Slack at once, and runs the command through the rollout
//! object as the HTTP API's operator routes do, with actor `slack:<user id>`, replying in
//! the alert's thread through the click's `response_url` (in `wait_until`, after the
//! answer: Slack wants one within 3 s, https://docs.slack.dev/interactivity/handling-user-interaction).

use super::entry::{api_calls_used, call_object, read_limited, wall_clock, COMMAND_API_CALLS};
use super::http::FetchClient;
use super::respond::Failure;
use super::rollout_object::{CommandBody, Expected};
use super::{crypto, env, registry};
use crate::auth::Scope;
use crate::clients::http::{HttpClient, HttpRequest, Method as HttpMethod};
use crate::http_error::ApiError;
use crate::rollout::Command;
use crate::slack_actions::{self as slack, ButtonTarget, Click, Refusal};
use worker::{console_log, console_warn, Context, Env, Method, Request, Response};

/// Answers one click. Refusals before the signature is verified get no reply in Slack
/// (nothing in them can be trusted); refusals after it get one in the thread.
pub async fn handle(req: &mut Request, env: &Env, ctx: &Context) -> Result<Response, Failure> {
    let config = env::config(env).ok();
    let secrets = env::secrets(env).await;
    let operators = config.map(|c| c.slack_operators).unwrap_or_default();
    let secret = secrets.slack_signing_secret.filter(|s| !s.is_empty());
    let Some(secret) = secret.filter(|_| !operators.is_empty()) else {
        return Err(ApiError::NotFound(
            "Slack actions are off: set SLACK_SIGNING_SECRET and SLACK_OPERATORS".into(),
        )
        .into());
    };
    let body = read_limited(req, slack::MAX_BODY_BYTES).await?;
    let now_secs = wall_clock().millis().div_euclid(1_000);
    let refuse = |r: Refusal| -> Failure { r.to_api_error().into() };
    let (timestamp, signature) = slack::check_headers(
        req.headers().get("x-slack-request-timestamp")?.as_deref(),
        req.headers().get("x-slack-signature")?.as_deref(),
        now_secs,
    )
    .map_err(refuse)?;
    let base = slack::base_string(&timestamp, &body);
    let good = crypto::hmac_sha256_verify(secret.as_bytes(), &signature, &base)
        .await
        .map_err(|e| ApiError::internal(format!("HMAC verify failed: {e:?}")))?;
    if !good {
        return Err(refuse(Refusal::BadSignature));
    }
    let ts: i64 = timestamp.parse().unwrap_or_default();
    if !registry::first_time(env, &slack::replay_key(&signature), ts, now_secs).await? {
        return Err(refuse(Refusal::Replay));
    }
    let click = slack::parse_click(&body).map_err(refuse)?;
    match check(env, &operators, &click).await {
        Ok((command, target)) => {
            console_log!(
                "slack: {} asked to {command} {}",
                slack::actor(&click.user_id),
                target.script
            );
            let env = env.clone();
            ctx.wait_until(async move { act(env, click, command, target).await });
            Ok(Response::empty()?)
        }
        Err(refusal) => {
            let err = refusal.to_api_error();
            console_warn!(
                "slack: {} refused: {}",
                slack::actor(&click.user_id),
                err.code()
            );
            let command = slack::command_of(&click.action_id).ok();
            let text = slack::outcome_text(&click, command, Err(&err.to_string()));
            ctx.wait_until(async move { post_reply(&click, &text).await });
            Err(err.into())
        }
    }
}

/// Who clicked may do it, and the button is for the rollout running now.
async fn check(
    env: &Env,
    operators: &slack::Operators,
    click: &Click,
) -> Result<(Command, ButtonTarget), Refusal> {
    // Every button needs `operate`; a stranger learns nothing about the payload.
    operators.check(&click.user_id, Scope::Operate)?;
    let command = slack::command_of(&click.action_id)?;
    let target = ButtonTarget::parse(&click.value)?;
    let ended = |why: String| Refusal::RolloutEnded(why);
    let mut resp = call_object::<()>(env, &target.script, Method::Get, "/status", None)
        .await
        .map_err(|e| ended(format!("the rollout could not be read: {e}")))?;
    if resp.status_code() != 200 {
        return Err(ended(format!("no rollout for {}", target.script)));
    }
    let view: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| ended(format!("the rollout could not be read: {e}")))?;
    slack::check_target(
        &target,
        view["version_id"].as_str().unwrap_or_default(),
        view["started_at"].as_i64().unwrap_or_default(),
        view["terminal"].as_bool() != Some(false),
    )?;
    Ok((command, target))
}

/// Runs the command and says how it went in the thread.
async fn act(env: Env, click: Click, command: Command, target: ButtonTarget) {
    let result = run(&env, &click, command, &target).await;
    let text = match &result {
        Ok(phase) => slack::outcome_text(&click, Some(command), Ok(phase)),
        Err(why) => slack::outcome_text(&click, Some(command), Err(why)),
    };
    post_reply(&click, &text).await;
}

/// The operator command path of `POST /v1/rollouts/{script}/{command}`, with the rollout
/// object checking again that the button's rollout is the one it holds.
async fn run(
    env: &Env,
    click: &Click,
    command: Command,
    target: &ButtonTarget,
) -> Result<String, String> {
    let now = wall_clock();
    let grant = registry::grant(env, COMMAND_API_CALLS, now)
        .await
        .map_err(|e| format!("the gate could not take the command: {e}"))?;
    let body = CommandBody {
        command,
        by: slack::actor(&click.user_id),
        why: None,
        now_ms: now.millis(),
        api_calls: Some(grant.granted),
        expect: Some(Expected {
            version_id: target.version_id.clone(),
            started_ms: target.started_ms,
        }),
    };
    let resp = call_object(env, &target.script, Method::Post, "/command", Some(&body)).await;
    let mut resp = match resp {
        Ok(resp) => resp,
        Err(e) => {
            registry::release(env, grant, None).await;
            return Err(format!("the rollout could not be reached: {e}"));
        }
    };
    registry::release(env, grant, api_calls_used(&resp)).await;
    let status = resp.status_code();
    let answer: serde_json::Value = resp.json().await.unwrap_or_default();
    if status == 200 {
        Ok(answer["phase_name"]
            .as_str()
            .unwrap_or("unknown")
            .to_string())
    } else {
        Err(answer["error"]["message"]
            .as_str()
            .unwrap_or("the command failed")
            .to_string())
    }
}

/// Posts `text` to the click's `response_url`, in the alert's thread. A failure is logged:
/// the command has happened (or not) either way, and the audit log has it.
async fn post_reply(click: &Click, text: &str) {
    let request = HttpRequest {
        method: HttpMethod::Post,
        url: click.response_url.clone(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(slack::reply(click, text).to_string()),
    };
    match FetchClient.send(request).await {
        Ok(resp) if resp.is_success() => {}
        Ok(resp) => console_warn!("slack: response_url answered HTTP {}", resp.status),
        Err(err) => console_warn!("slack: response_url unreachable: {err}"),
    }
}

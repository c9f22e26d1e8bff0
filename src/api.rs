//! The gate's HTTP API as pure functions: routing, the bearer-token check (constant time),
//! and validation of deploy hooks and operator commands into typed requests. The runtime
//! only moves bytes; bad input is refused here, before any state is touched.

use crate::base64;
use crate::clients::{is_script_name, is_uuid};
use crate::http_error::ApiError;
use crate::rollout::Command;
use crate::schedule::{Schedule, ScheduleRequest};
use serde::Deserialize;

/// Largest request body accepted, in bytes (a deploy hook is well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest CI message kept, in bytes (Cloudflare's `workers/message` annotation limit
/// is smaller; the deployment builder truncates again).
pub const MAX_MESSAGE_BYTES: usize = 1_000;
/// Default and largest page size of the audit log.
pub const EVENTS_PAGE_DEFAULT: u32 = 50;
pub const EVENTS_PAGE_MAX: u32 = 500;

/// What a request asks for, once its method and path are matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Health,
    /// `GET /`
    StatusPage,
    /// `GET /rollouts/{script}`: one rollout's page.
    RolloutPage { script: String },
    /// `GET /openapi.json`
    OpenApi,
    /// `GET /v1/rollouts`
    ListRollouts,
    /// `POST /v1/rollouts`
    StartRollout,
    /// `GET /v1/rollouts/{script}`
    RolloutStatus { script: String },
    /// `GET /v1/rollouts/{script}/events`
    RolloutEvents { script: String },
    /// `POST /v1/rollouts/{script}/{pause,resume,promote,abort}`
    Operator { script: String, command: Command },
    /// `POST /v1/parity`: run the binding parity audit now.
    Parity,
    /// `POST /slack/actions`: a click on an alert's button, signed by Slack (no token).
    SlackActions,
}

impl Route {
    /// True for every `/v1` route and the status pages (which show rollout details; see
    /// docs/deploy.md for Cloudflare Access instead). Only `/healthz` and the API
    /// description are open; `/slack/actions` needs Slack's signature instead.
    pub fn needs_token(&self) -> bool {
        !matches!(self, Route::Health | Route::OpenApi | Route::SlackActions)
    }
}

/// Matches a method and path.
///
/// # Errors
/// `NotFound` for an unknown path or a script name Cloudflare would refuse,
/// `MethodNotAllowed` for a known path with the wrong method.
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (route, allowed) = match segments.as_slice() {
        [] | [""] => (Route::StatusPage, "GET"),
        ["healthz"] => (Route::Health, "GET"),
        ["openapi.json"] => (Route::OpenApi, "GET"),
        ["rollouts", script] => (
            Route::RolloutPage {
                script: script_in_path(script)?,
            },
            "GET",
        ),
        ["v1", "parity"] => (Route::Parity, "POST"),
        ["slack", "actions"] => (Route::SlackActions, "POST"),
        ["v1", "rollouts"] => match method {
            "POST" => (Route::StartRollout, "POST"),
            _ => (Route::ListRollouts, "GET"),
        },
        ["v1", "rollouts", script] => (
            Route::RolloutStatus {
                script: script_in_path(script)?,
            },
            "GET",
        ),
        ["v1", "rollouts", script, "events"] => (
            Route::RolloutEvents {
                script: script_in_path(script)?,
            },
            "GET",
        ),
        ["v1", "rollouts", script, verb] => (
            Route::Operator {
                script: script_in_path(script)?,
                command: command_from(verb)
                    .ok_or_else(|| ApiError::NotFound(format!("no route {method} {path}")))?,
            },
            "POST",
        ),
        _ => return Err(ApiError::NotFound(format!("no route {method} {path}"))),
    };
    if method == allowed {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed(method.to_string()))
    }
}

fn script_in_path(raw: &str) -> Result<String, ApiError> {
    if is_script_name(raw) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::NotFound(format!(
            "no rollout for {:?}: not a valid Worker script name",
            crate::clients::truncate_to_bytes(raw, 64)
        )))
    }
}

fn command_from(verb: &str) -> Option<Command> {
    Some(match verb {
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "promote" => Command::Promote,
        "abort" => Command::Abort,
        _ => return None,
    })
}

/// Checks `Authorization: Bearer <token>` (or `Basic` with the token as password, so a
/// browser can open the status page) against one configured token in constant time (no
/// early exit on the first differing byte). An empty configured token refuses
/// everything: a gate with no token set is closed, never open. `auth::authenticate` does
/// the same against every named token.
///
/// # Errors
/// `Unauthorized`, whose message never contains either token.
pub fn authorize(header: Option<&str>, expected: &str) -> Result<(), ApiError> {
    match presented_token(header) {
        Some(token) if !expected.is_empty() && constant_time_eq(&token, expected) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The token an `Authorization` header carries: a Bearer token, or the password of Basic
/// auth (browsers on the status page: any user name, the token as the password).
pub fn presented_token(header: Option<&str>) -> Option<String> {
    header
        .and_then(|h| h.trim().split_once(' '))
        .and_then(|(scheme, value)| {
            if scheme.eq_ignore_ascii_case("bearer") {
                Some(value.trim().to_string())
            } else if scheme.eq_ignore_ascii_case("basic") {
                let padded = value.trim().trim_end_matches('=');
                let decoded = String::from_utf8(base64::STANDARD.decode(padded)?).ok()?;
                decoded
                    .split_once(':')
                    .map(|(_, password)| password.to_string())
            } else {
                None
            }
        })
}

/// Compares in time that depends only on the lengths, not on where the bytes differ
/// (`black_box` keeps the optimiser from turning the loop into an early exit).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
        diff = std::hint::black_box(diff);
    }
    diff == 0
}

/// The deploy hook body as CI sends it (SPEC "Interfaces").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployHookBody {
    script: String,
    version_id: String,
    #[serde(default)]
    git_sha: Option<String>,
    #[serde(default)]
    baseline_version_id: Option<String>,
    #[serde(default)]
    schedule: Option<ScheduleRequest>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    message: Option<String>,
}

/// A validated deploy hook. `baseline_version_id: None` means "whatever serves 100% now",
/// which the gate reads from the live deployment before starting.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
pub struct DeployHook {
    pub script: String,
    pub version_id: String,
    pub git_sha: Option<String>,
    pub baseline_version_id: Option<String>,
    pub schedule: Schedule,
    pub dry_run: bool,
    pub message: Option<String>,
}

/// Validates a deploy hook request.
///
/// # Errors
/// 415 unless the content type is JSON; 413 over `MAX_BODY_BYTES`; 400 for malformed JSON,
/// unknown, missing or mistyped fields; 422 for values Cloudflare or the gate would refuse
/// (script name, version ids, git sha, schedule).
pub fn parse_deploy_hook(content_type: Option<&str>, body: &[u8]) -> Result<DeployHook, ApiError> {
    let raw: DeployHookBody = parse_json_body(content_type, body)?;
    if !is_script_name(&raw.script) {
        return Err(ApiError::unprocessable(
            "invalid_script",
            "script must be 1-63 characters of a-z, 0-9, '-' and '_', not starting or ending with '-'",
        ));
    }
    check_uuid("version_id", &raw.version_id)?;
    if let Some(baseline) = &raw.baseline_version_id {
        check_uuid("baseline_version_id", baseline)?;
        if baseline.eq_ignore_ascii_case(&raw.version_id) {
            return Err(ApiError::unprocessable(
                "same_version",
                "baseline_version_id equals version_id; nothing to roll out",
            ));
        }
    }
    if let Some(sha) = &raw.git_sha {
        if !(7..=40).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::unprocessable(
                "invalid_git_sha",
                "git_sha must be 7-40 hexadecimal characters",
            ));
        }
    }
    let schedule = match &raw.schedule {
        None => Schedule::default(),
        Some(request) => Schedule::from_request(request)
            .map_err(|e| ApiError::unprocessable("invalid_schedule", e.to_string()))?,
    };
    let message = raw
        .message
        .map(|m| crate::clients::truncate_to_bytes(&m, MAX_MESSAGE_BYTES).to_string());
    Ok(DeployHook {
        script: raw.script,
        version_id: raw.version_id.to_ascii_lowercase(),
        git_sha: raw.git_sha.map(|s| s.to_ascii_lowercase()),
        baseline_version_id: raw.baseline_version_id.map(|s| s.to_ascii_lowercase()),
        schedule,
        dry_run: raw.dry_run,
        message,
    })
}

fn check_uuid(field: &str, value: &str) -> Result<(), ApiError> {
    if is_uuid(value) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_version_id",
            format!("{field} must be a version UUID like 4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f"),
        ))
    }
}

/// Who asked for an operator command and why (both optional, shown in the audit log).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorBody {
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Validates an operator command body; an empty (or blank) body means no `by` and no
/// `reason`, whatever its content type.
///
/// # Errors
/// As `parse_deploy_hook` for content type, size (a blank body over `MAX_BODY_BYTES` too)
/// and JSON shape.
pub fn parse_operator_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<OperatorBody, ApiError> {
    // The blank-body shortcut must not accept what the cap refuses.
    if body.len() <= MAX_BODY_BYTES && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(OperatorBody::default());
    }
    let mut parsed: OperatorBody = parse_json_body(content_type, body)?;
    for text in [&mut parsed.by, &mut parsed.reason].into_iter().flatten() {
        *text = crate::clients::truncate_to_bytes(text, 200).to_string();
    }
    Ok(parsed)
}

/// The `why` an operator command records: the caller's reason, with the `by` they typed
/// kept only as a note (`(note: by alice, unverified)`). Who acted is the verified caller
/// (`auth::Caller::name`: `token:<name>`, `access:<email>`), recorded as `by`; a typed
/// name proves nothing, so it never stands in for it.
pub fn operator_why(body: OperatorBody) -> Option<String> {
    match (body.reason, body.by.filter(|b| !b.trim().is_empty())) {
        (reason, None) => reason,
        (None, Some(by)) => Some(format!("(note: by {by}, unverified)")),
        (Some(reason), Some(by)) => Some(format!("{reason} (note: by {by}, unverified)")),
    }
}

/// Paging of the audit log: events with sequence number greater than `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventsPage {
    pub after: u64,
    pub limit: u32,
}

/// Parses `?after=<seq>&limit=<n>` (both optional).
///
/// # Errors
/// 400 `invalid_query` for a non-numeric value or an unknown parameter.
pub fn parse_events_query(query: Option<&str>) -> Result<EventsPage, ApiError> {
    let mut page = EventsPage {
        after: 0,
        limit: EVENTS_PAGE_DEFAULT,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || ApiError::bad_request("invalid_query", format!("bad query parameter {key:?}"));
        match key {
            "after" => page.after = value.parse().map_err(|_| bad())?,
            "limit" => {
                let limit: u32 = value.parse().map_err(|_| bad())?;
                page.limit = limit.clamp(1, EVENTS_PAGE_MAX);
            }
            _ => return Err(bad()),
        }
    }
    Ok(page)
}

/// Rollouts listed per page by default, and at most; the status page shows `INDEX_PAGE`.
pub const LIST_PAGE_DEFAULT: usize = 50;
pub const INDEX_PAGE: usize = 20;
pub const LIST_PAGE_MAX: usize = 200;

/// `GET /v1/rollouts`'s filters and page: scripts in name order after `cursor`, at most
/// `limit`, of the given phase (its tag, `Phase::tag`), whose name starts with `script`,
/// active or finished. One environment is one gate Worker (one registry), so the
/// environment is the gate asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub phase: Option<String>,
    pub script: Option<String>,
    pub active: Option<bool>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// Parses `?phase=&script=&active=&cursor=&limit=` (all optional; percent-decoded), with
/// `default_limit` where `limit` is not given (`LIST_PAGE_DEFAULT` for the API,
/// `INDEX_PAGE` for the status page).
///
/// # Errors
/// 400 `invalid_query` for an unknown parameter, a phase that is none of `Phase::tag`'s,
/// `active` other than `true` or `false`, or a non-numeric `limit`.
pub fn parse_list_query(query: Option<&str>, default_limit: usize) -> Result<ListQuery, ApiError> {
    let mut list = ListQuery {
        limit: default_limit.clamp(1, LIST_PAGE_MAX),
        ..ListQuery::default()
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || ApiError::bad_request("invalid_query", format!("bad query parameter {key:?}"));
        let value = percent_decode(raw).ok_or_else(bad)?;
        match key {
            "phase" if PHASE_TAGS.contains(&value.as_str()) => list.phase = Some(value),
            "script" => list.script = Some(value),
            "cursor" => list.cursor = Some(value),
            "active" => list.active = Some(value.parse().map_err(|_| bad())?),
            "limit" => {
                let limit: usize = value.parse().map_err(|_| bad())?;
                list.limit = limit.clamp(1, LIST_PAGE_MAX);
            }
            _ => return Err(bad()),
        }
    }
    Ok(list)
}

impl ListQuery {
    /// The first page of everything, at `INDEX_PAGE` rollouts (the status page's default).
    pub fn first() -> Self {
        ListQuery {
            limit: INDEX_PAGE,
            ..ListQuery::default()
        }
    }

    /// The query string (without `?`) that asks for this listing's page after `cursor`,
    /// values percent-encoded.
    pub fn to_query(&self, cursor: Option<&str>) -> String {
        let mut pairs = Vec::new();
        let active = self.active.map(|a| a.to_string());
        let limit = Some(self.limit.to_string());
        for (key, value) in [
            ("phase", self.phase.as_deref()),
            ("script", self.script.as_deref()),
            ("active", active.as_deref()),
            ("limit", limit.as_deref()),
            ("cursor", cursor),
        ] {
            if let Some(value) = value {
                pairs.push(format!("{key}={}", percent_encode(value)));
            }
        }
        pairs.join("&")
    }
}

/// Unreserved characters as they are, every other byte `%XX`: a query value here, a path
/// segment on the status page (`page::html::path_segment`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every `Phase::tag`.
pub const PHASE_TAGS: [&str; 11] = [
    "preflight",
    "ramping",
    "baking",
    "completed",
    "rolling_back",
    "rolled_back",
    "paused",
    "aborted",
    "drifted",
    "superseded",
    "failed",
];

/// `%XX` decoding of a query value or a form field (`+` is a space); `None` for a `%`
/// without two hex digits or a result that is not UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn parse_json_body<T: serde::de::DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, ApiError> {
    let is_json = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    // Read as text, as every other JSON the Worker reads: `from_slice` would build a second
    // deserializer of each body type into the wasm (docs/size.md).
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not UTF-8: {e}"))
    })?;
    serde_json::from_str(text).map_err(|e| json_error(&e))
}

/// Names the JSON problem precisely; serde's message says which field and where.
fn json_error(err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let text = err.to_string();
    let code = match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => "malformed_json",
        Category::Data if text.starts_with("unknown field") => "unknown_field",
        Category::Data if text.starts_with("missing field") => "missing_field",
        Category::Data => "invalid_field",
    };
    ApiError::bad_request(code, text)
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;

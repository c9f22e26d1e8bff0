//! Slack actions as data (issue 20, part 4): the signed request's checks (the `v0` base
//! string, the 5-minute window, the signature header), the `block_actions` payload, the
//! button values the gate puts on its alerts, the allow-list of Slack users with scopes,
//! every refusal with its status and code, and the thread reply. Pure; the runtime
//! (`runtime::slack`) does the HMAC in WebCrypto, the replay store and the command.
//!
//! Sources: Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack,
//! as implemented by the official `slack_sdk.signature.SignatureVerifier`: base string
//! `v0:{timestamp}:{body}`, `abs(now - timestamp) > 60 * 5` refused, `compare_digest`);
//! the `block_actions` payload (https://docs.slack.dev/reference/interaction-payloads).

use crate::api::percent_decode;
use crate::auth::{Scope, Scopes};
use crate::clients::slack::{escape_mrkdwn, Block, Button, ButtonStyle, Confirm, Text};
use crate::http_error::ApiError;
use crate::rollout::Command;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Seconds a request's timestamp may be off the gate's clock, either way (Slack's SDK:
/// `abs(now - timestamp) > 60 * 5` is refused).
pub const WINDOW_SECS: i64 = 300;
/// How long a seen request is remembered for replay refusal: longer than the window
/// both ways, so a request is refused as a replay or as stale, never let in twice.
pub const REPLAY_MEMORY_SECS: i64 = 2 * WINDOW_SECS + 60;
/// Largest body accepted on `/slack/actions`. A click carries the whole message with its
/// blocks, up to 40,000 characters of text, form-encoded (up to 3 bytes per character
/// once percent-encoded, some 9 for non-ASCII): well above the API's 16 KiB.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// The `block_id` of the gate's buttons.
pub const BLOCK_ID: &str = "rollout_gate_actions";

/// Why a request to `/slack/actions` is refused; each has a status and a stable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-Slack-Signature` or `X-Slack-Request-Timestamp` header (401 `slack_unsigned`).
    Unsigned,
    /// The timestamp is not an integer or more than `WINDOW_SECS` away from now, in
    /// either direction (401 `slack_stale`).
    Stale,
    /// The signature is malformed or does not match (401 `slack_bad_signature`).
    BadSignature,
    /// The same signed request again, inside the window (409 `slack_replay`).
    Replay,
    /// Signed, but not a button click the gate makes (400 `slack_bad_payload`).
    BadPayload(String),
    /// The Slack user is not in `SLACK_OPERATORS` (403 `slack_unknown_user`).
    UnknownUser(String),
    /// The Slack user lacks the scope the button needs (403 `missing_scope`).
    MissingScope { user: String, scope: Scope },
    /// The rollout the button was for has ended, or another one has started since
    /// (409 `rollout_ended`).
    RolloutEnded(String),
}

impl Refusal {
    /// The API error: status, code and a message that names no secret.
    pub fn to_api_error(&self) -> ApiError {
        let credential = |code, message: &str| ApiError::Credential {
            code,
            message: message.to_string(),
        };
        match self {
            Refusal::Unsigned => credential(
                "slack_unsigned",
                "X-Slack-Signature and X-Slack-Request-Timestamp are required",
            ),
            Refusal::Stale => credential(
                "slack_stale",
                "X-Slack-Request-Timestamp is not within 5 minutes of the gate's clock",
            ),
            Refusal::BadSignature => credential(
                "slack_bad_signature",
                "X-Slack-Signature does not match the body",
            ),
            Refusal::Replay => {
                ApiError::conflict("slack_replay", "this signed request was already received")
            }
            Refusal::BadPayload(why) => ApiError::bad_request("slack_bad_payload", why.clone()),
            Refusal::UnknownUser(user) => ApiError::Forbidden {
                code: "slack_unknown_user",
                message: format!("Slack user {user} is not in SLACK_OPERATORS"),
            },
            Refusal::MissingScope { user, scope } => ApiError::Forbidden {
                code: "missing_scope",
                message: format!("slack:{user} lacks scope '{}'", scope.name()),
            },
            Refusal::RolloutEnded(why) => ApiError::conflict("rollout_ended", why.clone()),
        }
    }
}

/// The bytes Slack signs: `v0:{timestamp}:{raw body}`.
pub fn base_string(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(timestamp.len() + body.len() + 4);
    out.extend_from_slice(b"v0:");
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b':');
    out.extend_from_slice(body);
    out
}

/// The timestamp header, when it is an integer within `WINDOW_SECS` of `now_secs`.
///
/// # Errors
/// `Stale` otherwise (a timestamp that is not a number is refused the same way).
pub fn check_timestamp(header: &str, now_secs: i64) -> Result<i64, Refusal> {
    let ts: i64 = header.trim().parse().map_err(|_| Refusal::Stale)?;
    if now_secs.abs_diff(ts) > WINDOW_SECS as u64 {
        return Err(Refusal::Stale);
    }
    Ok(ts)
}

/// The 32 bytes of `v0=<64 hex digits>`.
///
/// # Errors
/// `BadSignature` for another version, length or a non-hex digit.
pub fn parse_signature(header: &str) -> Result<[u8; 32], Refusal> {
    let hex = header
        .trim()
        .strip_prefix("v0=")
        .ok_or(Refusal::BadSignature)?;
    if hex.len() != 64 {
        return Err(Refusal::BadSignature);
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).ok_or(Refusal::BadSignature);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(out)
}

/// The headers checked in Slack's order: present, timestamp in the window, signature
/// well formed. What is left is the HMAC, which the runtime checks in WebCrypto.
///
/// # Errors
/// `Unsigned`, `Stale` or `BadSignature`.
pub fn check_headers(
    timestamp: Option<&str>,
    signature: Option<&str>,
    now_secs: i64,
) -> Result<(String, [u8; 32]), Refusal> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Refusal::Unsigned);
    };
    check_timestamp(timestamp, now_secs)?;
    Ok((timestamp.trim().to_string(), parse_signature(signature)?))
}

/// One button click, as the gate needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    pub user_id: String,
    pub team_id: Option<String>,
    pub action_id: String,
    pub value: String,
    /// Where to answer (Slack's `response_url`).
    pub response_url: String,
    /// The ts of the message clicked: the reply goes in its thread.
    pub message_ts: Option<String>,
    pub trigger_id: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: Option<User>,
    team: Option<Team>,
    #[serde(default)]
    actions: Vec<Action>,
    response_url: Option<String>,
    container: Option<Container>,
    message: Option<Message>,
    trigger_id: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Container {
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    ts: Option<String>,
}

/// The `payload` field of a form-encoded body (Slack sends `payload=<JSON>`).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (percent_decode(key)? == name).then(|| percent_decode(value))?
    })
}

/// The click in a signed body: a `block_actions` payload with exactly one button action.
///
/// # Errors
/// `BadPayload` naming what is wrong.
pub fn parse_click(body: &[u8]) -> Result<Click, Refusal> {
    let bad = |why: &str| Refusal::BadPayload(why.to_string());
    let json = form_field(body, "payload").ok_or_else(|| bad("no payload= form field"))?;
    let payload: Payload =
        serde_json::from_str(&json).map_err(|e| bad(&format!("payload is not JSON: {e}")))?;
    if payload.kind != "block_actions" {
        return Err(bad(&format!(
            "payload type {:?} is not block_actions",
            crate::clients::truncate_to_bytes(&payload.kind, 40)
        )));
    }
    let [action] = payload.actions.as_slice() else {
        return Err(bad("a click carries exactly one action"));
    };
    if action.kind != "button" {
        return Err(bad("the action is not a button"));
    }
    let user = payload.user.ok_or_else(|| bad("no user"))?;
    let response_url = payload
        .response_url
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or_else(|| bad("no response_url"))?;
    Ok(Click {
        user_id: user.id,
        team_id: payload.team.map(|t| t.id),
        action_id: action.action_id.clone(),
        value: action.value.clone().unwrap_or_default(),
        response_url,
        message_ts: payload
            .container
            .and_then(|c| c.message_ts)
            .or(payload.message.and_then(|m| m.ts)),
        trigger_id: payload.trigger_id,
    })
}

/// The rollout a button was made for: the script, the version being rolled out and when
/// that rollout started (the same version may be rolled out again later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ButtonTarget {
    pub script: String,
    pub version_id: String,
    pub started_ms: i64,
}

impl ButtonTarget {
    /// The button's `value`: `{script}:{version id}:{started ms}` (a script name and a
    /// version id have no `:`).
    pub fn value(&self) -> String {
        format!("{}:{}:{}", self.script, self.version_id, self.started_ms)
    }

    /// Parses a button's `value`.
    ///
    /// # Errors
    /// `BadPayload` for anything the gate did not make.
    pub fn parse(value: &str) -> Result<ButtonTarget, Refusal> {
        let bad = || Refusal::BadPayload("the button's value is not one the gate makes".into());
        let mut parts = value.split(':');
        let (Some(script), Some(version), Some(started), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !crate::clients::is_script_name(script) || !crate::clients::is_uuid(version) {
            return Err(bad());
        }
        Ok(ButtonTarget {
            script: script.to_string(),
            version_id: version.to_string(),
            started_ms: started.parse().map_err(|_| bad())?,
        })
    }
}

/// The command a button's `action_id` names.
///
/// # Errors
/// `BadPayload` for any other action id.
pub fn command_of(action_id: &str) -> Result<Command, Refusal> {
    COMMANDS
        .iter()
        .find(|(id, _)| *id == action_id)
        .map(|(_, c)| *c)
        .ok_or_else(|| Refusal::BadPayload("unknown action_id".into()))
}

const COMMANDS: [(&str, Command); 4] = [
    ("pause", Command::Pause),
    ("resume", Command::Resume),
    ("promote", Command::Promote),
    ("abort", Command::Abort),
];

/// Refuses a button whose rollout is not the one the object holds now, or has ended.
///
/// # Errors
/// `RolloutEnded` saying which.
pub fn check_target(
    target: &ButtonTarget,
    version_id: &str,
    started_ms: i64,
    terminal: bool,
) -> Result<(), Refusal> {
    if target.version_id != version_id || target.started_ms != started_ms {
        return Err(Refusal::RolloutEnded(format!(
            "the rollout of {} this button was for has ended; {version_id} is rolling out now",
            target.version_id
        )));
    }
    if terminal {
        return Err(Refusal::RolloutEnded(format!(
            "the rollout of {} on {} has ended",
            target.version_id, target.script
        )));
    }
    Ok(())
}

/// `SLACK_OPERATORS`: Slack user ids (never names, which users can change) with their
/// scopes, e.g. `{"U012ABCDEF": ["operate", "read"]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Operators(pub BTreeMap<String, Vec<Scope>>);

impl Operators {
    /// Parses and checks the variable: user ids of 2-32 upper-case letters and digits
    /// starting with `U` or `W` (Slack's user and Enterprise Grid user ids), each with at
    /// least one scope.
    ///
    /// # Errors
    /// The first problem, as a message.
    pub fn parse(raw: &str) -> Result<Operators, String> {
        let map: BTreeMap<String, Vec<Scope>> =
            serde_json::from_str(raw).map_err(|e| format!("invalid JSON: {e}"))?;
        for (user, scopes) in &map {
            let good = (2..=32).contains(&user.len())
                && user.starts_with(['U', 'W'])
                && user
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !good {
                return Err(format!(
                    "{:?} is not a Slack user id (U or W, then upper-case letters and digits)",
                    crate::clients::truncate_to_bytes(user, 40)
                ));
            }
            if scopes.is_empty() {
                return Err(format!("{user} has no scopes"));
            }
        }
        Ok(Operators(map))
    }

    /// Refuses a user not listed, or listed without `needed`.
    ///
    /// # Errors
    /// `UnknownUser` or `MissingScope`.
    pub fn check(&self, user: &str, needed: Scope) -> Result<(), Refusal> {
        let scopes = self
            .0
            .get(user)
            .ok_or_else(|| Refusal::UnknownUser(user.to_string()))?;
        if Scopes::of(scopes).has(needed) {
            Ok(())
        } else {
            Err(Refusal::MissingScope {
                user: user.to_string(),
                scope: needed,
            })
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Signed requests seen lately, each kept until `REPLAY_MEMORY_SECS` after its
/// timestamp (by then the window refuses it as stale). Lives in the registry object, the
/// one writer, so two copies of a request cannot both pass. Keyed by the signature: the
/// same bytes at the same timestamp have the same one, and no other request can have it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SeenRequests {
    /// (key, forget after this Unix second), oldest first.
    pub seen: Vec<(String, i64)>,
}

/// Most requests remembered; past it the oldest is forgotten early. Far above any click
/// rate a team reaches in `REPLAY_MEMORY_SECS`.
pub const SEEN_CAP: usize = 5_000;

impl SeenRequests {
    /// Records `key` (a request timestamped `ts`) and says whether it is new. Forgets the
    /// expired ones first.
    pub fn first_time(&mut self, key: &str, ts: i64, now_secs: i64) -> bool {
        self.seen.retain(|(_, until)| *until > now_secs);
        if self.seen.iter().any(|(k, _)| k == key) {
            return false;
        }
        self.seen.push((key.to_string(), ts + REPLAY_MEMORY_SECS));
        if self.seen.len() > SEEN_CAP {
            self.seen.remove(0);
        }
        true
    }
}

/// The replay key of a request: its signature in hex.
pub fn replay_key(signature: &[u8; 32]) -> String {
    signature.iter().map(|b| format!("{b:02x}")).collect()
}

/// The actor recorded in the audit log for a Slack user.
pub fn actor(user: &str) -> String {
    format!("slack:{user}")
}

/// The buttons on an alert for an active rollout: Pause, Resume, Promote (primary) and
/// Abort (danger, with a confirmation dialog).
pub fn buttons(target: &ButtonTarget) -> Block {
    let value = target.value();
    let button = |action_id: &str, label: &str, style, confirm| Button {
        text: Text::PlainText {
            text: label.into(),
            emoji: None,
        },
        action_id: action_id.into(),
        value: value.clone(),
        style,
        confirm,
    };
    let confirm = Confirm {
        title: Text::PlainText {
            text: "Abort this rollout?".into(),
            emoji: None,
        },
        text: Text::mrkdwn(format!(
            "All traffic goes back to the stable version of `{}`.",
            escape_mrkdwn(&target.script)
        )),
        confirm: Text::PlainText {
            text: "Abort".into(),
            emoji: None,
        },
        deny: Text::PlainText {
            text: "Cancel".into(),
            emoji: None,
        },
        style: Some(ButtonStyle::Danger),
    };
    Block::Actions {
        block_id: Some(BLOCK_ID.into()),
        elements: vec![
            button("pause", "Pause", None, None),
            button("resume", "Resume", None, None),
            button("promote", "Promote", Some(ButtonStyle::Primary), None),
            button("abort", "Abort", Some(ButtonStyle::Danger), Some(confirm)),
        ],
    }
}

/// The reply in the alert's thread, as the `response_url` body: in the channel, not
/// replacing the alert, threaded under it when its ts is known.
pub fn reply(click: &Click, text: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "response_type": "in_channel",
        "replace_original": false,
        "text": text,
    });
    if let Some(ts) = &click.message_ts {
        body["thread_ts"] = serde_json::Value::String(ts.clone());
    }
    body
}

/// The text of a reply: who did what, or why it was refused.
pub fn outcome_text(click: &Click, command: Option<Command>, result: Result<&str, &str>) -> String {
    let who = format!(
        "<@{}> (`{}`)",
        escape_mrkdwn(&click.user_id),
        actor(&click.user_id)
    );
    let what = command.map_or_else(|| escape_mrkdwn(&click.action_id), |c| c.to_string());
    match result {
        Ok(phase) => format!(
            "{who} ran *{what}*: the rollout is now `{}`",
            escape_mrkdwn(phase)
        ),
        Err(why) => format!("{who}: *{what}* refused: {}", escape_mrkdwn(why)),
    }
}

#[cfg(test)]
#[path = "slack_actions_tests.rs"]
mod tests;

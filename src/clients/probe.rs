//! The `/healthz` probe of one Worker version: the request pinned with
//! `Cloudflare-Workers-Version-Overrides` (an RFC 8941 dictionary, platform reference §1)
//! and reading which version answered, since a failed override silently falls back to
//! the deployment's percentages.

use super::http::{HttpRequest, HttpResponse, Method, TransportError};
use super::{is_script_name, is_uuid, truncate_chars_with_ellipsis};
use crate::json::tagged::internally_tagged;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version-override request header.
pub const OVERRIDE_HEADER: &str = "Cloudflare-Workers-Version-Overrides";

/// Where the target reports the version that answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "in", content = "name")]
pub enum VersionSource {
    /// A response header, e.g. `x-version-id` (case-insensitive).
    Header(String),
    /// A JSON body field; dots walk into objects (`version.id`).
    JsonField(String),
}

impl Default for VersionSource {
    /// `{"version_id": "<uuid>"}` in the body, as the README's `/healthz` snippet writes
    /// it from the version-metadata binding.
    fn default() -> Self {
        VersionSource::JsonField("version_id".into())
    }
}

/// How to reach a target Worker's health endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// Base URL of the target's route; `{script}` is replaced by the script name, e.g.
    /// `https://{script}.example.workers.dev` or `http://127.0.0.1:8790/{script}`.
    pub target_base_url: String,
    /// Path of the health endpoint. Default `/healthz`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Where the answer names its version.
    #[serde(default)]
    pub version_source: VersionSource,
}

fn default_path() -> String {
    "/healthz".into()
}

impl ProbeConfig {
    /// Probes `/healthz` under `target_base_url`, reading `version_id` from the JSON body.
    pub fn new(target_base_url: impl Into<String>) -> Self {
        ProbeConfig {
            target_base_url: target_base_url.into(),
            path: default_path(),
            version_source: VersionSource::default(),
        }
    }
}

/// `value` as an RFC 8941 sf-string: `"` ... `"` with `\` and `"` escaped.
///
/// # Errors
/// [`ProbeError::NotHeaderSafe`] for characters outside printable ASCII, which an
/// sf-string cannot carry.
pub fn sf_string(value: &str) -> Result<String, ProbeError> {
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(ProbeError::NotHeaderSafe(value.escape_debug().to_string()));
    }
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// True for an RFC 8941 key: `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
fn is_sf_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'*'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
}

/// The override header value pinning `script` to `version_id`: `<script>="<uuid>"`.
///
/// # Errors
/// [`ProbeError::InvalidScriptName`]; [`ProbeError::ScriptNotAKey`] for a script name an
/// RFC 8941 key cannot spell (one starting with a digit or `_`), which no override can
/// pin; [`ProbeError::InvalidVersionId`].
pub fn override_header_value(script: &str, version_id: &str) -> Result<String, ProbeError> {
    if !is_script_name(script) {
        return Err(ProbeError::InvalidScriptName(script.to_string()));
    }
    if !is_sf_key(script) {
        return Err(ProbeError::ScriptNotAKey(script.to_string()));
    }
    if !is_uuid(version_id) {
        return Err(ProbeError::InvalidVersionId(version_id.to_string()));
    }
    Ok(format!("{script}={}", sf_string(version_id)?))
}

/// `GET <base>/healthz` for `script`, pinned to `version_id`.
///
/// # Errors
/// As [`override_header_value`], plus [`ProbeError::InvalidBaseUrl`] unless the base
/// (after substitution) is an `http(s)://` URL without whitespace, and the path starts
/// with `/`.
pub fn build_probe_request(
    config: &ProbeConfig,
    script: &str,
    version_id: &str,
) -> Result<HttpRequest, ProbeError> {
    let header = override_header_value(script, version_id)?;
    let base = config.target_base_url.replace("{script}", script);
    let base = base.trim_end_matches('/');
    let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
    let clean = !base
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}');
    if !scheme_ok || !clean || base.len() <= "https://".len() || !config.path.starts_with('/') {
        return Err(ProbeError::InvalidBaseUrl);
    }
    Ok(HttpRequest {
        method: Method::Get,
        url: format!("{base}{}", config.path),
        headers: vec![
            (OVERRIDE_HEADER.into(), header),
            ("Accept".into(), "application/json".into()),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: None,
    })
}

/// The version the response says answered, per `source` (trimmed; `None` when absent).
pub fn answered_version(source: &VersionSource, resp: &HttpResponse) -> Option<String> {
    let found = match source {
        VersionSource::Header(name) => resp.header(name).map(str::to_string),
        VersionSource::JsonField(path) => {
            let json: Value = serde_json::from_str(&resp.body).ok()?;
            let field = path.split('.').try_fold(&json, |v, key| v.get(key))?;
            field.as_str().map(str::to_string)
        }
    };
    found
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

internally_tagged! {
    tag = "result";
    /// What one probe showed about the pinned version.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum ProbeOutcome {
        /// 200 from the pinned version.
        Ok,
        /// The pinned version (or, when the answer names no version, whoever answered) gave a
        /// non-200, or there was no answer (timeout, network).
        Failed {
            /// The status, when there was one.
            status: Option<u16>,
            /// The transport error or a short reason.
            error: Option<String>,
        },
        /// Another version answered: the override is not applied (yet, or the version is not
        /// in the deployment). Says nothing about the pinned version; probe again.
        WrongVersion {
            /// The version that answered.
            answered_by: String,
        },
        /// 200, but the answer does not say which version served it, so it cannot vouch for
        /// the pinned one. A misconfigured target: pre-flight should refuse with this.
        Unattributed {
            /// The status.
            status: u16,
        },
    }
}

/// Reads a probe's result: `answer` is the response, or the transport error when none
/// came. Never fails: every answer is an outcome.
pub fn read_probe(
    config: &ProbeConfig,
    expected_version: &str,
    answer: Result<&HttpResponse, &TransportError>,
) -> ProbeOutcome {
    let resp = match answer {
        Ok(resp) => resp,
        Err(error) => {
            return ProbeOutcome::Failed {
                status: None,
                error: Some(error.to_string()),
            }
        }
    };
    match answered_version(&config.version_source, resp) {
        Some(v) if !v.eq_ignore_ascii_case(expected_version) => ProbeOutcome::WrongVersion {
            answered_by: truncate_chars_with_ellipsis(&v, 64),
        },
        Some(_) if resp.status == 200 => ProbeOutcome::Ok,
        None if resp.status == 200 => ProbeOutcome::Unattributed { status: 200 },
        _ => ProbeOutcome::Failed {
            status: Some(resp.status),
            error: None,
        },
    }
}

/// Why a probe request could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The script name is not one Cloudflare accepts.
    #[error("invalid Worker script name {0:?}")]
    InvalidScriptName(String),
    /// The script name cannot be an RFC 8941 dictionary key, so it cannot be overridden.
    #[error("script name {0:?} cannot be a version-override key (must start with a-z)")]
    ScriptNotAKey(String),
    /// The version id is not a UUID.
    #[error("invalid version id {0:?}: expected a UUID")]
    InvalidVersionId(String),
    /// A value has characters an sf-string cannot carry.
    #[error("{0:?} cannot be sent as a structured header string")]
    NotHeaderSafe(String),
    /// The target base URL or path is not usable.
    #[error("invalid probe target URL or path")]
    InvalidBaseUrl,
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "bcf48806-b317-4351-9ee7-36e7d557d4de";

    #[test]
    fn sf_string_escapes_quote_and_backslash() {
        assert_eq!(sf_string("a").as_deref(), Ok("\"a\""));
        assert_eq!(sf_string(r#"a"b\c"#).as_deref(), Ok(r#""a\"b\\c""#));
        assert!(sf_string("é").is_err());
        assert!(sf_string("a\nb").is_err());
    }

    #[test]
    fn override_value_table() {
        let ok = |s: &str| override_header_value(s, V);
        assert_eq!(
            ok("mauntic-gateway").as_deref(),
            Ok(format!("mauntic-gateway=\"{V}\"").as_str())
        );
        assert_eq!(
            ok("tenant_cache").as_deref(),
            Ok(format!("tenant_cache=\"{V}\"").as_str())
        );
        assert_eq!(
            ok("9lives"),
            Err(ProbeError::ScriptNotAKey("9lives".into()))
        );
        assert_eq!(ok("_x"), Err(ProbeError::ScriptNotAKey("_x".into())));
        assert_eq!(ok("Bad"), Err(ProbeError::InvalidScriptName("Bad".into())));
        assert_eq!(
            override_header_value("w", "nope"),
            Err(ProbeError::InvalidVersionId("nope".into()))
        );
    }

    #[test]
    fn json_field_paths_walk_objects() {
        let resp = HttpResponse::new(
            200,
            format!(r#"{{"version":{{"id":" {V} "}},"version_id":7}}"#),
        );
        assert_eq!(
            answered_version(&VersionSource::JsonField("version.id".into()), &resp).as_deref(),
            Some(V)
        );
        assert_eq!(
            answered_version(&VersionSource::JsonField("version_id".into()), &resp),
            None
        );
        assert_eq!(
            answered_version(&VersionSource::JsonField("missing".into()), &resp),
            None
        );
        let text = HttpResponse::new(200, "ok");
        assert_eq!(answered_version(&VersionSource::default(), &text), None);
    }
}

//! The Cloudflare v4 API for Worker versions and deployments as data: each call is an
//! [`Endpoint`] value turned into an [`HttpRequest`]; the v4 envelope, the error
//! classification and the API rate budget live in the submodules (platform reference §1, §9).

mod budget;
mod response;
mod split;
mod version;

pub use budget::ApiBudget;
pub use response::{
    parse_changed_secrets, parse_created_deployment, parse_deployments, parse_envelope, ApiMessage,
    Deployment, DeploymentAnnotations, DeploymentCohort, Envelope, ResultInfo,
    SECRETS_CHANGED_MARKER,
};
pub use split::{Split, VersionShare};
pub use version::{
    parse_version, parse_versions_page, Binding, RequiredBinding, Version, VersionsPage,
};

use super::http::{HttpRequest, Method};
use super::{is_script_name, is_uuid, truncate_to_bytes};
use crate::json::tagged::internally_tagged;
use serde::{Deserialize, Serialize};

/// The public API base; the sandbox passes its loopback URL instead.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// Longest `workers/message` the gate sends, in bytes. The current SDK truncates at 1000
/// bytes but older SDKs (and the OpenAPI text they were generated from) say "truncated to
/// 100 bytes"; staying within 100 means every API revision keeps the whole message.
pub const MESSAGE_MAX_BYTES: usize = 100;

/// Error code the API gives for an unknown Worker script (wrangler `worker-not-found-error.ts`).
pub const WORKER_NOT_FOUND_CODE: i64 = 10007;

/// Error code of a deployment refused because secrets changed since a version in it was
/// deployed: moving traffic back to an older version needs `?force=true`. wrangler names it
/// `CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE` and retries the same body with force on
/// exactly this code (cloudflare/workers-sdk `packages/wrangler/src/versions/api.ts`,
/// `createDeployment`); the SDK documents `force` as creating the deployment "even if
/// normally blocked by something such rolling back to an older version when a secret has
/// changed" (cloudflare/cloudflare-typescript `src/resources/workers/scripts/deployments.ts`).
pub const SECRETS_CHANGED_CODE: i64 = 10220;

/// Error codes that mean the credential itself is wrong, whatever the HTTP status:
/// 10000 "Authentication error" and 9109 (HTTP 403) for a bad or under-scoped token, and
/// 6003 "Invalid request headers" with 6111 "Invalid format for Authorization header" in
/// its `error_chain`, which the real API answers with HTTP 400 to a malformed token (seen
/// in third-party captures, e.g. favonia/cloudflare-ddns `internal/api` tests, case
/// "invalid-format"; platform reference §1). The gate sends no other header that could
/// draw 6003, so a 6003 is the token.
pub const CREDENTIAL_CODES: [i64; 4] = [10000, 9109, 6003, 6111];

/// Seconds to wait after a 429 that carries no `retry-after`: going over the limit blocks
/// every call for five minutes (platform reference §9).
pub const RATE_LIMITED_DEFAULT_SECS: u64 = 300;

/// Where the API is and which account to act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiConfig {
    /// API base without a trailing slash, e.g. [`DEFAULT_BASE_URL`] or
    /// `http://127.0.0.1:8788/client/v4` for the sandbox.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The account id (32 hex characters on Cloudflare; any `[A-Za-z0-9_-]{1,64}` is
    /// accepted so the sandbox can use readable ids).
    pub account_id: String,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

impl ApiConfig {
    /// The public API for `account_id`.
    pub fn new(account_id: impl Into<String>) -> Self {
        ApiConfig {
            base_url: default_base_url(),
            account_id: account_id.into(),
        }
    }

    /// The same account on another API base (the sandbox).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// `{base}/accounts/{account_id}` after validating both.
    ///
    /// # Errors
    /// [`CloudflareError::InvalidBaseUrl`] unless the base is an `http(s)://` URL without
    /// query, fragment or whitespace; [`CloudflareError::InvalidAccountId`] unless the
    /// account id matches `[A-Za-z0-9_-]{1,64}`.
    pub fn account_url(&self) -> Result<String, CloudflareError> {
        let base = self.base_url.trim_end_matches('/');
        let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
        let clean = !base.contains(['?', '#']) && !base.chars().any(char::is_whitespace);
        if !scheme_ok || !clean || base.len() <= "https://".len() {
            return Err(CloudflareError::InvalidBaseUrl);
        }
        let id = &self.account_id;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(CloudflareError::InvalidAccountId);
        }
        Ok(format!("{base}/accounts/{id}"))
    }
}

internally_tagged! {
    tag = "op";
    /// One API call, as data. Serializable, so an action can name a call without holding
    /// a token; [`Endpoint::to_request`] adds the credentials when it is sent.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Endpoint {
        /// `GET .../workers/scripts/{script}/versions/{version_id}` → a [`Version`].
        GetVersion {
            /// Worker script name.
            script: String,
            /// Version id (UUID).
            version_id: String,
        },
        /// `GET .../workers/scripts/{script}/versions?page=&per_page=` → a [`VersionsPage`].
        ListVersions {
            /// Worker script name.
            script: String,
            /// 1-based page number.
            page: u32,
            /// Items per page.
            per_page: u32,
        },
        /// `GET .../workers/scripts/{script}/deployments` → newest first, first = live.
        ListDeployments {
            /// Worker script name.
            script: String,
        },
        /// `POST .../workers/scripts/{script}/deployments[?force=true]` with the full split.
        CreateDeployment {
            /// Worker script name.
            script: String,
            /// The whole split (1–2 versions summing to 100).
            split: Split,
            /// The `workers/message` annotation; cut to [`MESSAGE_MAX_BYTES`] when sent.
            message: String,
            /// Override blocks such as returning to a version older than a secret change.
            force: bool,
        },
    }
}

#[derive(Serialize)]
struct CreateDeploymentBody<'a> {
    strategy: &'static str,
    versions: &'a [VersionShare],
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<MessageAnnotation<'a>>,
}

#[derive(Serialize)]
struct MessageAnnotation<'a> {
    #[serde(rename = "workers/message")]
    message: &'a str,
}

impl Endpoint {
    /// The script this call is about.
    pub fn script(&self) -> &str {
        match self {
            Endpoint::GetVersion { script, .. }
            | Endpoint::ListVersions { script, .. }
            | Endpoint::ListDeployments { script }
            | Endpoint::CreateDeployment { script, .. } => script,
        }
    }

    /// The HTTP method.
    pub fn method(&self) -> Method {
        match self {
            Endpoint::CreateDeployment { .. } => Method::Post,
            _ => Method::Get,
        }
    }

    /// The request for this call, authenticated with `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// [`CloudflareError::InvalidScriptName`], [`CloudflareError::InvalidVersionId`] for
    /// values that must not reach a URL; [`CloudflareError::InvalidToken`] for an empty
    /// token or one with characters a header cannot carry; the [`ApiConfig::account_url`]
    /// errors.
    pub fn to_request(
        &self,
        config: &ApiConfig,
        token: &str,
    ) -> Result<HttpRequest, CloudflareError> {
        let script = self.script();
        if !is_script_name(script) {
            return Err(CloudflareError::InvalidScriptName(script.to_string()));
        }
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CloudflareError::InvalidToken);
        }
        let scripts = format!("{}/workers/scripts/{script}", config.account_url()?);
        let mut headers = vec![("Authorization".to_string(), format!("Bearer {token}"))];
        let (url, body) = match self {
            Endpoint::GetVersion { version_id, .. } => {
                if !is_uuid(version_id) {
                    return Err(CloudflareError::InvalidVersionId(version_id.clone()));
                }
                (format!("{scripts}/versions/{version_id}"), None)
            }
            Endpoint::ListVersions { page, per_page, .. } => (
                format!("{scripts}/versions?page={page}&per_page={per_page}"),
                None,
            ),
            Endpoint::ListDeployments { .. } => (format!("{scripts}/deployments"), None),
            Endpoint::CreateDeployment {
                split,
                message,
                force,
                ..
            } => {
                let message = truncate_to_bytes(message.trim(), MESSAGE_MAX_BYTES);
                let body = CreateDeploymentBody {
                    strategy: "percentage",
                    versions: split.shares(),
                    annotations: (!message.is_empty()).then_some(MessageAnnotation { message }),
                };
                let json = serde_json::to_string(&body)
                    .map_err(|e| CloudflareError::InvalidSplit(e.to_string()))?;
                headers.push(("Content-Type".to_string(), "application/json".to_string()));
                let query = if *force { "?force=true" } else { "" };
                (format!("{scripts}/deployments{query}"), Some(json))
            }
        };
        Ok(HttpRequest {
            method: self.method(),
            url,
            headers,
            body,
        })
    }
}

/// Everything that can go wrong building a call or reading its answer. The response
/// variants classify what the controller should do next.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CloudflareError {
    /// The script name is not one Cloudflare accepts (see [`super::is_script_name`]).
    #[error("invalid Worker script name {0:?}")]
    InvalidScriptName(String),
    /// A version id is not a UUID.
    #[error("invalid version id {0:?}: expected a UUID")]
    InvalidVersionId(String),
    /// The configured account id is empty or has characters a URL path cannot hold.
    #[error("invalid Cloudflare account id")]
    InvalidAccountId,
    /// The configured API base URL is not an `http(s)://` URL.
    #[error("invalid Cloudflare API base URL")]
    InvalidBaseUrl,
    /// The API token is empty or not a printable header value (never shown).
    #[error("the Cloudflare API token is empty or malformed")]
    InvalidToken,
    /// The split breaks the deployment rules (1–2 versions, 0..=100 each, sum 100).
    #[error("invalid split: {0}")]
    InvalidSplit(String),
    /// 401/403, or a credential code (e.g. 400 with 6003/6111 for a malformed token): the
    /// token is wrong, malformed or lacks a scope (Workers Scripts Write). Pause.
    #[error("Cloudflare refused the API token (HTTP {status}): {message}; check it is valid and has Workers Scripts Write")]
    Unauthorized {
        /// 401, 403, or the 4xx that carried a [`CREDENTIAL_CODES`] code.
        status: u16,
        /// The API's own words, if any.
        message: String,
    },
    /// 404 or code 10007: the script or version does not exist.
    #[error("not found on Cloudflare: {message}")]
    NotFound {
        /// The API error code, if the body had one.
        code: Option<i64>,
        /// The API's own words, or the status.
        message: String,
    },
    /// Code 10220: a deployment that goes back to a version older than a secret change is
    /// refused unless sent again with `?force=true` (which brings back the secret values
    /// that version was deployed with).
    #[error("Cloudflare refuses to move traffic to a version older than a secret change unless forced (changed: {}): {message}", if secrets.is_empty() { "not named".to_string() } else { secrets.join(", ") })]
    SecretsChanged {
        /// The secret names Cloudflare listed after [`SECRETS_CHANGED_MARKER`].
        secrets: Vec<String>,
        /// The API's message (bounded).
        message: String,
    },
    /// 429: all calls are blocked; wait before the next one.
    #[error("rate limited by the Cloudflare API; retry in {retry_after_secs} s")]
    RateLimited {
        /// From `retry-after`, else [`RATE_LIMITED_DEFAULT_SECS`].
        retry_after_secs: u64,
    },
    /// 5xx: Cloudflare failed; retry on the next tick.
    #[error("Cloudflare API server error (HTTP {status})")]
    Server {
        /// The 5xx status.
        status: u16,
    },
    /// Another 4xx (or `success: false`) with the API's reason: the request itself is
    /// wrong, so repeating it will not help.
    #[error("Cloudflare API refused the request (HTTP {status}, code {code}): {message}")]
    Invalid {
        /// HTTP status.
        status: u16,
        /// First error code (0 when the body listed none).
        code: i64,
        /// Every error as `code: message`, joined with `; `.
        message: String,
    },
    /// The body is not JSON, not a v4 envelope, or lacks the expected `result`.
    #[error("unexpected Cloudflare API answer (HTTP {status}): {why}")]
    Malformed {
        /// HTTP status.
        status: u16,
        /// What was wrong with it.
        why: String,
    },
}

impl CloudflareError {
    /// True when the same call may succeed later without anyone changing anything
    /// (rate limit, server error, garbled answer): retry on a later tick.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CloudflareError::RateLimited { .. }
                | CloudflareError::Server { .. }
                | CloudflareError::Malformed { .. }
        )
    }

    /// Seconds to hold every API call, for [`CloudflareError::RateLimited`].
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            CloudflareError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "11111111-1111-4111-8111-111111111111";

    #[test]
    fn config_validation_table() {
        let cases = [
            ("https://api.cloudflare.com/client/v4", "0123abcd", true),
            ("http://127.0.0.1:8788/client/v4/", "sandbox-acct", true),
            ("ftp://x", "acct", false),
            ("https://", "acct", false),
            ("https://x/?a=1", "acct", false),
            ("https://x", "", false),
            ("https://x", "a/b", false),
        ];
        for (base, acct, ok) in cases {
            let cfg = ApiConfig::new(acct).with_base_url(base);
            assert_eq!(cfg.account_url().is_ok(), ok, "{base} {acct}");
        }
        let cfg = ApiConfig::new("a").with_base_url("http://h/v4/");
        assert_eq!(cfg.account_url().expect("valid"), "http://h/v4/accounts/a");
    }

    #[test]
    fn endpoint_refuses_unsafe_path_values_and_tokens() {
        let cfg = ApiConfig::new("acct");
        let get = |script: &str, version: &str| Endpoint::GetVersion {
            script: script.into(),
            version_id: version.into(),
        };
        assert!(matches!(
            get("../x", NEW).to_request(&cfg, "t"),
            Err(CloudflareError::InvalidScriptName(_))
        ));
        assert!(matches!(
            get("w", "x/../y").to_request(&cfg, "t"),
            Err(CloudflareError::InvalidVersionId(_))
        ));
        for token in ["", "a b", "a\r\nX-Evil: 1"] {
            assert_eq!(
                get("w", NEW).to_request(&cfg, token),
                Err(CloudflareError::InvalidToken)
            );
        }
    }

    #[test]
    fn transient_errors_are_the_ones_worth_retrying() {
        assert!(CloudflareError::Server { status: 502 }.is_transient());
        assert!(CloudflareError::RateLimited {
            retry_after_secs: 1
        }
        .is_transient());
        assert!(!CloudflareError::InvalidToken.is_transient());
        let unauthorized = CloudflareError::Unauthorized {
            status: 403,
            message: String::new(),
        };
        assert!(!unauthorized.is_transient());
        assert_eq!(
            CloudflareError::RateLimited {
                retry_after_secs: 42
            }
            .retry_after_secs(),
            Some(42)
        );
    }
}

//! Reading Cloudflare v4 answers: the envelope (`success`, `errors[]`, `result`,
//! `result_info`), the error classification, and the deployment objects (with cohorts).

use super::{
    CloudflareError, VersionShare, CREDENTIAL_CODES, RATE_LIMITED_DEFAULT_SECS,
    SECRETS_CHANGED_CODE, WORKER_NOT_FOUND_CODE,
};
use crate::clients::http::{parse_retry_after_secs, HttpResponse};
use crate::clients::truncate_chars_with_ellipsis;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Longest API error text kept (chars): enough to explain, small enough for logs and Slack.
const MAX_ERROR_TEXT: usize = 500;

/// What precedes the secret names in a 10220 refusal. wrangler's `createDeployment`
/// (cloudflare/workers-sdk `packages/wrangler/src/versions/api.ts`) reads the names after
/// exactly this text; its test `packages/wrangler/src/__tests__/rollback.test.ts` captures
/// the whole message (our fixture `tests/fixtures/cloudflare/error_secrets_changed.json`).
pub const SECRETS_CHANGED_MARKER: &str = "The following secrets have changed:";

/// Most secret names kept from one 10220 message (the text is already cut to
/// `MAX_ERROR_TEXT`; this bounds what Slack lists).
const MAX_SECRET_NAMES: usize = 20;

/// Longest secret name kept (chars).
const MAX_SECRET_NAME_CHARS: usize = 64;

/// One entry of `errors[]` or `messages[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    /// Cloudflare error code (0 when absent or not a number).
    #[serde(default, deserialize_with = "lenient_code")]
    pub code: i64,
    /// Human text.
    #[serde(default)]
    pub message: String,
    /// The causes Cloudflare nests under this error (e.g. 6003 "Invalid request headers"
    /// carries 6111 "Invalid format for Authorization header"). Read leniently: anything
    /// but a list of errors reads as none, so an odd chain never hides the error itself.
    #[serde(default, deserialize_with = "lenient_chain")]
    pub error_chain: Vec<ApiMessage>,
}

fn lenient_chain<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ApiMessage>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| crate::json::from_value(&item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A list that may be absent or `null` in the answer reads as empty (any other non-list
/// is an error: a deployment whose cohorts cannot be read must not pass for one without).
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl ApiMessage {
    /// This error's code and every code nested in its `error_chain`.
    fn codes(&self) -> Vec<i64> {
        let mut codes = vec![self.code];
        for cause in &self.error_chain {
            codes.extend(cause.codes());
        }
        codes
    }
}

fn lenient_code<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

/// `result_info` of a paged list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultInfo {
    /// 1-based page number.
    #[serde(default)]
    pub page: Option<u64>,
    /// Items per page.
    #[serde(default)]
    pub per_page: Option<u64>,
    /// Items on this page.
    #[serde(default)]
    pub count: Option<u64>,
    /// Items on all pages.
    #[serde(default)]
    pub total_count: Option<u64>,
    /// Number of pages.
    #[serde(default)]
    pub total_pages: Option<u64>,
}

/// A successful v4 answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<T> {
    /// `result`, decoded.
    pub result: T,
    /// `result_info`, for paged lists.
    pub result_info: Option<ResultInfo>,
    /// `messages[]` (informational).
    pub messages: Vec<ApiMessage>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    success: Option<bool>,
    #[serde(default)]
    errors: Option<Vec<ApiMessage>>,
    #[serde(default)]
    messages: Option<Vec<ApiMessage>>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

/// Reads a v4 answer and decodes `result` as `T`.
///
/// Order of judgement: 429 → rate limited (honouring `retry-after`); 401/403, or a 4xx
/// whose errors (or their `error_chain`) carry a credential code (see
/// [`CREDENTIAL_CODES`]: a malformed token draws HTTP 400 with 6003/6111) → token;
/// 5xx → server; a body that is not a JSON envelope → not found for a 404, else
/// malformed; `success: false` or any other non-2xx → not found (404 or code 10007),
/// secrets changed (code 10220) or invalid with the listed errors; finally `result` must
/// decode as `T`.
///
/// # Errors
/// The response-classification variants of [`CloudflareError`].
pub fn parse_envelope<T: DeserializeOwned>(
    resp: &HttpResponse,
) -> Result<Envelope<T>, CloudflareError> {
    let status = resp.status;
    if status == 429 {
        let retry_after_secs = resp
            .header("retry-after")
            .and_then(parse_retry_after_secs)
            .unwrap_or(RATE_LIMITED_DEFAULT_SECS);
        return Err(CloudflareError::RateLimited { retry_after_secs });
    }
    let raw: Option<RawEnvelope> = serde_json::from_str(&resp.body).ok();
    let errors = raw
        .as_ref()
        .and_then(|r| r.errors.clone())
        .unwrap_or_default();
    let credential_code = errors
        .iter()
        .flat_map(ApiMessage::codes)
        .any(|c| CREDENTIAL_CODES.contains(&c));
    if status == 401 || status == 403 || ((400..500).contains(&status) && credential_code) {
        return Err(CloudflareError::Unauthorized {
            status,
            message: join_errors(&errors),
        });
    }
    if status >= 500 {
        return Err(CloudflareError::Server { status });
    }
    let mut raw = match raw {
        Some(raw) if raw.success.is_some() => raw,
        _ if status == 404 => {
            return Err(CloudflareError::NotFound {
                code: None,
                message: "HTTP 404".into(),
            })
        }
        _ => {
            return Err(CloudflareError::Malformed {
                status,
                why: "the body is not a v4 JSON envelope".into(),
            })
        }
    };
    if raw.success != Some(true) || !(200..300).contains(&status) {
        let not_found = errors.iter().find(|e| e.code == WORKER_NOT_FOUND_CODE);
        if status == 404 || not_found.is_some() {
            return Err(CloudflareError::NotFound {
                code: not_found.or(errors.first()).map(|e| e.code),
                message: if errors.is_empty() {
                    "HTTP 404".into()
                } else {
                    join_errors(&errors)
                },
            });
        }
        // wrangler's test mocks 10220 with HTTP 400 (no real capture is public), and
        // wrangler reacts to the code alone; a 404 stays "not found" whatever its code.
        if let Some(refusal) = errors.iter().find(|e| e.code == SECRETS_CHANGED_CODE) {
            return Err(CloudflareError::SecretsChanged {
                secrets: parse_changed_secrets(&refusal.message),
                message: truncate_chars_with_ellipsis(&refusal.message, MAX_ERROR_TEXT),
            });
        }
        return Err(CloudflareError::Invalid {
            status,
            code: errors.first().map_or(0, |e| e.code),
            message: if errors.is_empty() {
                format!("HTTP {status} with success: false and no errors[]")
            } else {
                join_errors(&errors)
            },
        });
    }
    // Read from its text (crate::json), the parsed value dropped first: a large answer is
    // held once, not twice. serde's message quotes the offending value, which the answer may
    // make any length.
    let text = std::mem::take(&mut raw.result).to_string();
    let result = serde_json::from_str(&text).map_err(|e| CloudflareError::Malformed {
        status,
        why: truncate_chars_with_ellipsis(&format!("unexpected `result`: {e}"), MAX_ERROR_TEXT),
    })?;
    Ok(Envelope {
        result,
        result_info: raw.result_info,
        messages: raw.messages.unwrap_or_default(),
    })
}

/// Every error as `code: message`, its `error_chain` in parentheses, joined with `; `.
fn join_errors(errors: &[ApiMessage]) -> String {
    fn one(e: &ApiMessage) -> String {
        let mut text = format!("{}: {}", e.code, e.message);
        if !e.error_chain.is_empty() {
            let causes: Vec<String> = e.error_chain.iter().map(one).collect();
            text.push_str(&format!(" ({})", causes.join("; ")));
        }
        text
    }
    let joined = errors.iter().map(one).collect::<Vec<_>>().join("; ");
    truncate_chars_with_ellipsis(&joined, MAX_ERROR_TEXT)
}

/// The secret names a 10220 refusal lists: the text after [`SECRETS_CHANGED_MARKER`],
/// split on commas, trimmed (empty when the marker is missing). At most 20 names of at
/// most 64 characters each, however long the message.
pub fn parse_changed_secrets(message: &str) -> Vec<String> {
    let Some(at) = message.find(SECRETS_CHANGED_MARKER) else {
        return Vec::new();
    };
    message[at + SECRETS_CHANGED_MARKER.len()..]
        .split(',')
        .map(|name| name.trim().trim_end_matches('.'))
        .filter(|name| !name.is_empty())
        .take(MAX_SECRET_NAMES)
        .map(|name| truncate_chars_with_ellipsis(name, MAX_SECRET_NAME_CHARS))
        .collect()
}

/// Annotations on a deployment: who or what made it, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentAnnotations {
    /// `workers/message`: free text (the gate writes its step here).
    #[serde(rename = "workers/message", default)]
    pub message: Option<String>,
    /// `workers/triggered_by`: `upload`, `secret`, `rollback`, `promotion`, ...
    #[serde(rename = "workers/triggered_by", default)]
    pub triggered_by: Option<String>,
    /// `workers/rollback_from`: the deployment a rollback replaced.
    #[serde(rename = "workers/rollback_from", default)]
    pub rollback_from: Option<String>,
}

/// A deployment as listed by `GET .../deployments` or returned by a create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Deployment id.
    #[serde(default)]
    pub id: Option<String>,
    /// RFC 3339 creation time, as given.
    #[serde(default)]
    pub created_on: Option<String>,
    /// Where it came from (`api`, `wrangler`, `dash`, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// `percentage` today.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Who made it.
    #[serde(default)]
    pub author_email: Option<String>,
    /// The 1–2 versions and their shares (not validated: this is what *is* live). With
    /// cohorts, this is the default configuration for requests that name no cohort.
    #[serde(default)]
    pub versions: Vec<VersionShare>,
    /// Named user segments with their own split of the same (at most two) versions.
    /// The gate never writes cohorts, and a `POST .../deployments` without them replaces
    /// the deployment, erasing them (cloudflare/cloudflare-docs
    /// `src/content/docs/workers/configuration/versions-and-deployments/cohort-based-deployments.mdx`;
    /// the earlier `gradual-deployments/cohort-deployments.mdx` shows the same shape under
    /// `"strategy": "cohorts"`). The docs show the request and say `GET .../deployments`
    /// returns "the current cohort configuration"; no captured response is public, so the
    /// response is assumed to echo the request's shape. Absent or `null` means none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub cohorts: Vec<DeploymentCohort>,
    /// Annotations.
    #[serde(default)]
    pub annotations: DeploymentAnnotations,
}

/// One cohort of a cohort-based deployment: `{"name": "beta", "versions": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentCohort {
    /// The cohort's name (matched case-insensitively against `Cloudflare-Workers-Cohort`).
    #[serde(default)]
    pub name: String,
    /// Its split, summing to 100.
    #[serde(default)]
    pub versions: Vec<VersionShare>,
}

impl Deployment {
    /// One line on who changed the deployment, for drift alerts, e.g.
    /// `by ops@example.com via wrangler (rollback): "undo"`.
    pub fn provenance(&self) -> String {
        let mut out = format!(
            "by {} via {}",
            self.author_email.as_deref().unwrap_or("unknown author"),
            self.source.as_deref().unwrap_or("unknown source")
        );
        if let Some(trigger) = &self.annotations.triggered_by {
            out.push_str(&format!(" ({trigger})"));
        }
        if let Some(message) = &self.annotations.message {
            out.push_str(&format!(": {message:?}"));
        }
        out
    }
}

#[derive(Deserialize)]
struct DeploymentsResult {
    #[serde(default)]
    deployments: Vec<Deployment>,
}

/// Parses `GET .../deployments`: newest first, so the first entry is live. An empty
/// list means the script has no deployment.
///
/// # Errors
/// As [`parse_envelope`].
pub fn parse_deployments(resp: &HttpResponse) -> Result<Vec<Deployment>, CloudflareError> {
    Ok(parse_envelope::<DeploymentsResult>(resp)?
        .result
        .deployments)
}

/// Parses the answer to `POST .../deployments`.
///
/// # Errors
/// As [`parse_envelope`].
pub fn parse_created_deployment(resp: &HttpResponse) -> Result<Deployment, CloudflareError> {
    Ok(parse_envelope::<Deployment>(resp)?.result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::cloudflare::parse_version;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(status, body)
    }

    #[test]
    fn error_classification_table() {
        let env_err = |code: i64, msg: &str| {
            format!(
                r#"{{"success":false,"errors":[{{"code":{code},"message":"{msg}"}}],"messages":[],"result":null}}"#
            )
        };
        let cases: Vec<(HttpResponse, CloudflareError)> = vec![
            (
                resp(401, &env_err(10000, "Authentication error")),
                CloudflareError::Unauthorized {
                    status: 401,
                    message: "10000: Authentication error".into(),
                },
            ),
            (
                resp(403, "forbidden"),
                CloudflareError::Unauthorized {
                    status: 403,
                    message: String::new(),
                },
            ),
            (
                resp(
                    404,
                    &env_err(10007, "This Worker does not exist on your account."),
                ),
                CloudflareError::NotFound {
                    code: Some(10007),
                    message: "10007: This Worker does not exist on your account.".into(),
                },
            ),
            (
                resp(400, &env_err(10007, "workers.api.error.script_not_found")),
                CloudflareError::NotFound {
                    code: Some(10007),
                    message: "10007: workers.api.error.script_not_found".into(),
                },
            ),
            (
                resp(404, "<html>not found</html>"),
                CloudflareError::NotFound {
                    code: None,
                    message: "HTTP 404".into(),
                },
            ),
            (
                resp(429, ""),
                CloudflareError::RateLimited {
                    retry_after_secs: RATE_LIMITED_DEFAULT_SECS,
                },
            ),
            (
                resp(429, "").with_header("Retry-After", "37"),
                CloudflareError::RateLimited {
                    retry_after_secs: 37,
                },
            ),
            (
                resp(502, "<html>bad gateway</html>"),
                CloudflareError::Server { status: 502 },
            ),
            (
                resp(500, &env_err(10013, "internal")),
                CloudflareError::Server { status: 500 },
            ),
            (
                resp(400, &env_err(10021, "percentages must sum to 100")),
                CloudflareError::Invalid {
                    status: 400,
                    code: 10021,
                    message: "10021: percentages must sum to 100".into(),
                },
            ),
            (
                resp(200, r#"{"success":false,"errors":[],"result":null}"#),
                CloudflareError::Invalid {
                    status: 200,
                    code: 0,
                    message: "HTTP 200 with success: false and no errors[]".into(),
                },
            ),
            (
                resp(200, "ok"),
                CloudflareError::Malformed {
                    status: 200,
                    why: "the body is not a v4 JSON envelope".into(),
                },
            ),
            (
                resp(200, r#"{"result":{}}"#),
                CloudflareError::Malformed {
                    status: 200,
                    why: "the body is not a v4 JSON envelope".into(),
                },
            ),
        ];
        for (response, want) in cases {
            let got = parse_envelope::<Value>(&response).expect_err("must fail");
            assert_eq!(got, want, "{response:?}");
        }
    }

    #[test]
    fn error_codes_given_as_strings_still_classify() {
        let body =
            r#"{"success":false,"errors":[{"code":"10007","message":"gone"}],"result":null}"#;
        let got = parse_envelope::<Value>(&resp(404, body)).expect_err("fails");
        assert!(matches!(
            got,
            CloudflareError::NotFound {
                code: Some(10007),
                ..
            }
        ));
    }

    #[test]
    fn a_null_result_is_malformed_for_an_object_result() {
        let body = r#"{"success":true,"errors":[],"messages":[],"result":null}"#;
        let got = parse_version(&resp(200, body)).expect_err("fails");
        assert!(matches!(
            got,
            CloudflareError::Malformed { status: 200, .. }
        ));
    }

    #[test]
    fn long_error_text_is_bounded() {
        let long = "x".repeat(5_000);
        let body = format!(r#"{{"success":false,"errors":[{{"code":1,"message":"{long}"}}]}}"#);
        match parse_envelope::<Value>(&resp(400, &body)) {
            Err(CloudflareError::Invalid { message, .. }) => {
                assert_eq!(message.chars().count(), MAX_ERROR_TEXT)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

//! The gate's HTTP error contract: `{"error": {"code": "...", "message": "..."}}` with the
//! matching status. The one place where failures become status codes (SPEC "Interfaces").

use serde::Serialize;

/// Every error the HTTP API can answer with. The code string is stable API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: not JSON, unknown or missing fields, wrong types.
    /// `code` names the problem precisely (e.g. `malformed_json`, `unknown_field`).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Missing or wrong bearer token. The message never echoes the token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A credential that was presented and refused by name (a Cloudflare Access token
    /// that is expired, for another application, badly signed, ...). `code` says which.
    #[error("{message}")]
    Credential { code: &'static str, message: String },
    /// The caller is known but lacks the scope this route needs (`missing_scope`); the
    /// message names the token (or identity) and the scope, never a token value.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    /// The request conflicts with current state (e.g. another version is rolling out).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The body is larger than the limit (bytes).
    #[error("body over {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Well-formed but invalid values (e.g. a version id that is not a UUID, a bad schedule).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A service the gate depends on (the Cloudflare API) could not answer.
    #[error("{0}")]
    Upstream(String),
    /// The gate cannot take this request now and says when to come back (`Retry-After`).
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// The gate itself failed (storage, a binding). `detail` is for the log only; the
    /// client sees "internal error".
    #[error("internal error")]
    Internal { detail: String },
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// A 500 whose detail is logged, never returned.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::Internal {
            detail: detail.into(),
        }
    }

    /// A 400 with a precise code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 409 with a precise code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A 422 with a precise code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest { .. } => 400,
            ApiError::Unauthorized | ApiError::Credential { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Unprocessable { .. } => 422,
            ApiError::Upstream(_) => 502,
            ApiError::Unavailable { .. } => 503,
            ApiError::Internal { .. } => 500,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Credential { code, .. } | ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict { code, .. } => code,
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Upstream(_) => "upstream_unavailable",
            ApiError::Unavailable { code, .. } => code,
            ApiError::Internal { .. } => "internal",
        }
    }

    /// Seconds the client should wait before asking again (a 503's `Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The JSON body, `{"error": {"code", "message"}}`.
    pub fn to_json(&self) -> String {
        let body = Body {
            error: Detail {
                code: self.code(),
                message: self.to_string(),
            },
        };
        // Serialising two strings cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status_and_code() {
        let cases = [
            (
                ApiError::bad_request("malformed_json", "x"),
                400,
                "malformed_json",
            ),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (
                ApiError::Credential {
                    code: "access_expired",
                    message: "x".into(),
                },
                401,
                "access_expired",
            ),
            (
                ApiError::Forbidden {
                    code: "missing_scope",
                    message: "x".into(),
                },
                403,
                "missing_scope",
            ),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                ApiError::MethodNotAllowed("PUT".into()),
                405,
                "method_not_allowed",
            ),
            (
                ApiError::conflict("rollout_active", "x"),
                409,
                "rollout_active",
            ),
            (ApiError::PayloadTooLarge(65_536), 413, "payload_too_large"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::unprocessable("invalid_schedule", "x"),
                422,
                "invalid_schedule",
            ),
            (ApiError::Upstream("x".into()), 502, "upstream_unavailable"),
            (
                ApiError::Unavailable {
                    code: "api_budget_in_use",
                    message: "x".into(),
                    retry_after_secs: 30,
                },
                503,
                "api_budget_in_use",
            ),
            (ApiError::internal("disk on fire"), 500, "internal"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status(), err.code()), (status, code), "{err:?}");
        }
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let json = ApiError::internal("sqlite: table rollout is locked").to_json();
        assert_eq!(
            json,
            r#"{"error":{"code":"internal","message":"internal error"}}"#
        );
    }

    #[test]
    fn json_body_has_the_contract_shape() {
        let json = ApiError::NotFound("no route GET /nope".into()).to_json();
        assert_eq!(
            json,
            r#"{"error":{"code":"not_found","message":"no route GET /nope"}}"#
        );
    }
}

//! Delivering a message: the webhook `POST` and what Slack's answer means for the outbox
//! (`200 ok`; short text codes on errors; 429 with `Retry-After`; reference §8).

use super::{SlackError, SlackMessage};
use crate::clients::http::{parse_retry_after_secs, HttpRequest, Method, TransportError};
use crate::json::tagged::internally_tagged;

/// The webhook `POST`. The URL is the credential: it is never put in an error.
///
/// # Errors
/// [`SlackError::InvalidWebhookUrl`] unless `url` is an `http(s)://` URL without
/// whitespace; [`SlackError::Encode`] as [`SlackMessage::to_payload`].
pub fn build_webhook_request(url: &str, message: &SlackMessage) -> Result<HttpRequest, SlackError> {
    let url = url.trim();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok
        || url.len() <= "https://".len()
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(SlackError::InvalidWebhookUrl);
    }
    Ok(HttpRequest {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(message.to_payload()?),
    })
}

internally_tagged! {
    tag = "outcome";
    /// What a webhook answer means for the outbox.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum SlackOutcome {
        /// 2xx (Slack answers `200 ok`): drop it from the outbox.
        Delivered,
        /// 429: retry after this many seconds (from `Retry-After`, else 1).
        RetryAfter {
            /// Seconds to wait, at least 1.
            secs: u64,
        },
        /// 5xx or no answer: retry on a later tick.
        Transient {
            /// The status, when there was one.
            status: Option<u16>,
        },
        /// 403/404/410 or a code saying the webhook is gone: stop retrying, report it.
        DeadWebhook {
            /// Slack's code (e.g. `channel_is_archived`) or `http_<status>`.
            code: String,
        },
        /// Another 4xx (`invalid_payload`, `invalid_blocks`, ...): this message will never
        /// be accepted; drop it and log the code.
        Rejected {
            /// Slack's code or `http_<status>`.
            code: String,
        },
    }
}

impl SlackOutcome {
    /// True when the same message should be sent again later.
    pub fn should_retry(&self) -> bool {
        matches!(
            self,
            SlackOutcome::RetryAfter { .. } | SlackOutcome::Transient { .. }
        )
    }
}

/// Codes meaning the webhook itself is gone, whatever the status.
const DEAD_CODES: [&str; 7] = [
    "invalid_token",
    "channel_not_found",
    "channel_is_archived",
    "no_service",
    "no_team",
    "team_disabled",
    "action_prohibited",
];

/// Classifies a webhook answer. `body` is Slack's short text code; `retry_after` is the
/// `Retry-After` header, if any.
pub fn classify_response(status: u16, body: &str, retry_after: Option<&str>) -> SlackOutcome {
    if (200..300).contains(&status) {
        return SlackOutcome::Delivered;
    }
    if status == 429 {
        let secs = retry_after
            .and_then(parse_retry_after_secs)
            .unwrap_or(1)
            .max(1);
        return SlackOutcome::RetryAfter { secs };
    }
    let code = slack_code(status, body);
    if DEAD_CODES.contains(&code.as_str()) || matches!(status, 403 | 404 | 410) {
        return SlackOutcome::DeadWebhook { code };
    }
    if status >= 500 {
        return SlackOutcome::Transient {
            status: Some(status),
        };
    }
    SlackOutcome::Rejected { code }
}

/// A request that got no answer is worth retrying.
pub fn classify_transport_error(_error: &TransportError) -> SlackOutcome {
    SlackOutcome::Transient { status: None }
}

/// Slack's code when the body is one (`[a-z0-9_]`, ≤ 64 chars), else `http_<status>`:
/// keeps proxy HTML pages out of logs and `/healthz`.
fn slack_code(status: u16, body: &str) -> String {
    let b = body.trim();
    let is_code = !b.is_empty()
        && b.len() <= 64
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if is_code {
        b.to_string()
    } else {
        format!("http_{status}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        use SlackOutcome::*;
        let dead = |c: &str| DeadWebhook { code: c.into() };
        let rejected = |c: &str| Rejected { code: c.into() };
        let cases: Vec<(u16, &str, Option<&str>, SlackOutcome)> = vec![
            (200, "ok", None, Delivered),
            (204, "", None, Delivered),
            (429, "", None, RetryAfter { secs: 1 }),
            (429, "", Some("30"), RetryAfter { secs: 30 }),
            (429, "", Some("0"), RetryAfter { secs: 1 }),
            (429, "", Some("soon"), RetryAfter { secs: 1 }),
            (500, "rollup_error", None, Transient { status: Some(500) }),
            (
                503,
                "<html>down</html>",
                None,
                Transient { status: Some(503) },
            ),
            (400, "invalid_payload", None, rejected("invalid_payload")),
            (400, "invalid_blocks", None, rejected("invalid_blocks")),
            (400, "user_not_found", None, rejected("user_not_found")),
            (
                400,
                "missing_text_or_fallback_or_attachments",
                None,
                rejected("missing_text_or_fallback_or_attachments"),
            ),
            (413, "<html>too big</html>", None, rejected("http_413")),
            (302, "", None, rejected("http_302")),
            (403, "invalid_token", None, dead("invalid_token")),
            (403, "action_prohibited", None, dead("action_prohibited")),
            (404, "channel_not_found", None, dead("channel_not_found")),
            (404, "no_service", None, dead("no_service")),
            (404, "no_team", None, dead("no_team")),
            (
                410,
                "channel_is_archived",
                None,
                dead("channel_is_archived"),
            ),
            (404, "<html>Not Found</html>", None, dead("http_404")),
            (400, "no_service", None, dead("no_service")),
        ];
        for (status, body, retry_after, want) in cases {
            assert_eq!(
                classify_response(status, body, retry_after),
                want,
                "{status} {body}"
            );
        }
        let timeout = classify_transport_error(&TransportError::Timeout(5_000));
        assert!(timeout.should_retry());
        assert!(!dead("no_service").should_retry());
    }

    #[test]
    fn webhook_url_errors_do_not_leak_the_url() {
        let msg = SlackMessage::new("hi");
        for url in [
            "",
            "hooks.slack.com/services/T/B/SECRET",
            "https://x/ SECRET",
            "ftp://x",
        ] {
            let err = build_webhook_request(url, &msg).expect_err("invalid");
            assert!(!err.to_string().contains("SECRET"));
        }
    }
}

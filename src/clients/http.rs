//! HTTP as plain values: the request every builder returns, the response every parser
//! takes, and the one async trait the shell implements over `worker::Fetch`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The HTTP methods the gate uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method as it appears on the wire, e.g. `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request, fully described: the shell sends exactly this.
///
/// It may carry credentials (an `Authorization` header; a Slack webhook URL *is* a
/// credential), so do not persist it or log it: keep the intent in state and rebuild the
/// request when sending. `Debug` hides the `Authorization` value and the URL's path and
/// query; use [`HttpRequest::log_label`] for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// Absolute URL, including any query string.
    pub url: String,
    /// Header names and values, in sending order.
    pub headers: Vec<(String, String)>,
    /// The body, if any (JSON or SQL text; the `Content-Type` header says which).
    pub body: Option<String>,
}

impl HttpRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// `METHOD scheme://host/…`: safe to log (no path, query or headers, which may hold
    /// secrets such as a Slack webhook token).
    pub fn log_label(&self) -> String {
        format!("{} {}", self.method, origin_of(&self.url))
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("authorization") {
                    (k.as_str(), "<redacted>")
                } else {
                    (k.as_str(), v.as_str())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &format!("{}/…", origin_of(&self.url)))
            .field("headers", &headers)
            .field("body_bytes", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// `scheme://host[:port]` of an absolute URL (or the whole string when it has no path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// One response as the shell received it.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Header names and values as received (names in any case).
    pub headers: Vec<(String, String)>,
    /// The body decoded as UTF-8 (lossily: parsers never see invalid UTF-8).
    pub body: String,
}

impl HttpResponse {
    /// A response with no headers; handy for tests and fakes.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses a `Retry-After` value given in seconds (`"30"`, `" 30 "`, `"1.5"` → 2). An
/// HTTP-date or anything unparsable gives `None`, and the caller applies its default.
pub fn parse_retry_after_secs(value: &str) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    match v.parse::<f64>() {
        // Bounded well below u64::MAX before the cast, so `as` cannot saturate oddly.
        Ok(f) if (0.0..1e9).contains(&f) => Some(f.ceil() as u64),
        _ => None,
    }
}

/// Why a request got no response at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TransportError {
    /// No answer within the shell's deadline (milliseconds).
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// DNS, connection or TLS failure, or the runtime refused the fetch.
    #[error("network error: {0}")]
    Network(String),
    /// The gate did not send it (its share of the API budget was spent).
    #[error("not sent: {0}")]
    NotSent(String),
}

/// Sends one request. Implemented by the runtime over `worker::Fetch` and by test fakes.
/// The trait is only used with static dispatch inside one single-threaded isolate, so the
/// missing `Send` bound the lint warns about does not matter here.
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// Sends `req` and returns whatever status came back.
    ///
    /// # Errors
    /// [`TransportError`] only when no HTTP response arrived; every status code,
    /// including 4xx and 5xx, is an `Ok` response for the parsers to judge.
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Post,
            url: url.into(),
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
            body: Some("{}".into()),
        }
    }

    #[test]
    fn debug_output_hides_token_and_webhook_path() {
        let req = request("https://hooks.slack.com/services/T0/B0/XXXX?x=1");
        let shown = format!("{req:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("XXXX"), "{shown}");
        assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
        assert_eq!(req.log_label(), "POST https://hooks.slack.com");
    }

    #[test]
    fn log_label_keeps_port_and_handles_bare_origins() {
        assert_eq!(
            request("http://127.0.0.1:8787/client/v4").log_label(),
            "POST http://127.0.0.1:8787"
        );
        assert_eq!(request("http://x").log_label(), "POST http://x");
    }

    #[test]
    fn header_lookup_ignores_case() {
        let resp = HttpResponse::new(429, "").with_header("Retry-After", "30");
        assert_eq!(resp.header("retry-after"), Some("30"));
        assert_eq!(resp.header("x-missing"), None);
        assert_eq!(
            request("http://x").header("AUTHORIZATION"),
            Some("Bearer s3cret")
        );
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        let cases = [
            ("30", Some(30)),
            (" 7 ", Some(7)),
            ("1.5", Some(2)),
            ("0", Some(0)),
            ("-1", None),
            ("Wed, 21 Oct 2026 07:28:00 GMT", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_retry_after_secs(input), want, "{input:?}");
        }
    }
}

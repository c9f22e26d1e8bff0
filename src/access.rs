//! Cloudflare Access JWTs, the pure part: the token's shape (three base64url parts), its
//! header (RS256 with a key id, nothing else), and its claims (issuer, audience, expiry and
//! not-before with a small skew). The signature itself is checked with WebCrypto in
//! `runtime::access`, against the team's published keys; this module hands it the bytes.
//!
//! Platform facts (https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/
//! and .../authorization-cookie/application-token): Access sends the token in the
//! `Cf-Access-Jwt-Assertion` header, signs it RS256 with a key from
//! `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`, `iss` is
//! `https://<team>.cloudflareaccess.com`, and `aud` is an array holding the application's
//! AUD tag. A service token's JWT has no `email` (its `common_name` is the client id).

use crate::http_error::ApiError;
use serde::Deserialize;

/// Clock skew allowed on `exp` and `nbf`, in seconds (Cloudflare's own choice in its
/// proposed `validateAccessJwt`, cloudflare/workerd PR #5837).
pub const SKEW_SECS: f64 = 60.0;
/// Longest token looked at; Access tokens are about 1 KB. Anything longer is refused
/// before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The only algorithm accepted, whatever the token says (RFC 8725 §3.1).
pub const ALGORITHM: &str = "RS256";

/// Where Access's keys and tokens come from, and which application the gate is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccessConfig {
    /// `https://<team>.cloudflareaccess.com`: the tokens' `iss`.
    pub issuer: String,
    /// The Access application's AUD tag: must be in the tokens' `aud`.
    pub aud: String,
    /// The team's JWKS (default `<issuer>/cdn-cgi/access/certs`).
    pub certs_url: String,
}

impl AccessConfig {
    /// From `ACCESS_TEAM_DOMAIN` (`team`, `team.cloudflareaccess.com` or the full
    /// `https://team.cloudflareaccess.com`), the AUD tag and an optional certs URL.
    ///
    /// # Errors
    /// A message for a team name that is not a DNS label.
    pub fn new(team: &str, aud: &str, certs_url: Option<&str>) -> Result<Self, String> {
        let name = team
            .trim()
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .trim_end_matches(".cloudflareaccess.com");
        let label = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !label {
            return Err(format!(
                "{:?}: the team name, e.g. \"myteam\" or https://myteam.cloudflareaccess.com",
                crate::clients::truncate_to_bytes(team, 64)
            ));
        }
        let issuer = format!("https://{}.cloudflareaccess.com", name.to_ascii_lowercase());
        let certs_url = certs_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("{issuer}/cdn-cgi/access/certs"));
        Ok(AccessConfig {
            issuer,
            aud: aud.trim().to_string(),
            certs_url,
        })
    }
}

/// Why a token is refused. Each maps to one status and code (`ApiError`); none carries
/// the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT, not RS256, no key id, a bad signature, unreadable claims.
    Invalid(&'static str),
    Expired,
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    /// Signed with a key the team does not publish (after the allowed refetch).
    UnknownKey,
    /// The team's keys could not be fetched and none are cached: refused, never allowed.
    KeysUnavailable,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let (code, message) = match r {
            Refusal::Invalid(why) => ("access_invalid", format!("Access token refused: {why}")),
            Refusal::Expired => ("access_expired", "Access token expired".into()),
            Refusal::NotYetValid => ("access_not_yet_valid", "Access token not yet valid".into()),
            Refusal::WrongAudience => (
                "access_wrong_audience",
                "Access token is for another application (aud)".into(),
            ),
            Refusal::WrongIssuer => (
                "access_wrong_issuer",
                "Access token is from another team (iss)".into(),
            ),
            Refusal::UnknownKey => (
                "access_unknown_key",
                "Access token signed by a key the team does not publish".into(),
            ),
            Refusal::KeysUnavailable => {
                return ApiError::Unavailable {
                    code: "access_keys_unavailable",
                    message: "Cloudflare Access keys could not be fetched; try again".into(),
                    retry_after_secs: 30,
                }
            }
        };
        ApiError::Credential { code, message }
    }
}

/// A token whose shape and header are right; its signature and claims not yet checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Unverified {
    pub kid: String,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
    pub claims: Claims,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 §4.1.11): none are.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims the gate reads (others are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    /// A string or an array of strings (RFC 7519 §4.1.3); Access sends an array.
    #[serde(default)]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub exp: Option<f64>,
    #[serde(default)]
    pub nbf: Option<f64>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
}

/// Splits and decodes a token, checks its header.
///
/// # Errors
/// `Refusal::Invalid` for anything but three base64url parts with a JSON header naming
/// RS256 and a key id (and no `crit`), a JSON object payload, and a non-empty signature.
pub fn parse(token: &str) -> Result<Unverified, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Invalid("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Invalid("not three dot-separated parts"));
    };
    let bad = || Refusal::Invalid("not base64url");
    let header = decode_base64url(h).ok_or_else(bad)?;
    let payload = decode_base64url(p).ok_or_else(bad)?;
    let signature = decode_base64url(s).ok_or_else(bad)?;
    let header: Header = json(&header).ok_or(Refusal::Invalid("header is not a JWT header"))?;
    if header.alg != ALGORITHM {
        return Err(Refusal::Invalid("algorithm is not RS256"));
    }
    if header.crit.is_some() {
        return Err(Refusal::Invalid("unsupported critical header"));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(Refusal::Invalid("no key id"))?;
    if signature.is_empty() {
        return Err(Refusal::Invalid("no signature"));
    }
    let claims: Claims = json(&payload).ok_or(Refusal::Invalid("claims are not JSON"))?;
    Ok(Unverified {
        kid,
        signing_input: format!("{h}.{p}"),
        signature,
        claims,
    })
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()
}

/// Who a verified token names: `email`, else `service:<common_name>` (a service token),
/// else `sub`.
pub fn identity(claims: &Claims) -> String {
    if let Some(email) = claims.email.as_deref().filter(|e| !e.is_empty()) {
        return email.to_string();
    }
    if let Some(cn) = claims.common_name.as_deref().filter(|c| !c.is_empty()) {
        return format!("service:{cn}");
    }
    claims.sub.clone().unwrap_or_else(|| "unknown".into())
}

/// Checks the claims of a token whose signature is good, at `now_secs` (Unix seconds).
///
/// # Errors
/// The first claim that fails: issuer, audience, expiry (required), not-before.
pub fn check_claims(claims: &Claims, config: &AccessConfig, now_secs: f64) -> Result<(), Refusal> {
    if claims.iss.as_deref() != Some(config.issuer.as_str()) {
        return Err(Refusal::WrongIssuer);
    }
    let ours = |v: &serde_json::Value| v.as_str() == Some(config.aud.as_str());
    let aud_ok = match &claims.aud {
        Some(serde_json::Value::Array(list)) => list.iter().any(ours),
        Some(v) => ours(v),
        None => false,
    };
    if !aud_ok {
        return Err(Refusal::WrongAudience);
    }
    match claims.exp {
        None => return Err(Refusal::Invalid("no expiry")),
        Some(exp) if exp + SKEW_SECS <= now_secs => return Err(Refusal::Expired),
        Some(_) => {}
    }
    if claims.nbf.is_some_and(|nbf| nbf > now_secs + SKEW_SECS) {
        return Err(Refusal::NotYetValid);
    }
    Ok(())
}

/// base64url without padding (RFC 7515 §2); `None` for any other character, padding, or a
/// length no encoding produces.
pub fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    crate::base64::URL_SAFE.decode(text)
}

/// One RSA signing key of the team's JWKS, as WebCrypto imports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaKey {
    pub kid: String,
    pub n: String,
    pub e: String,
}

fn field<'a>(key: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    key.get(name).and_then(|v| v.as_str())
}

/// The RS256 keys of a JWKS document (`{"keys": [...]}`): entries with `kty` RSA, a
/// `kid`, `n` and `e`, and `alg` RS256 when `alg` is given. Others are skipped.
///
/// # Errors
/// A message when the document is not a JSON object with a `keys` array.
pub fn jwks_keys(text: &str) -> Result<Vec<RsaKey>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("JWKS has no keys array")?;
    Ok(keys
        .iter()
        .filter(|k| field(k, "kty") == Some("RSA"))
        .filter(|k| field(k, "alg").is_none_or(|a| a == ALGORITHM))
        .filter(|k| field(k, "use").is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            Some(RsaKey {
                kid: field(k, "kid")?.to_string(),
                n: field(k, "n")?.to_string(),
                e: field(k, "e")?.to_string(),
            })
        })
        .collect())
}

/// How long fetched keys are used before they are fetched again, in milliseconds (an
/// hour: Cloudflare's choice in workerd PR #5837; Access rotates every 6 weeks and keeps
/// the previous key valid 7 days, per the validating-json page above).
pub const KEYS_TTL_MS: f64 = 3_600_000.0;
/// Least time between two fetches caused by an unknown key id, in milliseconds: a flood
/// of made-up key ids costs Cloudflare one request a minute per isolate, not one each.
pub const UNKNOWN_KEY_REFETCH_MS: f64 = 60_000.0;
/// Least time after a failed fetch before keys held past `KEYS_TTL_MS` are fetched again,
/// in milliseconds: while the certs endpoint is down or slow, one request a minute per
/// isolate waits on it and the rest use the keys held (a rotated-out key stays valid for
/// 7 days, per the validating-json page above).
pub const FAILED_REFRESH_RETRY_MS: f64 = 60_000.0;

/// What the isolate's key cache knows about itself (`runtime::access`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KeyCacheState {
    /// When the keys held were fetched; `None` before the first good fetch.
    pub fetched_at_ms: Option<f64>,
    /// When an unknown key id last caused a fetch.
    pub unknown_key_fetch_at_ms: Option<f64>,
    /// When the last fetch failed, if the last one failed.
    pub failed_fetch_at_ms: Option<f64>,
}

/// Why the keys are to be fetched now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchReason {
    /// None held yet, or held longer than `KEYS_TTL_MS`.
    Refresh,
    /// The token's key id is not among the keys held (a rotation, or a forgery).
    UnknownKey,
}

/// Whether to fetch the team's keys before checking a token: at most once per request,
/// when none are held, when they are stale (but not within `FAILED_REFRESH_RETRY_MS` of a
/// failed fetch: the stale keys serve meanwhile), or for an unknown key id at most once
/// per `UNKNOWN_KEY_REFETCH_MS`.
pub fn fetch_reason(
    state: KeyCacheState,
    kid_known: bool,
    fetched_this_request: bool,
    now_ms: f64,
) -> Option<FetchReason> {
    if fetched_this_request {
        return None;
    }
    match state.fetched_at_ms {
        None => return Some(FetchReason::Refresh),
        Some(at) if now_ms - at >= KEYS_TTL_MS => {
            let retry = state
                .failed_fetch_at_ms
                .is_none_or(|failed| now_ms - failed >= FAILED_REFRESH_RETRY_MS);
            if retry {
                return Some(FetchReason::Refresh);
            }
        }
        Some(_) => {}
    }
    let may_refetch = state
        .unknown_key_fetch_at_ms
        .is_none_or(|at| now_ms - at >= UNKNOWN_KEY_REFETCH_MS);
    (!kid_known && may_refetch).then_some(FetchReason::UnknownKey)
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;

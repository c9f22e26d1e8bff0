//! Verifies a Cloudflare Access JWT in the runtime: the team's keys fetched and imported
//! into WebCrypto, cached per isolate (`access::fetch_reason` says when to fetch again),
//! the RS256 signature checked, then the claims (`access::check_claims`). Keys that
//! cannot be fetched, with none held, refuse the request (503); they never allow it.

use super::crypto;
use super::http::FetchClient;
use crate::access::{self, AccessConfig, FetchReason, KeyCacheState, Refusal};
use crate::clients::http::{HttpClient, HttpRequest, Method};
use std::cell::RefCell;
use web_sys::CryptoKey;
use worker::{console_log, console_warn};

/// The keys this isolate holds, by key id. Lost when the isolate goes; the cost is one
/// fetch. Which URL they came from is kept, so a changed configuration is not served
/// another team's keys.
#[derive(Default)]
struct KeyCache {
    url: String,
    state: KeyCacheState,
    keys: Vec<(String, CryptoKey)>,
}

thread_local! {
    static CACHE: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

fn now_ms() -> f64 {
    worker::Date::now().as_millis() as f64
}

/// The key for `kid` and the cache's state, for `url`'s keys.
fn lookup(url: &str, kid: &str) -> (Option<CryptoKey>, KeyCacheState, bool) {
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.url != url {
            *cache = KeyCache {
                url: url.to_string(),
                ..KeyCache::default()
            };
        }
        let key = cache
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key.clone());
        (key, cache.state, !cache.keys.is_empty())
    })
}

/// Fetches and imports the team's RS256 keys.
async fn fetch_keys(url: &str) -> Result<Vec<(String, CryptoKey)>, String> {
    let request = HttpRequest {
        method: Method::Get,
        url: url.to_string(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
    };
    let resp = FetchClient.send(request).await.map_err(|e| e.to_string())?;
    if !resp.is_success() {
        return Err(format!("HTTP {}", resp.status));
    }
    let mut keys = Vec::new();
    for key in access::jwks_keys(&resp.body)? {
        match crypto::import_rsa_key(&key.n, &key.e).await {
            Ok(imported) => keys.push((key.kid, imported)),
            // One bad entry does not take the others down.
            Err(err) => console_warn!("access: key {} not importable: {err:?}", key.kid),
        }
    }
    if keys.is_empty() {
        return Err("no RS256 keys in the JWKS".into());
    }
    Ok(keys)
}

/// The key a token names, fetching the team's keys when `access::fetch_reason` says so
/// (at most once in this request). An unknown key id after a fetch that failed is 503,
/// not 401: the key may be a new one the gate could not read.
async fn key_for(url: &str, kid: &str) -> Result<CryptoKey, Refusal> {
    let (mut fetched, mut fetch_failed) = (false, false);
    loop {
        let now = now_ms();
        let (key, state, holds_keys) = lookup(url, kid);
        let Some(reason) = access::fetch_reason(state, key.is_some(), fetched, now) else {
            return match key {
                Some(key) => Ok(key),
                None if holds_keys && !fetch_failed => Err(Refusal::UnknownKey),
                None => Err(Refusal::KeysUnavailable),
            };
        };
        fetched = true;
        let result = fetch_keys(url).await;
        fetch_failed = result.is_err();
        CACHE.with(|c| {
            let mut cache = c.borrow_mut();
            if reason == FetchReason::UnknownKey {
                cache.state.unknown_key_fetch_at_ms = Some(now);
            }
            match result {
                Ok(keys) => {
                    console_log!("access: fetched {} key(s) ({reason:?})", keys.len());
                    cache.keys = keys;
                    cache.state.fetched_at_ms = Some(now);
                    cache.state.failed_fetch_at_ms = None;
                }
                // Stale keys are kept: the previous key stays valid for 7 days after a
                // rotation, and a request after `FAILED_REFRESH_RETRY_MS` tries again.
                Err(err) => {
                    console_warn!("access: keys not fetched ({reason:?}): {err}");
                    cache.state.failed_fetch_at_ms = Some(now);
                }
            }
        });
    }
}

/// Verifies `token` for `config`; the identity it names (`access::identity`).
///
/// # Errors
/// A `Refusal` for every way it can fail; a runtime error in WebCrypto is `Invalid`.
pub async fn verify(config: &AccessConfig, token: &str) -> Result<String, Refusal> {
    let token = access::parse(token)?;
    let key = key_for(&config.certs_url, &token.kid).await?;
    let good = crypto::rs256_verify(&key, &token.signature, token.signing_input.as_bytes())
        .await
        .map_err(|err| {
            console_warn!("access: verify failed: {err:?}");
            Refusal::Invalid("signature not checkable")
        })?;
    if !good {
        return Err(Refusal::Invalid("bad signature"));
    }
    access::check_claims(&token.claims, config, now_ms() / 1000.0)?;
    Ok(access::identity(&token.claims))
}

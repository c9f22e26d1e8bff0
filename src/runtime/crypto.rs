//! WebCrypto from Rust: import an RSA public key from its JWK members and verify an
//! RSASSA-PKCS1-v1_5 / SHA-256 (RS256) signature, and verify an HMAC-SHA256 (Slack's request
//! signing). The runtime's own crypto does the work, so no RSA or HMAC code is compiled
//! into the wasm (workerd implements RSASSA-PKCS1-v1_5:
//! https://developers.cloudflare.com/workers/runtime-apis/web-crypto/).

use web_sys::{CryptoKey, SubtleCrypto};
use worker::js_sys::{self, Array, Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

const RS256: &str = "RSASSA-PKCS1-v1_5";

fn subtle() -> Result<SubtleCrypto, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

fn object(pairs: &[(&str, &str)]) -> Result<Object, JsValue> {
    let obj = Object::new();
    for (key, value) in pairs {
        Reflect::set(&obj, &JsValue::from_str(key), &JsValue::from_str(value))?;
    }
    Ok(obj)
}

/// Imports `{kty: "RSA", n, e}` as a verify-only RS256 key. Only the three members are
/// passed, so the JWKS's `kid`, `use` and `alg` cannot upset the import. The algorithm
/// object is built by hand: web-sys's `RsaHashedImportParams` sets no `name`.
pub async fn import_rsa_key(n: &str, e: &str) -> Result<CryptoKey, JsValue> {
    let jwk = object(&[("kty", "RSA"), ("n", n), ("e", e)])?;
    let algorithm = object(&[("name", RS256), ("hash", "SHA-256")])?;
    let usages = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle()?.import_key_with_object("jwk", &jwk, &algorithm, false, &usages)?;
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

/// True when `signature` is `key`'s RS256 signature of `data`.
pub async fn rs256_verify(key: &CryptoKey, signature: &[u8], data: &[u8]) -> Result<bool, JsValue> {
    // WebCrypto copies both buffers before the call returns, so views of wasm memory are
    // safe here (https://w3c.github.io/webcrypto/#SubtleCrypto-method-verify, step 3-4).
    let promise =
        subtle()?.verify_with_str_and_u8_array_and_u8_array(RS256, key, signature, data)?;
    Ok(JsFuture::from(promise).await?.as_bool().unwrap_or(false))
}

/// True when `signature` is the HMAC-SHA256 of `data` under `secret` (Slack's request
/// signing). WebCrypto's `verify` compares the MACs itself, in constant time
/// (https://w3c.github.io/webcrypto/#hmac-operations: "verify" recomputes the MAC and
/// compares), so no comparison happens in wasm. The algorithm object is built by hand as
/// for RS256, so no web-sys `HmacImportParams` feature is needed.
pub async fn hmac_sha256_verify(
    secret: &[u8],
    signature: &[u8],
    data: &[u8],
) -> Result<bool, JsValue> {
    let algorithm = object(&[("name", "HMAC"), ("hash", "SHA-256")])?;
    let usages = Array::of1(&JsValue::from_str("verify"));
    let raw = js_sys::Uint8Array::from(secret);
    let promise = subtle()?.import_key_with_object("raw", &raw, &algorithm, false, &usages)?;
    let key: CryptoKey = JsFuture::from(promise).await?.unchecked_into();
    let promise =
        subtle()?.verify_with_str_and_u8_array_and_u8_array("HMAC", &key, signature, data)?;
    Ok(JsFuture::from(promise).await?.as_bool().unwrap_or(false))
}

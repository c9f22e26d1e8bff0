//! JS values read through JSON text: Durable Object storage values, SQL rows and request
//! bodies go through serde_json, so a type read from them needs no serde_wasm_bindgen code
//! besides its serde_json code (docs/size.md, "Reads through JSON text").
//!
//! A value serde_wasm_bindgen stored reads as it did: its objects, arrays, strings,
//! booleans and numbers (finite, whole ones within 2^53) are JSON's; its maps are JS `Map`s,
//! read as objects; its `None` is `undefined`, a property JSON leaves out, and a missing
//! `Option` field reads as `None`.

use serde::de::DeserializeOwned;
use worker::js_sys::{Map, Object, JSON};
use worker::wasm_bindgen::{closure::Closure, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Error, Request, Result, SqlCursor, Storage};

/// Reads a JS value as `T`.
pub fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T> {
    // serde_wasm_bindgen stored maps as JS `Map`s, which `JSON.stringify` writes as `{}`.
    let maps_as_objects =
        Closure::<dyn Fn(JsValue, JsValue) -> JsValue>::new(|_key: JsValue, value: JsValue| {
            match value.dyn_ref::<Map>() {
                Some(map) => Object::from_entries(map).map_or(value, JsValue::from),
                None => value,
            }
        });
    let text = JSON::stringify_with_replacer(value, maps_as_objects.as_ref().unchecked_ref())?
        .as_string()
        .ok_or_else(|| Error::RustError("not a JSON value".into()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The value stored under `key`, `None` if there is none.
pub async fn get<T: DeserializeOwned>(storage: &Storage, key: &str) -> Result<Option<T>> {
    let value = JsFuture::from(storage.as_raw().get(key)?).await?;
    if value.is_undefined() {
        return Ok(None);
    }
    from_js(&value).map(Some)
}

/// The cursor's remaining rows, each an object of its columns.
pub fn rows<T: DeserializeOwned>(cursor: SqlCursor) -> Result<Vec<T>> {
    cursor.map(|row| from_js(&row?)).collect()
}

/// The request's body, read as JSON.
pub async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    Ok(serde_json::from_str(&req.text().await?)?)
}

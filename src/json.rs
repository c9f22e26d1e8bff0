//! JSON values converted to and from typed values through their text. Serde's derive builds
//! one (de)serializer per type and per format: the Worker reads every typed value from text
//! and writes it to text, so going through `serde_json::Value`'s own serializer or
//! deserializer as well would put a second copy of each type's code in the wasm
//! (docs/size.md). These go through the text instead, at the cost of one extra parse.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// `value` as a `T`, read from its text (what `serde_json::from_value` does without the text).
///
/// # Errors
/// `value` does not decode as a `T`.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
    serde_json::from_str(&value.to_string())
}

/// `value` as JSON, read back from its text (what `serde_json::to_value` does without the text).
///
/// # Errors
/// `value` does not encode (a map with keys that are not strings).
pub fn to_value(value: &impl Serialize) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&serde_json::to_string(value)?)
}

pub mod tagged;

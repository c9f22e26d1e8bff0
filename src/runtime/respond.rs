//! Response helpers: the single place where `ApiError`s and `worker::Error`s become HTTP.

use crate::http_error::ApiError;
use serde::Serialize;
use worker::{console_error, Headers, Response, Result};

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// The JSON error contract of SPEC "Interfaces".
pub fn error(err: &ApiError) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(err.to_json())?
        .with_status(err.status())
        .with_headers(headers))
}

/// Logs an internal failure with context and answers 500 without details.
pub fn internal(context: &str, err: &worker::Error) -> Result<Response> {
    console_error!("{context}: {err}");
    error(&ApiError::internal(err.to_string()))
}

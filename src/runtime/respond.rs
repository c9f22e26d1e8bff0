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
    if let Some(secs) = err.retry_after_secs() {
        headers.set("retry-after", &secs.to_string())?;
    }
    Ok(Response::ok(err.to_json())?
        .with_status(err.status())
        .with_headers(headers))
}

/// Logs an internal failure with context and answers 500 without details.
pub fn internal(context: &str, err: &worker::Error) -> Result<Response> {
    console_error!("{context}: {err}");
    error(&ApiError::internal(err.to_string()))
}

/// Why a handler failed: an API error (answered as is) or a runtime error (logged, 500).
pub enum Failure {
    Api(ApiError),
    Worker(worker::Error),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<worker::Error> for Failure {
    fn from(e: worker::Error) -> Self {
        Failure::Worker(e)
    }
}

/// A handler's result as a response; internal details go to the log under `context`.
pub fn answer(context: &str, result: std::result::Result<Response, Failure>) -> Result<Response> {
    match result {
        Ok(resp) => Ok(resp),
        Err(Failure::Api(err)) => {
            if let ApiError::Internal { detail } = &err {
                console_error!("{context}: {detail}");
            }
            error(&err)
        }
        Err(Failure::Worker(err)) => internal(context, &err),
    }
}

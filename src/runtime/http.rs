//! `HttpClient` over `worker::Fetch`, with a deadline per request (`AbortSignal.timeout`),
//! so a hanging target `/healthz` or API cannot eat the tick.

use crate::clients::http::{
    HttpClient, HttpRequest, HttpResponse, Method as CoreMethod, TransportError,
};
use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit};

/// Deadline of one outbound request, in milliseconds.
pub const REQUEST_TIMEOUT_MS: u32 = 10_000;

/// Sends requests with the Workers runtime's `fetch`.
pub struct FetchClient;

fn method(m: CoreMethod) -> Method {
    match m {
        CoreMethod::Get => Method::Get,
        CoreMethod::Post => Method::Post,
        CoreMethod::Put => Method::Put,
        CoreMethod::Delete => Method::Delete,
    }
}

impl HttpClient for FetchClient {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let network = |e: worker::Error| TransportError::Network(e.to_string());
        let headers = Headers::new();
        for (name, value) in &req.headers {
            headers.set(name, value).map_err(network)?;
        }
        let mut init = RequestInit::new();
        init.with_method(method(req.method)).with_headers(headers);
        if let Some(body) = &req.body {
            init.with_body(Some(body.as_str().into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(network)?;
        let signal: AbortSignal = web_sys::AbortSignal::timeout_with_u32(REQUEST_TIMEOUT_MS).into();
        let mut resp = match Fetch::Request(request).send_with_signal(&signal).await {
            Ok(resp) => resp,
            Err(_) if signal.aborted() => {
                return Err(TransportError::Timeout(u64::from(REQUEST_TIMEOUT_MS)))
            }
            Err(e) => return Err(network(e)),
        };
        let status = resp.status_code();
        let mut out = HttpResponse::new(status, String::new());
        for (name, value) in resp.headers().entries() {
            out = out.with_header(name, value);
        }
        out.body = resp.text().await.map_err(network)?;
        Ok(out)
    }
}

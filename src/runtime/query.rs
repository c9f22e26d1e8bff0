//! A request's query string, read with the platform's URL parser (JS `URL`): the `url`
//! crate's parser would be in the wasm for this one field, 14 KB gzip (docs/size.md).

use worker::{Request, Result};

/// The query of the request's URL, without its `?`; `None` when there is none or it is
/// empty (the core's query parsers read both alike).
pub fn query_string(req: &Request) -> Result<Option<String>> {
    let search = web_sys::Url::new(&req.inner().url())?.search();
    Ok(search.strip_prefix('?').map(str::to_string))
}

/// The first value of the query parameter `name`, decoded (`+` and `%XX`).
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>> {
    Ok(web_sys::Url::new(&req.inner().url())?
        .search_params()
        .get(name))
}

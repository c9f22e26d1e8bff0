//! The wasm32-only shell over the `worker` crate: entry points, the Durable Objects, and
//! the trait impls (HTTP over `Fetch`, storage over DO storage). It converts types,
//! delegates to the core and the controller, and maps errors; it decides nothing.

mod access;
mod crypto;
mod entry;
mod env;
mod http;
mod json;
mod query;
mod registry;
mod respond;
mod rollout_object;
mod slack;
mod storage;

//! The wasm32-only shell over the `worker` crate: entry points and the Durable Objects.
//! It converts types, delegates to the core and maps errors; it decides nothing.

mod entry;
mod registry;
mod respond;

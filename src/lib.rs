//! rollout-gate: module map. The pure core (everything but `runtime`) compiles and tests
//! natively; `runtime` is the wasm32-only shell over the `worker` crate.

pub mod build_info;
pub mod cron;
pub mod http_error;
pub mod stats;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod runtime;

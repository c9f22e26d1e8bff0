//! rollout-gate: module map. The pure core (everything but `runtime`) compiles and tests
//! natively; `runtime` is the wasm32-only shell over the `worker` crate.

pub mod api;
pub mod build_info;
pub mod clients;
pub mod config;
pub mod controller;
pub mod cron;
#[cfg(not(target_arch = "wasm32"))]
pub mod gatesim;
pub mod http_error;
pub mod instrument;
pub mod notify;
pub mod observe;
pub mod openapi;
pub mod page;
pub mod parity;
pub mod policy;
pub mod queue_watch;
pub mod rollout;
pub mod schedule;
pub mod signals;
#[cfg(any(not(target_arch = "wasm32"), target_os = "wasi"))]
pub mod sim;
pub mod stats;
pub mod status;
pub mod telemetry;
pub mod time;

#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
mod runtime;

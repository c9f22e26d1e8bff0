//! rollout-gate: module map, by layer; a module uses only modules of its own layer or the
//! layers above it (unit tests may also use `sim`). Everything but `runtime` is pure or generic, compiles natively and is
//! tested there; `runtime` is the wasm32-only shell over the `worker` crate.

// ── Foundations. ──
pub mod base64;
pub mod build_info;
pub mod http_error;
/// JSON values to and from typed values through their text.
pub mod json;
pub mod time;

// ── The decision core: pure and sync. ──
/// The tests on counts (e-processes, exact looks, burst scaling).
pub mod stats;

/// What the gate looks at (observation plan and observations).
pub mod observe;

/// Thresholds, the α budget, judging signals into verdicts, looks in words.
pub mod policy;

/// The rollout schedule.
pub mod schedule;

/// The rollout's running evidence and its per-tick assessment.
pub mod signals;

/// The rollout state machine.
pub mod rollout;

/// Queue incidents outside rollouts.
pub mod queue_watch;

// ── The outside world as data: requests built and answers parsed, configuration, the
//    HTTP API's routing, Slack and telemetry formats. ──
pub mod access;
pub mod api;
pub mod auth;
pub mod clients;
pub mod config;
pub mod cron;
pub mod instrument;
pub mod notify;
pub mod parity;
pub mod slack_actions;
pub mod telemetry;

// ── The controller: async and generic over the outside world. ──
pub mod controller;
/// The registry's book: gate-wide state and its rules.
pub mod registry;

// ── What people read: status view, status page, the API's description. ──
pub mod openapi;
pub mod page;
pub mod status;

// ── Simulators: native (and WASI, for the tick-cost benchmark) only. ──
#[cfg(not(target_arch = "wasm32"))]
pub mod gatesim;
#[cfg(any(not(target_arch = "wasm32"), target_os = "wasi"))]
pub mod sim;

// ── The shell: the Worker's entry points, Durable Objects and fetch. ──
#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
mod runtime;

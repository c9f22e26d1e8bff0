//! Statistics for the gate's count signals (5xx, slow requests, failed batches), as a module
//! map: anytime-valid e-processes for the split ([`RatioTest`]) and the bake ([`BakeTest`]),
//! exact tests at the schedule's fixed looks ([`ScheduledLooks`]), against the old version's
//! own history ([`HistoryLooks`]) and in the bake ([`BakeLooks`]), and burst scaling. Pure
//! and sync. Method and measured quality: docs/statistics.md; `rollout-sim --validity`
//! measures each test's false rejections against its α.

mod bake_looks;
mod bake_test;
mod burst_guard;
mod bursts;
mod config;
mod counts;
mod history;
pub mod infinite_as_null;
mod looks;
mod outcome;
mod power;
mod prior;
mod ratio_test;
mod search;
mod special;
mod spending;
mod summary;
#[cfg(test)]
pub(crate) mod testing;

pub use bake_looks::{BakeLooks, Reference};
pub use bake_test::BakeTest;
pub use bursts::{BurstScale, Burstiness, SeriesTotals};
pub use config::{RatioTestConfig, StatsError, DEFAULT_BASE_RATE_FLOOR};
pub use counts::PairCounts;
pub use history::{Baseline, HistoryLooks, DRIFT_CHECK_ALPHA};
pub use looks::{
    OnsetLooks, ScheduledLooks, MAX_EVENTS as LOOKS_MAX_EVENTS, ONSET_MAX_LOOKS,
    ONSET_WINDOW_MINUTES,
};
pub use outcome::{Against, ExactLooks, LookKind, LookOutcome, RobustLook, Skipped};
pub use power::conditional_power;
pub use prior::default_prior;
pub use ratio_test::RatioTest;
pub use special::binomial_upper_tail;
pub use summary::RatioSummary;

/// For the simulator's bounds on the split e-process's power (`sim::validity::limits`), built
/// where the simulator is.
#[cfg(any(not(target_arch = "wasm32"), target_os = "wasi"))]
pub(crate) use ratio_test::event_log_lrs;

//! gate-sim: a deterministic fault simulation of the whole gate. The real `Controller`
//! (core, request builders, response parsers, outbox, store encoding) runs against one
//! seeded, single-threaded simulated world (Cloudflare, Analytics Engine, Slack, `/healthz`,
//! Durable Object storage and its evictions) in simulated time; invariants are checked
//! after every object call, and the same seed always replays the same world.
//! docs/reliability.md describes the fault classes, the invariants and the commands.

pub mod faults;
pub mod invariants;
pub mod run;
pub mod world;

pub use faults::{FaultClass, FaultPlan};
pub use invariants::{Invariant, Violation};
pub use run::{run, Options, SeedReport};

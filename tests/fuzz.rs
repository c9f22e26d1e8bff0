//! Fuzzing every parser of outside input (issue 17 §4): seeded, structure-aware fuzz
//! targets for the deploy hook, operator bodies, the events query, routing and the
//! `Authorization` header, the wrangler vars and `POLICY`, and every Cloudflare, Analytics
//! Engine, Slack and `/healthz` answer parser; plus the nesting and size limits, and one
//! regression test per bug the fuzzing found. See docs/fuzzing.md for budgets and commands.

#[path = "fuzz/api.rs"]
mod api;
#[path = "fuzz/config.rs"]
mod config;
#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/limits.rs"]
mod limits;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/regressions.rs"]
mod regressions;
#[path = "fuzz/responses.rs"]
mod responses;

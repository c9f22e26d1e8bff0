//! Fuzz targets for configuration: the wrangler `[vars]` as a whole, and `POLICY` (JSON)
//! on its own. The property beyond "no panic, clear errors": a configuration that is
//! accepted can be used, i.e. every request the gate builds from it builds.

use crate::harness::{check_alloc, check_message, fuzz, peak_alloc};
use crate::mutate::{below, body, chance, mutate_bytes, nasty_string, pick};
use rollout_gate::clients::analytics::{build_http_query, build_queue_query, LatencyThresholds};
use rollout_gate::clients::probe::build_probe_request;
use rollout_gate::config::{GateConfig, VARS};
use rollout_gate::policy::{CountTest, Policy};
use rollout_gate::sim::rng::Rng;
use rollout_gate::time::Timestamp;
use std::collections::BTreeMap;

const NEW: &str = "4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f";
const OLD: &str = "0a1b2c3d-4e5f-4a5b-8c9d-0e1f2a3b4c5d";

/// Longest text of one configuration problem beyond its echo of the value (serde quotes
/// the offending key or value, escaped: up to ~10 chars an input byte). Shown on `/healthz`.
const MAX_PROBLEM_CHARS: usize = 2_000;

/// Valid values for each variable, as wrangler.toml and docs/deploy.md write them.
fn valid_values(name: &str) -> &'static [&'static str] {
    match name {
        "GATE_ENV" => &["dev", "production", "preview"],
        "CLOUDFLARE_ACCOUNT_ID" => &["0123456789abcdef0123456789abcdef", "sandbox-account"],
        "CLOUDFLARE_API_BASE_URL" => &[
            "https://api.cloudflare.com/client/v4",
            "http://127.0.0.1:8790/client/v4",
        ],
        "AE_DATASET" => &["mauntic_logs"],
        "AE_COLUMNS" => &[
            r#"{"version":"blob3","latency_ms":"double5"}"#,
            r#"{"http_event":"request","queue_event":"q.metric"}"#,
        ],
        "TARGET_BASE_URL" => &[
            "https://{script}.zeluto.workers.dev",
            "http://127.0.0.1:8790/targets/{script}",
        ],
        "ASSET_BASE_URL" => &[
            "https://assets.zeluto.com",
            "http://127.0.0.1:8790/assets/dev",
        ],
        "REQUIRED_BINDINGS" => &[
            r#"[{"kind":"analytics_engine","dataset":"mauntic_logs"}]"#,
            r#"[{"kind":"secrets_store_secret","secret_name":"slack","store_id":"abc"},{"kind":"named","binding_type":"kv_namespace","name":"CACHE"}]"#,
        ],
        "QUEUE_NAMES" => &["mauntic-events, mauntic-mail", "q"],
        "AUDIT_SCRIPTS" => &["mauntic-gateway,tenant-cache"],
        "POLICY" => POLICY_SEEDS,
        "STATUS_PAGE_URL" => &["https://gate.zeluto.com/", "http://127.0.0.1:8787"],
        "STATUS_PAGE_AUTH" => &["token", "access"],
        _ => &[""],
    }
}

const POLICY_SEEDS: &[&str] = &[
    "{}",
    r#"{"alpha": 0.005}"#,
    r#"{"alpha": 0.02, "rho0": 1.2, "window_minutes": 10, "queue": {"max_depth": 500, "consecutive": 2}}"#,
    r#"{"alpha_split": {"errors_split": 0.7, "slow_split": 0.1, "errors_bake": 0.1, "slow_bake": 0.05, "very_slow_split": 0.05}, "look_share": 0.5, "history_minutes": 0}"#,
    r#"{"latency_p95_ceiling_ms": 400, "very_slow_factor": 3, "approach_factor": 0.6, "history_minutes": 1440, "history_margin": 2}"#,
];

type Vars = BTreeMap<String, String>;

/// A valid variable set (the required two plus a random choice of the others), then 0 to 3
/// variables changed: mutated bytes, JSON-level mutation, or a nasty string.
fn vars(rng: &mut Rng, policy_only: bool) -> Vars {
    let mut vars = Vars::new();
    for (name, _) in VARS {
        let required = matches!(*name, "CLOUDFLARE_ACCOUNT_ID" | "TARGET_BASE_URL");
        if required || chance(rng, 0.5) {
            vars.insert(name.to_string(), pick(rng, valid_values(name)).to_string());
        }
    }
    let changes = if policy_only { 1 } else { below(rng, 4) };
    for _ in 0..changes {
        let name = if policy_only {
            "POLICY"
        } else {
            pick(rng, VARS).0
        };
        let current = vars
            .get(name)
            .cloned()
            .unwrap_or_else(|| pick(rng, valid_values(name)).to_string());
        let changed = match below(rng, 4) {
            0 => nasty_string(rng),
            1 => {
                let mut bytes = current.into_bytes();
                let other = nasty_string(rng).into_bytes();
                mutate_bytes(rng, &mut bytes, &other);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => {
                let seeds: Vec<Vec<u8>> = valid_values(name)
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect();
                String::from_utf8_lossy(&body(rng, &seeds)).into_owned()
            }
        };
        vars.insert(name.to_string(), changed);
    }
    vars
}

/// Everything the gate builds from a configuration when it runs, so an accepted
/// configuration that cannot be used is caught here and not on the first tick.
fn check_usable(cfg: &GateConfig) -> Result<(), String> {
    cfg.api
        .account_url()
        .map_err(|e| format!("accepted, but the API URL fails: {e}"))?;
    build_probe_request(&cfg.probe, "mauntic-gateway", NEW)
        .map_err(|e| format!("accepted, but the probe fails: {e}"))?;
    let (from, to) = (
        Timestamp::from_millis(1_796_000_000_000),
        Timestamp::from_millis(1_796_000_300_000),
    );
    let policy = &cfg.policy;
    let thresholds = LatencyThresholds {
        slow_ms: policy.latency_p95_ceiling_ms,
        very_slow_ms: policy.very_slow_ms(),
        approach_ms: policy.approach_ms(),
    };
    build_http_query(
        &cfg.dataset,
        &cfg.columns,
        &[NEW, OLD],
        from,
        to,
        thresholds,
    )
    .map_err(|e| format!("accepted, but the HTTP query fails: {e}"))?;
    let queues: Vec<&str> = cfg.queues.iter().map(String::as_str).collect();
    build_queue_query(&cfg.dataset, &cfg.columns, &queues, from, to)
        .map_err(|e| format!("accepted, but the queue query fails: {e}"))?;
    check_policy_usable(policy)
}

/// A validated policy derives every test and look schedule without panicking.
fn check_policy_usable(policy: &Policy) -> Result<(), String> {
    policy
        .validate()
        .map_err(|e| format!("accepted an invalid policy: {e}"))?;
    for test in CountTest::ALL {
        let _ = policy.test_config(test);
    }
    let _ = policy.looks(CountTest::ErrorsSplit);
    let _ = policy.looks(CountTest::SlowSplit);
    let _ = policy.bake_looks(CountTest::ErrorsBake);
    let _ = policy.bake_looks(CountTest::SlowBake);
    let _ = policy.very_slow_looks();
    let _ = policy.approach_looks();
    let _ = policy.history_looks();
    Ok(())
}

fn check_vars(vars: &Vars) -> Result<(), String> {
    let input_len: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
    let (result, peak) = peak_alloc(|| GateConfig::from_vars(|name| vars.get(name).cloned()));
    check_alloc(peak, input_len)?;
    match result {
        Ok(cfg) => check_usable(&cfg),
        Err(errors) => {
            if errors.is_empty() {
                return Err("refused with no reason".into());
            }
            for e in &errors {
                if !VARS.iter().any(|(name, _)| *name == e.var) {
                    return Err(format!("problem names an unknown variable {:?}", e.var));
                }
                let value_len = vars.get(e.var).map_or(0, String::len);
                check_message(e.var, &e.to_string(), 10 * value_len + MAX_PROBLEM_CHARS)?;
            }
            Ok(())
        }
    }
}

#[test]
fn fuzz_config_vars() {
    fuzz("config_vars", 3_000, |rng| vars(rng, false), check_vars);
}

#[test]
fn fuzz_config_policy() {
    fuzz("config_policy", 3_000, |rng| vars(rng, true), check_vars);
}

//! The two size limits every parser leans on, checked directly rather than by chance:
//! JSON nested 10,000 deep is refused without overflowing a small stack (serde_json's
//! recursion limit of 128, `remaining_depth: 128` in serde_json 1.0.154 `src/de.rs`), and a
//! request body over `MAX_BODY_BYTES` is refused by its size before any parsing.

use crate::harness::peak_alloc;
use rollout_gate::api::{parse_deploy_hook, parse_operator_body, MAX_BODY_BYTES};
use rollout_gate::clients::analytics::{parse_http_rows, parse_queue_rows};
use rollout_gate::clients::cloudflare::{
    parse_created_deployment, parse_deployments, parse_envelope, parse_version, parse_versions_page,
};
use rollout_gate::clients::http::HttpResponse;
use rollout_gate::clients::probe::{read_probe, ProbeConfig, ProbeOutcome};
use rollout_gate::config::GateConfig;
use serde_json::Value;

/// The stack the deep-nesting checks run on. Rust's wasm32 targets link a 1 MiB stack
/// (rust-lang/rust#50083); a quarter of it, in an unoptimised native build whose frames are
/// larger than release wasm's, leaves the rest for the runtime's own frames.
const SMALL_STACK: usize = 512 * 1024;

const DEPTH: usize = 10_000;
const JSON: Option<&str> = Some("application/json");
const NEW: &str = "11111111-1111-4111-8111-111111111111";

fn nest(open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(DEPTH), close.repeat(DEPTH))
}

/// Deep bodies in two shapes, each alone and inside a field a parser reads.
fn deep_bodies() -> Vec<String> {
    let arrays = nest("[", "]", "0");
    let objects = nest("{\"a\":", "}", "0");
    let mut out = Vec::new();
    for deep in [arrays, objects] {
        out.push(deep.clone());
        out.push(format!(
            r#"{{"script":"w","version_id":"{NEW}","schedule":{deep}}}"#
        ));
        out.push(format!(r#"{{"by":{deep}}}"#));
        out.push(format!(r#"{{"success":true,"errors":[],"result":{deep}}}"#));
        out.push(format!(
            r#"{{"success":true,"result":{{"deployments":[{{"versions":{deep}}}],"items":[{{"id":"x","resources":{{"bindings":[{deep}]}}}}]}}}}"#
        ));
        out.push(format!(r#"{{"meta":[],"data":[{{"version":{deep}}}]}}"#));
        out.push(format!(r#"{{"version_id":"{NEW}","x":{deep}}}"#));
    }
    out
}

/// Runs `f` on a thread with `SMALL_STACK`: a stack overflow aborts the test binary, so a
/// recursion without a limit cannot pass silently.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the parse on a small stack panicked");
}

#[test]
fn json_nested_10000_deep_is_refused_by_every_parser_without_overflowing_the_stack() {
    on_small_stack(|| {
        for body in deep_bodies() {
            let hook = parse_deploy_hook(JSON, body.as_bytes());
            if body.len() <= MAX_BODY_BYTES {
                let err = hook.expect_err("a 10,000-deep hook is refused");
                assert_eq!((err.status(), err.code()), (400, "malformed_json"), "{err}");
                assert!(err.to_string().contains("recursion limit"), "{err}");
            } else {
                assert_eq!(hook.expect_err("refused").status(), 413);
            }
            let who = parse_operator_body(JSON, body.as_bytes());
            assert!(who.is_err(), "a 10,000-deep operator body is refused");

            for status in [200, 400] {
                let resp = HttpResponse::new(status, body.clone());
                assert!(parse_deployments(&resp).is_err());
                assert!(parse_created_deployment(&resp).is_err());
                assert!(parse_version(&resp).is_err());
                assert!(parse_versions_page(&resp).is_err());
                assert!(parse_envelope::<Value>(&resp).is_err());
                assert!(parse_http_rows(&resp).is_err());
                assert!(parse_queue_rows(&resp).is_err());
                let probe = read_probe(&ProbeConfig::new("https://x"), NEW, Ok(&resp));
                assert_ne!(
                    probe,
                    ProbeOutcome::Ok,
                    "a probe answer it cannot read is no proof"
                );
            }

            for var in ["POLICY", "AE_COLUMNS", "REQUIRED_BINDINGS"] {
                let errors = GateConfig::from_vars(|name| match name {
                    "CLOUDFLARE_ACCOUNT_ID" => Some("acc".into()),
                    "TARGET_BASE_URL" => Some("https://{script}.example.com".into()),
                    n if n == var => Some(body.clone()),
                    _ => None,
                })
                .expect_err("a 10,000-deep variable is refused");
                assert!(errors.iter().any(|e| e.var == var), "{errors:?}");
            }
        }
    });
}

#[test]
fn json_nested_within_the_limit_still_parses() {
    // The limit must not refuse real answers: 100 levels inside a field nobody reads.
    let deep = format!("{}0{}", "[".repeat(100), "]".repeat(100));
    let probe = HttpResponse::new(200, format!(r#"{{"version_id":"{NEW}","x":{deep}}}"#));
    assert_eq!(
        read_probe(&ProbeConfig::new("https://x"), NEW, Ok(&probe)),
        ProbeOutcome::Ok
    );
    let envelope = HttpResponse::new(200, format!(r#"{{"success":true,"result":{deep}}}"#));
    assert!(parse_envelope::<Value>(&envelope).is_ok());
}

#[test]
fn request_bodies_over_the_cap_are_refused_by_size_before_parsing() {
    // 10 MiB of bytes that are not JSON: a parse would fail with 400; a size check says 413
    // and allocates nothing that grows with the body.
    let huge = vec![b'['; 10 * 1024 * 1024];
    let (hook, hook_peak) = peak_alloc(|| parse_deploy_hook(JSON, &huge));
    assert_eq!(hook.expect_err("refused").status(), 413);
    let (who, who_peak) = peak_alloc(|| parse_operator_body(JSON, &huge));
    assert_eq!(who.expect_err("refused").status(), 413);
    assert!(
        hook_peak < 4 * 1024 && who_peak < 4 * 1024,
        "refusing by size allocated {hook_peak} and {who_peak} bytes"
    );

    // One byte over the cap is refused; a valid body padded to exactly the cap is not.
    let body = format!(r#"{{"script":"w","version_id":"{NEW}"}}"#);
    let at_cap = format!("{body:<width$}", width = MAX_BODY_BYTES);
    assert!(parse_deploy_hook(JSON, at_cap.as_bytes()).is_ok());
    let over = format!("{at_cap} ");
    assert_eq!(
        parse_deploy_hook(JSON, over.as_bytes())
            .expect_err("refused")
            .status(),
        413
    );
}

#[test]
fn worst_case_json_amplification_stays_within_the_allocation_budget() {
    // The costliest JSON per input byte for a `Value` parse: one-key objects nested to just
    // under the recursion limit, each 5 bytes (`{"":` and `}`) buying a B-tree leaf of
    // several hundred bytes; repeated to fill the request cap.
    let one = format!("{}0{}", "{\"\":".repeat(125), "}".repeat(125));
    let body = format!("[{}]", vec![one; MAX_BODY_BYTES / 640].join(","));
    let resp = HttpResponse::new(200, format!(r#"{{"success":true,"result":{body}}}"#));
    let (parsed, peak) = peak_alloc(|| parse_envelope::<Value>(&resp));
    assert!(parsed.is_ok());
    let ratio = peak as f64 / resp.body.len() as f64;
    eprintln!(
        "worst-case amplification: {peak} bytes for {} ({ratio:.0}x)",
        resp.body.len()
    );
    crate::harness::check_alloc(peak, resp.body.len()).expect("within the budget");
}

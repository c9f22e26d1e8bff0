//! Fuzz targets for the gate's own HTTP API: the deploy hook body, operator command bodies,
//! the events query string, routing and the `Authorization` header.

use crate::harness::{check_alloc, check_message, fuzz, peak_alloc};
use crate::mutate::{below, body, chance, nasty_string, object, pick, TOKENS};
use rollout_gate::api::{
    authorize, parse_deploy_hook, parse_events_query, parse_operator_body, route, EVENTS_PAGE_MAX,
    MAX_BODY_BYTES, MAX_MESSAGE_BYTES,
};
use rollout_gate::clients::{is_script_name, is_uuid};
use rollout_gate::http_error::ApiError;
use rollout_gate::schedule::{Percent, MAX_STEPS};
use rollout_gate::sim::rng::Rng;
use serde_json::{json, Value};

const NEW: &str = "4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f";
const OLD: &str = "0A1B2C3D-4E5F-4A5B-8C9D-0E1F2A3B4C5D";

/// Longest error message the API may answer a bad body with: serde's text quotes the
/// offending value (escaped, up to ~10 chars for one input byte), and bodies are capped.
const MAX_API_MESSAGE_CHARS: usize = 10 * MAX_BODY_BYTES + 1_000;

/// Valid deploy hooks: the one CI sends, and every optional field in use.
fn hook_seeds() -> Vec<Vec<u8>> {
    let full = object(&[
        ("script", json!("mauntic-gateway")),
        ("version_id", json!(NEW)),
        ("git_sha", json!("0123456789abcdef0123456789abcdef01234567")),
        ("baseline_version_id", json!(OLD)),
        (
            "schedule",
            json!({"steps": [
                {"percent": 5, "dwell_minutes": 5},
                {"percent": 25.5, "dwell_minutes": 10, "max_minutes": 40},
                {"percent": 100, "dwell_minutes": 15}
            ]}),
        ),
        ("dry_run", json!(true)),
        ("message", json!("release 2026.12.07: fix the cache key ✨")),
    ]);
    [
        json!({"script": "tenant_cache", "version_id": NEW}),
        full,
        json!({"script": "a", "version_id": NEW, "git_sha": "abcdef0", "dry_run": false, "message": null}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).expect("json"))
    .collect()
}

fn content_type(rng: &mut Rng) -> Option<String> {
    match below(rng, 10) {
        0 => None,
        1 => Some("text/plain".into()),
        2 => Some("application/json; charset=utf-8".into()),
        3 => Some(" APPLICATION/JSON ".into()),
        4 => Some("application/jsonx".into()),
        5 => Some(nasty_string(rng)),
        _ => Some("application/json".into()),
    }
}

fn is_json_type(ct: Option<&str>) -> bool {
    ct.and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The error contract every refusal keeps: a status among `allowed`, a stable code, a
/// clear bounded message, and a JSON body that carries the same code.
fn check_api_error(err: &ApiError, allowed: &[u16]) -> Result<(), String> {
    if !allowed.contains(&err.status()) {
        return Err(format!(
            "status {} ({err}) not among {allowed:?}",
            err.status()
        ));
    }
    if err.code().is_empty()
        || !err
            .code()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(format!("bad error code {:?}", err.code()));
    }
    check_message("api error", &err.to_string(), MAX_API_MESSAGE_CHARS)?;
    let body: Value = serde_json::from_str(&err.to_json()).map_err(|e| e.to_string())?;
    if body["error"]["code"] != err.code() || body["error"]["message"] != err.to_string() {
        return Err(format!("error body does not match the error: {body}"));
    }
    Ok(())
}

#[derive(Debug)]
struct Request {
    content_type: Option<String>,
    body: Vec<u8>,
}

fn request(rng: &mut Rng, seeds: &[Vec<u8>]) -> Request {
    let mut body = body(rng, seeds);
    if chance(rng, 0.01) {
        body.resize(MAX_BODY_BYTES + 1 + below(rng, 4), b' ');
    }
    Request {
        content_type: content_type(rng),
        body,
    }
}

/// Refusal order shared by both body parsers: media type, then size, then content.
fn check_refusal_order(req: &Request, err: &ApiError) -> Result<(), String> {
    let json_type = is_json_type(req.content_type.as_deref());
    if !json_type && err.status() != 415 {
        return Err(format!(
            "non-JSON content type answered {} not 415",
            err.status()
        ));
    }
    if json_type && req.body.len() > MAX_BODY_BYTES && err.status() != 413 {
        return Err(format!(
            "{}-byte body answered {} not 413",
            req.body.len(),
            err.status()
        ));
    }
    Ok(())
}

#[test]
fn fuzz_deploy_hook() {
    let seeds = hook_seeds();
    fuzz(
        "deploy_hook",
        5_000,
        |rng| request(rng, &seeds),
        |req| {
            let (result, peak) =
                peak_alloc(|| parse_deploy_hook(req.content_type.as_deref(), &req.body));
            check_alloc(peak, req.body.len())?;
            match result {
                Err(err) => {
                    check_api_error(&err, &[400, 413, 415, 422])?;
                    check_refusal_order(req, &err)
                }
                Ok(hook) => {
                    if !is_json_type(req.content_type.as_deref()) || req.body.len() > MAX_BODY_BYTES
                    {
                        return Err("accepted a body it must refuse by type or size".into());
                    }
                    let lower_uuid = |s: &str| is_uuid(s) && s == s.to_ascii_lowercase();
                    let steps = hook.schedule.steps();
                    let schedule_ok = !steps.is_empty()
                        && steps.len() <= MAX_STEPS
                        && steps.windows(2).all(|w| w[0].percent < w[1].percent)
                        && steps.last().is_some_and(|s| s.percent == Percent::FULL)
                        && steps
                            .iter()
                            .all(|s| s.dwell_minutes >= 1 && s.max_minutes >= s.dwell_minutes);
                    let ok = is_script_name(&hook.script)
                        && lower_uuid(&hook.version_id)
                        && hook
                            .baseline_version_id
                            .as_deref()
                            .is_none_or(|b| lower_uuid(b) && b != hook.version_id)
                        && hook.git_sha.as_deref().is_none_or(|s| {
                            (7..=40).contains(&s.len())
                                && s.bytes()
                                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                        })
                        && hook
                            .message
                            .as_deref()
                            .is_none_or(|m| m.len() <= MAX_MESSAGE_BYTES)
                        && schedule_ok;
                    if ok {
                        Ok(())
                    } else {
                        Err(format!(
                            "accepted a hook that breaks its invariants: {hook:?}"
                        ))
                    }
                }
            }
        },
    );
}

#[test]
fn fuzz_operator_body() {
    let seeds: Vec<Vec<u8>> = [
        json!({}),
        json!({"by": "ops@zeluto.com", "reason": "p95 looks off in eu-west"}),
        json!({"by": null, "reason": "é🚀"}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).expect("json"))
    .chain([b"".to_vec(), b" \n\t ".to_vec()])
    .collect();
    fuzz(
        "operator_body",
        3_000,
        |rng| request(rng, &seeds),
        |req| {
            let (result, peak) =
                peak_alloc(|| parse_operator_body(req.content_type.as_deref(), &req.body));
            check_alloc(peak, req.body.len())?;
            match result {
                Err(err) => {
                    check_api_error(&err, &[400, 413, 415])?;
                    check_refusal_order(req, &err)
                }
                Ok(_) if req.body.len() > MAX_BODY_BYTES => {
                    Err(format!("accepted a {}-byte body", req.body.len()))
                }
                Ok(who) => {
                    let short = |t: &Option<String>| t.as_deref().is_none_or(|t| t.len() <= 200);
                    if short(&who.by) && short(&who.reason) {
                        Ok(())
                    } else {
                        Err(format!("kept an over-long by/reason: {who:?}"))
                    }
                }
            }
        },
    );
}

fn query(rng: &mut Rng) -> Option<String> {
    if chance(rng, 0.05) {
        return None;
    }
    let keys = [
        "after", "limit", "after", "limit", "", "Limit", "offset", "after[]",
    ];
    let values = [
        "0",
        "1",
        "500",
        "501",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "+7",
        " 7",
        "7 ",
        "%37",
        "1e3",
        "",
        "٣",
    ];
    let mut out = String::new();
    for _ in 0..below(rng, 5) {
        if !out.is_empty() || chance(rng, 0.1) {
            out.push('&');
        }
        let key = if chance(rng, 0.9) {
            pick(rng, &keys).to_string()
        } else {
            nasty_string(rng)
        };
        out.push_str(&key);
        if chance(rng, 0.9) {
            out.push('=');
            let value = if chance(rng, 0.85) {
                pick(rng, &values).to_string()
            } else if chance(rng, 0.5) {
                pick(rng, TOKENS).to_string()
            } else {
                rng.next_u64().to_string()
            };
            out.push_str(&value);
        }
    }
    Some(out)
}

#[test]
fn fuzz_events_query() {
    fuzz("events_query", 10_000, query, |q| {
        let input_len = q.as_deref().map_or(0, str::len);
        let (result, peak) = peak_alloc(|| parse_events_query(q.as_deref()));
        check_alloc(peak, input_len)?;
        let pairs = q
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty());
        let known = |p: &str| {
            p.split_once('=')
                .is_some_and(|(k, _)| k == "after" || k == "limit")
        };
        match result {
            Ok(page) => {
                if !(1..=EVENTS_PAGE_MAX).contains(&page.limit) {
                    return Err(format!("limit {} out of 1..={EVENTS_PAGE_MAX}", page.limit));
                }
                if let Some(bad) = pairs.clone().find(|p| !known(p)) {
                    return Err(format!("accepted the unknown parameter {bad:?}"));
                }
                Ok(())
            }
            Err(err) => {
                check_api_error(&err, &[400])?;
                if err.code() != "invalid_query" {
                    return Err(format!("code {} not invalid_query", err.code()));
                }
                Ok(())
            }
        }
    });
}

#[derive(Debug)]
struct RouteInput {
    method: String,
    path: String,
}

#[test]
fn fuzz_route() {
    let segments = [
        "",
        "v1",
        "rollouts",
        "healthz",
        "openapi.json",
        "parity",
        "events",
        "pause",
        "resume",
        "promote",
        "abort",
        "mauntic-gateway",
        "tenant_cache",
        "Bad",
        "-x",
        "..",
        "%2F",
        "é",
    ];
    let gen = |rng: &mut Rng| RouteInput {
        method: pick(rng, &["GET", "POST", "PUT", "DELETE", "get", "", "PATCH"]).to_string(),
        path: {
            let mut p = String::new();
            for _ in 0..below(rng, 6) {
                p.push('/');
                if chance(rng, 0.9) {
                    p.push_str(pick::<&str>(rng, &segments));
                } else {
                    p.push_str(&nasty_string(rng));
                }
            }
            if chance(rng, 0.1) {
                p.push('/');
            }
            p
        },
    };
    fuzz("route", 8_000, gen, |input| {
        let (result, peak) = peak_alloc(|| route(&input.method, &input.path));
        check_alloc(peak, input.path.len() + input.method.len())?;
        match result {
            Ok(_) => Ok(()),
            Err(err) => check_api_error(&err, &[404, 405]),
        }
    });
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

#[derive(Debug)]
struct AuthInput {
    expected: String,
    header: Option<String>,
    /// The header is a well-formed presentation of `expected`.
    genuine: bool,
}

#[test]
fn fuzz_authorization_header() {
    let gen = |rng: &mut Rng| {
        let expected = if chance(rng, 0.05) {
            String::new()
        } else {
            (0..1 + below(rng, 48))
                .map(|_| *pick(rng, b"abcXYZ0189-_.~+/=:") as char)
                .collect()
        };
        let genuine_header = match below(rng, 4) {
            0 => format!("Bearer {expected}"),
            1 => format!("  bearer   {expected} "),
            2 => format!("Basic {}", base64(format!("ops:{expected}").as_bytes())),
            _ => format!(
                "BASIC {}",
                base64(format!(":{expected}").as_bytes()).trim_end_matches('=')
            ),
        };
        if chance(rng, 0.3) {
            return AuthInput {
                genuine: !expected.is_empty(),
                expected,
                header: Some(genuine_header),
            };
        }
        let mut bytes = genuine_header.into_bytes();
        let other = nasty_string(rng).into_bytes();
        crate::mutate::mutate_bytes(rng, &mut bytes, &other);
        AuthInput {
            expected,
            header: if chance(rng, 0.05) {
                None
            } else {
                Some(String::from_utf8_lossy(&bytes).into_owned())
            },
            genuine: false,
        }
    };
    fuzz("authorization", 10_000, gen, |input| {
        let (result, peak) = peak_alloc(|| authorize(input.header.as_deref(), &input.expected));
        check_alloc(peak, input.header.as_deref().map_or(0, str::len))?;
        match result {
            Ok(()) if input.expected.is_empty() => Err("an empty token opened the gate".into()),
            Ok(()) => {
                let header = input.header.as_deref().unwrap_or("");
                let bearer_holds = header.contains(&input.expected);
                let basic = header
                    .trim()
                    .get(..6)
                    .is_some_and(|s| s.eq_ignore_ascii_case("basic "));
                if bearer_holds || basic {
                    Ok(())
                } else {
                    Err("accepted a header that does not carry the token".into())
                }
            }
            Err(_) if input.genuine => Err("refused the genuine token".into()),
            Err(err) => {
                check_api_error(&err, &[401])?;
                // Short tokens can occur in the fixed message by chance; real tokens are long.
                if input.expected.len() >= 12 && err.to_json().contains(&input.expected) {
                    return Err("the refusal echoes the token".into());
                }
                Ok(())
            }
        }
    });
}

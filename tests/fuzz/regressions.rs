//! One test per bug the fuzz targets found, each named after the bug it pins, with the
//! smallest input that showed it (docs/fuzzing.md lists them with the target that found them).

use rollout_gate::api::{parse_operator_body, MAX_BODY_BYTES};
use rollout_gate::clients::analytics::{parse_queue_rows, AnalyticsError};
use rollout_gate::clients::cloudflare::{parse_version, CloudflareError};
use rollout_gate::clients::http::HttpResponse;
use rollout_gate::config::{ConfigError, GateConfig};

const JSON: Option<&str> = Some("application/json");

fn load(extra: &[(&str, &str)]) -> Result<GateConfig, Vec<ConfigError>> {
    GateConfig::from_vars(|name| {
        let base = [
            ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
            ("TARGET_BASE_URL", "https://{script}.zeluto.workers.dev"),
        ];
        extra
            .iter()
            .chain(base.iter())
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

fn refused_vars(extra: &[(&str, &str)]) -> Vec<&'static str> {
    load(extra)
        .expect_err("must be refused at load")
        .iter()
        .map(|e| e.var)
        .collect()
}

/// Found by `operator_body`: a blank body skipped the size cap (and the content type), so
/// 19 KB of spaces was accepted as "no by, no reason".
#[test]
fn blank_operator_body_over_the_cap_is_refused_with_413() {
    let blank = vec![b' '; MAX_BODY_BYTES + 1];
    let err = parse_operator_body(JSON, &blank).expect_err("over the cap");
    assert_eq!((err.status(), err.code()), (413, "payload_too_large"));
    let err = parse_operator_body(Some("text/plain"), &blank).expect_err("not JSON");
    assert_eq!(err.status(), 415);
    // A blank body within the cap is still "no by, no reason", whatever its type.
    assert!(parse_operator_body(None, b" \n").is_ok());
}

/// Found by `config_vars`: `CLOUDFLARE_ACCOUNT_ID` took any text, so a value no API URL
/// can hold loaded fine and every Cloudflare call then failed with "invalid account id".
#[test]
fn account_id_no_api_url_can_hold_is_refused_at_load() {
    for bad in [
        "<your account id>",
        "acc/../other",
        "acc?x=1",
        &"a".repeat(65),
    ] {
        assert_eq!(
            refused_vars(&[("CLOUDFLARE_ACCOUNT_ID", bad)]),
            ["CLOUDFLARE_ACCOUNT_ID"],
            "{bad}"
        );
    }
    assert!(load(&[("CLOUDFLARE_ACCOUNT_ID", "sandbox-account")]).is_ok());
}

/// Found by `config_vars`: an API base with a query or fragment passed the load-time check
/// (`http(s)://` only) and failed on every call.
#[test]
fn api_base_url_with_a_query_is_refused_at_load() {
    for bad in [
        "https://api.cloudflare.com/client/v4?x=1",
        "https://h/#v4",
        "https://",
    ] {
        assert_eq!(
            refused_vars(&[("CLOUDFLARE_API_BASE_URL", bad)]),
            ["CLOUDFLARE_API_BASE_URL"],
            "{bad}"
        );
    }
}

/// Found by `config_vars`: `TARGET_BASE_URL` was only required to be set, so `ftp://…`,
/// a stray brace or a space loaded fine and every `/healthz` probe then failed.
#[test]
fn target_base_url_no_probe_can_use_is_refused_at_load() {
    for bad in [
        "ftp://{script}.example.com",
        "https://{script}.example.com/{oops}",
        "https://{script}.example .com",
        "{script}",
    ] {
        assert_eq!(
            refused_vars(&[("TARGET_BASE_URL", bad)]),
            ["TARGET_BASE_URL"],
            "{bad}"
        );
    }
    assert!(load(&[("TARGET_BASE_URL", "http://127.0.0.1:8790/targets/{script}")]).is_ok());
}

/// Found by `config_vars`: a queue name with a control character loaded fine and then made
/// every queue query fail to build.
#[test]
fn queue_name_with_a_control_character_is_refused_at_load() {
    assert_eq!(
        refused_vars(&[("QUEUE_NAMES", "mauntic-events, bad\u{7}queue")]),
        ["QUEUE_NAMES"]
    );
}

/// Found by the 10,000-deep check: `AE_COLUMNS` ignored unknown keys, so a misspelt key
/// (`latency` for `latency_ms`) silently kept the default column, and a deep value under an
/// unknown key was skipped rather than refused.
#[test]
fn misspelt_ae_columns_key_is_refused_not_ignored() {
    assert_eq!(
        refused_vars(&[("AE_COLUMNS", r#"{"latency":"double5"}"#)]),
        ["AE_COLUMNS"]
    );
    let cfg = load(&[("AE_COLUMNS", r#"{"latency_ms":"double5"}"#)]).expect("valid");
    assert_eq!(cfg.columns.latency_ms, "double5");
}

/// Same family as the above, for `REQUIRED_BINDINGS`: a misspelt `store_id` was ignored,
/// which widened the pre-flight check to a secret of that name in any store.
#[test]
fn misspelt_required_binding_key_is_refused_not_ignored() {
    let misspelt = r#"[{"kind":"secrets_store_secret","secret_name":"slack","store":"abc"}]"#;
    assert_eq!(
        refused_vars(&[("REQUIRED_BINDINGS", misspelt)]),
        ["REQUIRED_BINDINGS"]
    );
}

/// Found by `analytics`: a `BadRow` reason quoted the offending value whole, so one long
/// value in the answer made an error of any length (16 KB in the failing case), which is
/// stored in the audit log and posted to Slack.
#[test]
fn analytics_bad_row_reason_is_bounded_whatever_the_value() {
    let long = "1".repeat(20_000) + "x";
    let body = format!(
        r#"{{"meta":[],"data":[{{"queue":"q","minute":"{long}","max_depth":1,"retries":0,"points":1}}]}}"#
    );
    let err = parse_queue_rows(&HttpResponse::new(200, body)).expect_err("bad row");
    assert!(
        matches!(err, AnalyticsError::BadRow { index: 0, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().chars().count() <= 400,
        "{} chars",
        err.to_string().len()
    );
}

/// Found by `cloudflare` (case 79,339 of a 100,000-case run): a `result` of the wrong type
/// made a `Malformed` reason that quoted the value whole (32 KB in the failing case).
#[test]
fn cloudflare_malformed_result_reason_is_bounded_whatever_the_value() {
    let long = "x".repeat(30_000);
    let body = format!(r#"{{"success":true,"errors":[],"result":"{long}"}}"#);
    let err = parse_version(&HttpResponse::new(200, body)).expect_err("malformed");
    assert!(
        matches!(err, CloudflareError::Malformed { status: 200, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().chars().count() <= 600,
        "{} chars",
        err.to_string().len()
    );
}

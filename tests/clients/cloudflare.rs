//! Cloudflare v4: exact requests per endpoint, fixtures for every result shape, and the
//! error classification over captured error bodies. Sources of the captured shapes:
//! `error_secrets_changed.json` is the 10220 answer in cloudflare/workers-sdk
//! `packages/wrangler/src/__tests__/rollback.test.ts`; `error_malformed_token.json` the
//! 6003/6111 answer to a malformed token (third-party captures, e.g. favonia/cloudflare-ddns
//! `internal/api` tests); `deployments_list_cohorts.json` follows the request shape in
//! cloudflare/cloudflare-docs `.../versions-and-deployments/cohort-based-deployments.mdx`
//! (no captured response is public: the response is assumed to echo it).

use crate::support::{response, NEW, OLD};
use rollout_gate::clients::cloudflare::*;
use rollout_gate::clients::http::{HttpResponse, Method};

const TOKEN: &str = "cf-token-123";
const BASE: &str = "https://api.cloudflare.com/client/v4/accounts/0123456789abcdef0123456789abcdef/workers/scripts";

fn config() -> ApiConfig {
    ApiConfig::new("0123456789abcdef0123456789abcdef")
}

fn auth() -> (String, String) {
    ("Authorization".into(), format!("Bearer {TOKEN}"))
}

fn json() -> (String, String) {
    ("Content-Type".into(), "application/json".into())
}

#[test]
fn get_version_request_is_exact() {
    let req = Endpoint::GetVersion {
        script: "mauntic-gateway".into(),
        version_id: NEW.into(),
    }
    .to_request(&config(), TOKEN)
    .expect("valid");
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.url, format!("{BASE}/mauntic-gateway/versions/{NEW}"));
    assert_eq!(req.headers, vec![auth()]);
    assert_eq!(req.body, None);
}

#[test]
fn list_requests_are_exact() {
    let cfg = config().with_base_url("http://127.0.0.1:8788/client/v4/");
    let list = Endpoint::ListVersions {
        script: "tenant-cache".into(),
        page: 2,
        per_page: 50,
    }
    .to_request(&cfg, TOKEN)
    .expect("valid");
    assert_eq!(
        list.url,
        "http://127.0.0.1:8788/client/v4/accounts/0123456789abcdef0123456789abcdef/workers/scripts/tenant-cache/versions?page=2&per_page=50"
    );
    let deployments = Endpoint::ListDeployments {
        script: "tenant-cache".into(),
    }
    .to_request(&cfg, TOKEN)
    .expect("valid");
    assert_eq!(deployments.method, Method::Get);
    assert!(deployments
        .url
        .ends_with("/workers/scripts/tenant-cache/deployments"));
    assert_eq!(deployments.headers, vec![auth()]);
}

#[test]
fn create_deployment_sends_the_full_split_and_message() {
    let req = Endpoint::CreateDeployment {
        script: "mauntic-gateway".into(),
        split: Split::canary(NEW, 10.0, OLD).expect("valid"),
        message: "rollout-gate: mauntic-gateway step 1/3 (10%)".into(),
        force: false,
    }
    .to_request(&config(), TOKEN)
    .expect("valid");
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url, format!("{BASE}/mauntic-gateway/deployments"));
    assert_eq!(req.headers, vec![auth(), json()]);
    let want = format!(
        r#"{{"strategy":"percentage","versions":[{{"version_id":"{NEW}","percentage":10}},{{"version_id":"{OLD}","percentage":90}}],"annotations":{{"workers/message":"rollout-gate: mauntic-gateway step 1/3 (10%)"}}}}"#
    );
    assert_eq!(req.body.as_deref(), Some(want.as_str()));
}

#[test]
fn create_deployment_full_rollback_with_force_and_fractional_share() {
    let rollback = Endpoint::CreateDeployment {
        script: "mauntic-gateway".into(),
        split: Split::all(OLD).expect("valid"),
        message: String::new(),
        force: true,
    }
    .to_request(&config(), TOKEN)
    .expect("valid");
    assert_eq!(
        rollback.url,
        format!("{BASE}/mauntic-gateway/deployments?force=true")
    );
    let want = format!(
        r#"{{"strategy":"percentage","versions":[{{"version_id":"{OLD}","percentage":100}}]}}"#
    );
    assert_eq!(rollback.body.as_deref(), Some(want.as_str()));

    let fractional = Endpoint::CreateDeployment {
        script: "w".into(),
        split: Split::canary(NEW, 12.5, OLD).expect("valid"),
        message: "x".into(),
        force: false,
    }
    .to_request(&config(), TOKEN)
    .expect("valid");
    let body = fractional.body.expect("body");
    assert!(body.contains(r#""percentage":12.5}"#), "{body}");
    assert!(body.contains(r#""percentage":87.5}"#), "{body}");
}

#[test]
fn deployment_message_is_cut_to_100_bytes_on_a_char_boundary() {
    // 33 three-byte chars = 99 bytes; the 34th would cross 100.
    let message = "€".repeat(40);
    let req = Endpoint::CreateDeployment {
        script: "w".into(),
        split: Split::all(NEW).expect("valid"),
        message,
        force: false,
    }
    .to_request(&config(), TOKEN)
    .expect("valid");
    let body: serde_json::Value = serde_json::from_str(&req.body.expect("body")).expect("json");
    let sent = body["annotations"]["workers/message"]
        .as_str()
        .expect("message");
    assert_eq!(sent, "€".repeat(33));
    assert!(sent.len() <= MESSAGE_MAX_BYTES);
}

#[test]
fn endpoints_round_trip_as_data_without_a_token() {
    let endpoint = Endpoint::CreateDeployment {
        script: "mauntic-gateway".into(),
        split: Split::canary(NEW, 50.0, OLD).expect("valid"),
        message: "step 2".into(),
        force: false,
    };
    let text = serde_json::to_string(&endpoint).expect("json");
    assert!(!text.contains(TOKEN));
    let back: Endpoint = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, endpoint);
}

#[test]
fn deployments_list_gives_the_live_one_first_with_provenance() {
    let deployments =
        parse_deployments(&response(200, "cloudflare/deployments_list.json")).expect("parses");
    assert_eq!(deployments.len(), 3);
    let live = &deployments[0];
    assert_eq!(
        live.id.as_deref(),
        Some("9a7f1c3e-5b2d-4e8f-a1c0-3d4e5f607182")
    );
    assert_eq!(live.versions.len(), 1);
    assert_eq!(live.versions[0].version_id, OLD);
    assert_eq!(live.annotations.triggered_by.as_deref(), Some("rollback"));
    assert_eq!(
        live.annotations.rollback_from.as_deref(),
        Some("4c1d2e3f-6a7b-4c8d-9e0f-1a2b3c4d5e6f")
    );
    assert_eq!(
        live.provenance(),
        r#"by ops@mauntic.example via wrangler (rollback): "undo: latency spike""#
    );
    // Drift: the gate last set 50/50; a human rolled back to the old version at 100%.
    let ours = Split::canary(NEW, 50.0, OLD).expect("valid");
    assert!(!ours.matches(&live.versions));
    assert!(ours.matches(&deployments[1].versions));
}

#[test]
fn empty_deployments_list_means_nothing_is_live() {
    let body = r#"{"success":true,"errors":[],"messages":[],"result":{"deployments":[]}}"#;
    assert_eq!(parse_deployments(&HttpResponse::new(200, body)), Ok(vec![]));
}

#[test]
fn created_deployment_parses() {
    let created = parse_created_deployment(&response(200, "cloudflare/deployment_created.json"))
        .expect("parses");
    assert_eq!(created.strategy.as_deref(), Some("percentage"));
    assert_eq!(created.source.as_deref(), Some("api"));
    assert_eq!(
        created.annotations.message.as_deref(),
        Some("rollout-gate: mauntic-gateway step 2/3 (50%)")
    );
    assert!(Split::canary(NEW, 50.0, OLD)
        .expect("valid")
        .matches(&created.versions));
}

#[test]
fn version_parses_identity_and_bindings() {
    let version = parse_version(&response(200, "cloudflare/version.json")).expect("parses");
    assert_eq!(version.id, NEW);
    assert_eq!(version.number, Some(42));
    assert_eq!(version.source.as_deref(), Some("wrangler"));
    assert_eq!(version.author_email.as_deref(), Some("ci@mauntic.example"));
    assert_eq!(version.tag.as_deref(), Some("fda42e04"));
    assert_eq!(
        version.message.as_deref(),
        Some("feat: faster tenant lookup")
    );
    let kinds: Vec<(&str, &str)> = version
        .bindings
        .iter()
        .map(|b| (b.kind.as_str(), b.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("analytics_engine", "AE"),
            ("secrets_store_secret", "SLACK_WEBHOOK"),
            ("version_metadata", "CF_VERSION_METADATA"),
            ("durable_object_namespace", "TENANTS"),
            ("plain_text", "ENVIRONMENT"),
            ("secret_text", "LEGACY_TOKEN"),
            ("json", "LIMITS"),
        ]
    );
}

#[test]
fn missing_bindings_table() {
    let version = parse_version(&response(200, "cloudflare/version.json")).expect("parses");
    let secret = |name: &str, store: Option<&str>| RequiredBinding::SecretsStoreSecret {
        secret_name: name.into(),
        store_id: store.map(str::to_string),
    };
    let cases: Vec<(RequiredBinding, bool)> = vec![
        (secret("slack_webhook_url", None), true),
        (
            secret(
                "slack_webhook_url",
                Some("8f2b4d6e0a1c3e5f7b9d1f3a5c7e9b0d"),
            ),
            true,
        ),
        (secret("slack_webhook_url", Some("another-store")), false),
        (secret("cloudflare_api_token", None), false),
        (
            RequiredBinding::AnalyticsEngine {
                dataset: "mauntic_logs".into(),
            },
            true,
        ),
        (
            RequiredBinding::AnalyticsEngine {
                dataset: "other_logs".into(),
            },
            false,
        ),
        (
            RequiredBinding::Named {
                binding_type: "version_metadata".into(),
                name: "CF_VERSION_METADATA".into(),
            },
            true,
        ),
    ];
    for (required, present) in cases {
        let missing = version.missing_bindings(std::slice::from_ref(&required));
        assert_eq!(missing.is_empty(), present, "{required}");
    }
    assert_eq!(
        secret("api_token", Some("s1")).to_string(),
        "Secrets Store secret `api_token` (store s1)"
    );
}

#[test]
fn versions_page_parses_items_and_paging() {
    let page =
        parse_versions_page(&response(200, "cloudflare/versions_page.json")).expect("parses");
    let ids: Vec<&str> = page.items.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, vec![NEW, OLD]);
    assert_eq!(page.items[1].source.as_deref(), Some("workersci"));
    assert!(page.items[0].bindings.is_empty());
    assert_eq!(page.result_info.total_count, Some(5));
    assert!(page.has_more());
}

#[test]
fn error_fixtures_classify() {
    let cases: Vec<(HttpResponse, CloudflareError)> = vec![
        (
            response(404, "cloudflare/error_worker_not_found.json"),
            CloudflareError::NotFound {
                code: Some(10007),
                message: "10007: This Worker does not exist on your account.".into(),
            },
        ),
        (
            response(403, "cloudflare/error_auth.json"),
            CloudflareError::Unauthorized {
                status: 403,
                message: "10000: Authentication error".into(),
            },
        ),
        (
            response(429, "cloudflare/error_rate_limited.json").with_header("retry-after", "120"),
            CloudflareError::RateLimited { retry_after_secs: 120 },
        ),
        (
            response(429, "cloudflare/error_rate_limited.json"),
            CloudflareError::RateLimited {
                retry_after_secs: RATE_LIMITED_DEFAULT_SECS,
            },
        ),
        (
            response(400, "cloudflare/error_invalid_split.json"),
            CloudflareError::Invalid {
                status: 400,
                code: 10021,
                message: "10021: The sum of version percentages must be 100.; 10021: A deployment may reference at most 2 versions. (10001: validation failed)".into(),
            },
        ),
        (
            response(500, "cloudflare/error_server.json"),
            CloudflareError::Server { status: 500 },
        ),
    ];
    for (resp, want) in cases {
        assert_eq!(
            parse_deployments(&resp),
            Err(want.clone()),
            "{}",
            resp.status
        );
        assert_eq!(parse_version(&resp).map(|_| ()), Err(want));
    }
}

#[test]
fn unauthorized_message_names_the_scope_for_slack() {
    let err = parse_version(&response(403, "cloudflare/error_auth.json")).expect_err("fails");
    let text = err.to_string();
    assert!(text.contains("Workers Scripts Write"), "{text}");
    assert!(!text.contains(TOKEN));
}

#[test]
fn a_rollback_refused_for_changed_secrets_names_them() {
    let resp = response(400, "cloudflare/error_secrets_changed.json");
    let err = parse_created_deployment(&resp).expect_err("refused");
    let CloudflareError::SecretsChanged { secrets, message } = &err else {
        panic!("not a secrets refusal: {err:?}");
    };
    assert_eq!(secrets, &["SECRET", "SECRET_TWO"]);
    assert!(message.contains("?force=true"), "{message}");
    assert!(
        !err.is_transient(),
        "the same body is refused again unless forced"
    );
    assert!(err.to_string().contains("SECRET, SECRET_TWO"), "{err}");
}

#[test]
fn changed_secrets_are_read_after_cloudflares_marker_and_bounded() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("x. {SECRETS_CHANGED_MARKER} A, B_2"),
            vec!["A", "B_2"],
        ),
        (format!("{SECRETS_CHANGED_MARKER} ONLY."), vec!["ONLY"]),
        (format!("{SECRETS_CHANGED_MARKER}A,, B ,"), vec!["A", "B"]),
        (
            "A secret has changed since this version was active.".into(),
            vec![],
        ),
        (format!("{SECRETS_CHANGED_MARKER} "), vec![]),
    ];
    for (message, want) in cases {
        assert_eq!(parse_changed_secrets(&message), want, "{message}");
    }
    let many = format!(
        "{SECRETS_CHANGED_MARKER} {}",
        vec!["S".repeat(500); 1000].join(", ")
    );
    let names = parse_changed_secrets(&many);
    assert_eq!(names.len(), 20);
    assert!(names.iter().all(|n| n.chars().count() <= 64));
}

#[test]
fn a_malformed_token_is_a_credentials_problem_not_a_bad_request() {
    let err = parse_created_deployment(&response(400, "cloudflare/error_malformed_token.json"))
        .expect_err("refused");
    assert_eq!(
        err,
        CloudflareError::Unauthorized {
            status: 400,
            message:
                "6003: Invalid request headers (6111: Invalid format for Authorization header)"
                    .into(),
        }
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("check it is valid"), "{err}");
    // The chain alone, and 9109 with 403, classify the same way.
    let chain_only = r#"{"success":false,"errors":[{"code":1,"message":"x","error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]}],"result":null}"#;
    let invalid_token = r#"{"success":false,"errors":[{"code":9109,"message":"Invalid access token"}],"result":null}"#;
    for (status, body) in [(400, chain_only), (403, invalid_token)] {
        assert!(matches!(
            parse_deployments(&HttpResponse::new(status, body)),
            Err(CloudflareError::Unauthorized { .. })
        ));
    }
    // An odd error_chain never hides the error itself.
    let odd = r#"{"success":false,"errors":[{"code":10021,"message":"bad","error_chain":"?"}],"result":null}"#;
    assert!(matches!(
        parse_deployments(&HttpResponse::new(400, odd)),
        Err(CloudflareError::Invalid { code: 10021, .. })
    ));
}

#[test]
fn deployments_with_cohorts_parse_with_their_splits() {
    let deployments = parse_deployments(&response(200, "cloudflare/deployments_list_cohorts.json"))
        .expect("parses");
    let live = &deployments[0];
    let names: Vec<&str> = live.cohorts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["beta", "employee"]);
    assert_eq!(live.cohorts[1].versions[0].version_id, NEW);
    assert_eq!(live.cohorts[1].versions[0].percentage, 100.0);
    assert!(
        deployments[1].cohorts.is_empty(),
        "null cohorts read as none"
    );
    let unreadable = r#"{"success":true,"errors":[],"result":{"deployments":[{"versions":[],"cohorts":"beta"}]}}"#;
    assert!(
        parse_deployments(&HttpResponse::new(200, unreadable)).is_err(),
        "cohorts that cannot be read must not pass for none"
    );
}

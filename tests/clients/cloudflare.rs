//! Cloudflare v4: exact requests per endpoint, fixtures for every result shape, and the
//! error classification over captured error bodies.

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
                message: "10021: The sum of version percentages must be 100.; 10021: A deployment may reference at most 2 versions.".into(),
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

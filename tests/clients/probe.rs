//! `/healthz` probes: the pinned request, and which version answered.

use crate::support::{fixture, NEW, OLD};
use rollout_gate::clients::http::{HttpResponse, Method, TransportError};
use rollout_gate::clients::probe::*;

#[test]
fn probe_request_is_exact() {
    let config = ProbeConfig::new("https://{script}.mauntic.example/");
    let req = build_probe_request(&config, "mauntic-gateway", NEW).expect("valid");
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.url, "https://mauntic-gateway.mauntic.example/healthz");
    assert_eq!(
        req.headers,
        vec![
            (
                "Cloudflare-Workers-Version-Overrides".to_string(),
                format!("mauntic-gateway=\"{NEW}\"")
            ),
            ("Accept".to_string(), "application/json".to_string()),
            ("Cache-Control".to_string(), "no-store".to_string()),
        ]
    );
    assert_eq!(req.body, None);
}

#[test]
fn probe_target_can_be_a_sandbox_path_and_custom_endpoint() {
    let config = ProbeConfig {
        target_base_url: "http://127.0.0.1:8790/targets/{script}".into(),
        path: "/_health".into(),
        version_source: VersionSource::Header("x-version-id".into()),
    };
    let req = build_probe_request(&config, "tenant-cache", OLD).expect("valid");
    assert_eq!(
        req.url,
        "http://127.0.0.1:8790/targets/tenant-cache/_health"
    );
    for base in ["ftp://x", "https://{scrip}.x", "https://a b", ""] {
        let cfg = ProbeConfig::new(base);
        assert_eq!(
            build_probe_request(&cfg, "w", NEW),
            Err(ProbeError::InvalidBaseUrl),
            "{base}"
        );
    }
}

#[test]
fn probe_outcomes_table() {
    let json = ProbeConfig::new("https://x");
    let header = ProbeConfig {
        version_source: VersionSource::Header("x-version-id".into()),
        ..ProbeConfig::new("https://x")
    };
    let ok_new = HttpResponse::new(200, fixture("probe/healthz_new.json"));
    let ok_old = HttpResponse::new(200, fixture("probe/healthz_old.json"));
    let failing_new = HttpResponse::new(503, fixture("probe/healthz_new_failing.json"));
    let bare_500 = HttpResponse::new(500, "internal error");
    let bare_200 = HttpResponse::new(200, "ok");
    let via_header = HttpResponse::new(200, "ok").with_header("X-Version-Id", NEW);
    let via_header_old = HttpResponse::new(200, "ok").with_header("x-version-id", OLD);
    let uppercase = HttpResponse::new(200, format!(r#"{{"version_id":"{}"}}"#, NEW.to_uppercase()));
    let timeout = TransportError::Timeout(5_000);

    let cases: Vec<(
        &ProbeConfig,
        Result<&HttpResponse, &TransportError>,
        ProbeOutcome,
    )> = vec![
        (&json, Ok(&ok_new), ProbeOutcome::Ok),
        (&json, Ok(&uppercase), ProbeOutcome::Ok),
        (
            &json,
            Ok(&ok_old),
            ProbeOutcome::WrongVersion {
                answered_by: OLD.into(),
            },
        ),
        (
            &json,
            Ok(&failing_new),
            ProbeOutcome::Failed {
                status: Some(503),
                error: None,
            },
        ),
        (
            &json,
            Ok(&bare_500),
            ProbeOutcome::Failed {
                status: Some(500),
                error: None,
            },
        ),
        (
            &json,
            Ok(&bare_200),
            ProbeOutcome::Unattributed { status: 200 },
        ),
        (&header, Ok(&via_header), ProbeOutcome::Ok),
        (
            &header,
            Ok(&via_header_old),
            ProbeOutcome::WrongVersion {
                answered_by: OLD.into(),
            },
        ),
        (
            &header,
            Ok(&ok_new),
            ProbeOutcome::Unattributed { status: 200 },
        ),
        (
            &json,
            Err(&timeout),
            ProbeOutcome::Failed {
                status: None,
                error: Some("timed out after 5000 ms".into()),
            },
        ),
    ];
    for (config, answer, want) in cases {
        assert_eq!(read_probe(config, NEW, answer), want, "{answer:?}");
    }
}

#[test]
fn outcomes_serialize_for_the_audit_log() {
    let text = serde_json::to_string(&ProbeOutcome::WrongVersion {
        answered_by: OLD.into(),
    })
    .expect("json");
    assert_eq!(
        text,
        format!(r#"{{"result":"wrong_version","answered_by":"{OLD}"}}"#)
    );
}

//! Tests of the HTTP API contract: routes, auth, and the validation table.

use super::*;

const NEW: &str = "4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f";
const OLD: &str = "0a1b2c3d-4e5f-4a5b-8c9d-0e1f2a3b4c5d";
const JSON: Option<&str> = Some("application/json");

fn hook(body: &str) -> Result<DeployHook, ApiError> {
    parse_deploy_hook(JSON, body.as_bytes())
}

#[test]
fn routes_match_the_spec_table() {
    let cases = [
        ("GET", "/", Route::StatusPage),
        ("GET", "/healthz", Route::Health),
        ("GET", "/openapi.json", Route::OpenApi),
        (
            "GET",
            "/rollouts/tenant-cache",
            Route::RolloutPage {
                script: "tenant-cache".into(),
            },
        ),
        ("GET", "/v1/rollouts", Route::ListRollouts),
        ("POST", "/v1/rollouts", Route::StartRollout),
        ("POST", "/v1/parity", Route::Parity),
        ("POST", "/slack/actions", Route::SlackActions),
        (
            "GET",
            "/v1/rollouts/tenant-cache",
            Route::RolloutStatus {
                script: "tenant-cache".into(),
            },
        ),
        (
            "GET",
            "/v1/rollouts/tenant-cache/",
            Route::RolloutStatus {
                script: "tenant-cache".into(),
            },
        ),
        (
            "GET",
            "/v1/rollouts/gw/events",
            Route::RolloutEvents {
                script: "gw".into(),
            },
        ),
        (
            "POST",
            "/v1/rollouts/gw/pause",
            Route::Operator {
                script: "gw".into(),
                command: Command::Pause,
            },
        ),
        (
            "POST",
            "/v1/rollouts/gw/resume",
            Route::Operator {
                script: "gw".into(),
                command: Command::Resume,
            },
        ),
        (
            "POST",
            "/v1/rollouts/gw/promote",
            Route::Operator {
                script: "gw".into(),
                command: Command::Promote,
            },
        ),
        (
            "POST",
            "/v1/rollouts/gw/abort",
            Route::Operator {
                script: "gw".into(),
                command: Command::Abort,
            },
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(route(method, path), Ok(expected), "{method} {path}");
    }
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    let cases = [
        ("GET", "/nope", 404),
        ("POST", "/v1/rollouts/gw/explode", 404),
        ("GET", "/v1/rollouts/Not_Valid!", 404),
        ("DELETE", "/v1/rollouts", 405),
        ("POST", "/healthz", 405),
        ("GET", "/v1/rollouts/gw/pause", 405),
        ("POST", "/v1/rollouts/gw/events", 405),
    ];
    for (method, path, status) in cases {
        let err = route(method, path).expect_err(path);
        assert_eq!(err.status(), status, "{method} {path}");
    }
}

#[test]
fn everything_but_health_and_the_api_description_needs_the_token() {
    assert!(!Route::Health.needs_token());
    assert!(!Route::OpenApi.needs_token());
    assert!(Route::StatusPage.needs_token());
    assert!(Route::RolloutPage {
        script: "gw".into()
    }
    .needs_token());
    assert!(Route::ListRollouts.needs_token());
    assert!(Route::StartRollout.needs_token());
}

#[test]
fn bearer_token_must_match_exactly() {
    let cases = [
        (None, false),
        (Some(""), false),
        (Some("Bearer"), false),
        (Some("Bearer s3cret"), true),
        (Some("bearer s3cret"), true),
        (Some("Bearer s3cre"), false),
        (Some("Bearer s3cret0"), false),
        (Some("Basic s3cret"), false),
        (Some("Bearer S3CRET"), false),
        (Some("Basic b3BzOnMzY3JldA=="), true),  // ops:s3cret
        (Some("Basic OnMzY3JldA"), true),        // :s3cret, unpadded
        (Some("Basic b3BzOnMzY3JldDA="), false), // ops:s3cret0
        (Some("Basic !!!"), false),
    ];
    for (header, ok) in cases {
        assert_eq!(authorize(header, "s3cret").is_ok(), ok, "{header:?}");
    }
}

#[test]
fn an_unset_token_refuses_everyone() {
    assert_eq!(authorize(Some("Bearer "), ""), Err(ApiError::Unauthorized));
    assert_eq!(authorize(Some("Bearer x"), ""), Err(ApiError::Unauthorized));
}

#[test]
fn unauthorized_error_never_echoes_the_token() {
    let err = authorize(Some("Bearer leaked-value"), "s3cret").unwrap_err();
    assert!(!err.to_json().contains("leaked-value"));
    assert!(!err.to_json().contains("s3cret"));
}

#[test]
fn a_minimal_hook_gets_the_default_schedule() {
    let parsed = hook(&format!(
        r#"{{"script":"mauntic-gateway","version_id":"{NEW}"}}"#
    ))
    .unwrap();
    assert_eq!(parsed.script, "mauntic-gateway");
    assert_eq!(parsed.version_id, NEW);
    assert_eq!(parsed.schedule, Schedule::default());
    assert!(!parsed.dry_run);
    assert_eq!(parsed.baseline_version_id, None);
}

#[test]
fn a_full_hook_is_kept_whole() {
    let body = format!(
        r#"{{"script":"tenant-cache","version_id":"{}","git_sha":"ABCDEF1234567",
            "baseline_version_id":"{OLD}","dry_run":true,"message":"release 42",
            "schedule":{{"steps":[{{"percent":5,"dwell_minutes":5}},{{"percent":100,"dwell_minutes":15}}]}}}}"#,
        NEW.to_uppercase()
    );
    let parsed = hook(&body).unwrap();
    assert_eq!(parsed.version_id, NEW, "ids are normalised to lower case");
    assert_eq!(parsed.git_sha.as_deref(), Some("abcdef1234567"));
    assert_eq!(parsed.baseline_version_id.as_deref(), Some(OLD));
    assert!(parsed.dry_run);
    assert_eq!(parsed.message.as_deref(), Some("release 42"));
    assert_eq!(parsed.schedule.steps().len(), 2);
}

#[test]
fn each_bad_hook_gets_its_status_and_code() {
    let big = format!(
        r#"{{"script":"gw","version_id":"{NEW}","message":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (
            None,
            format!(r#"{{"script":"gw","version_id":"{NEW}"}}"#),
            415,
            "unsupported_media_type",
        ),
        (
            Some("text/plain"),
            format!(r#"{{"script":"gw","version_id":"{NEW}"}}"#),
            415,
            "unsupported_media_type",
        ),
        (JSON, big, 413, "payload_too_large"),
        (JSON, "{".into(), 400, "malformed_json"),
        (JSON, "not json".into(), 400, "malformed_json"),
        (
            JSON,
            format!(r#"{{"script":"gw","version_id":"{NEW}","colour":"red"}}"#),
            400,
            "unknown_field",
        ),
        (JSON, r#"{"script":"gw"}"#.into(), 400, "missing_field"),
        (
            JSON,
            format!(r#"{{"script":"gw","version_id":"{NEW}","dry_run":"yes"}}"#),
            400,
            "invalid_field",
        ),
        (
            JSON,
            format!(r#"{{"script":"Gateway!","version_id":"{NEW}"}}"#),
            422,
            "invalid_script",
        ),
        (
            JSON,
            format!(r#"{{"script":"-gw","version_id":"{NEW}"}}"#),
            422,
            "invalid_script",
        ),
        (
            JSON,
            format!(r#"{{"script":"{}","version_id":"{NEW}"}}"#, "a".repeat(64)),
            422,
            "invalid_script",
        ),
        (
            JSON,
            r#"{"script":"gw","version_id":"v42"}"#.into(),
            422,
            "invalid_version_id",
        ),
        (
            JSON,
            format!(r#"{{"script":"gw","version_id":"{NEW}","baseline_version_id":"x"}}"#),
            422,
            "invalid_version_id",
        ),
        (
            JSON,
            format!(r#"{{"script":"gw","version_id":"{NEW}","baseline_version_id":"{NEW}"}}"#),
            422,
            "same_version",
        ),
        (
            JSON,
            format!(r#"{{"script":"gw","version_id":"{NEW}","git_sha":"xyz"}}"#),
            422,
            "invalid_git_sha",
        ),
        (
            JSON,
            format!(r#"{{"script":"gw","version_id":"{NEW}","schedule":{{"steps":[]}}}}"#),
            422,
            "invalid_schedule",
        ),
        (
            JSON,
            format!(
                r#"{{"script":"gw","version_id":"{NEW}","schedule":{{"steps":[{{"percent":50,"dwell_minutes":5}}]}}}}"#
            ),
            422,
            "invalid_schedule",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let err = parse_deploy_hook(content_type, body.as_bytes()).expect_err(&body);
        assert_eq!(
            (err.status(), err.code()),
            (status, code),
            "{}",
            &body[..body.len().min(120)]
        );
    }
}

#[test]
fn a_body_that_is_not_utf8_is_malformed_json() {
    let body = b"{\"script\":\"g\xffw\",\"version_id\":\"v\"}";
    let err = parse_deploy_hook(JSON, body).expect_err("not UTF-8");
    assert_eq!((err.status(), err.code()), (400, "malformed_json"));
}

#[test]
fn a_json_content_type_with_charset_is_accepted() {
    let body = format!(r#"{{"script":"gw","version_id":"{NEW}"}}"#);
    assert!(parse_deploy_hook(Some("application/json; charset=utf-8"), body.as_bytes()).is_ok());
}

#[test]
fn operator_body_may_be_empty_or_name_who_and_why() {
    assert_eq!(parse_operator_body(None, b""), Ok(OperatorBody::default()));
    let parsed = parse_operator_body(JSON, br#"{"by":"ana","reason":"p95 looks odd"}"#).unwrap();
    assert_eq!(parsed.by.as_deref(), Some("ana"));
    assert_eq!(
        parse_operator_body(JSON, br#"{"who":"ana"}"#)
            .unwrap_err()
            .code(),
        "unknown_field"
    );
}

#[test]
fn events_query_pages_and_clamps() {
    assert_eq!(
        parse_events_query(None),
        Ok(EventsPage {
            after: 0,
            limit: EVENTS_PAGE_DEFAULT
        })
    );
    assert_eq!(
        parse_events_query(Some("after=7&limit=9999")),
        Ok(EventsPage {
            after: 7,
            limit: EVENTS_PAGE_MAX
        })
    );
    assert_eq!(
        parse_events_query(Some("after=x")).unwrap_err().status(),
        400
    );
    assert_eq!(
        parse_events_query(Some("page=2")).unwrap_err().code(),
        "invalid_query"
    );
}

#[test]
fn list_query_filters_pages_and_refuses_what_it_does_not_know() {
    let q = parse_list_query(
        Some("phase=rolled_back&script=mauntic%2Dg&active=false&cursor=a+b&limit=9999"),
        LIST_PAGE_DEFAULT,
    )
    .unwrap();
    assert_eq!(q.phase.as_deref(), Some("rolled_back"));
    assert_eq!(q.script.as_deref(), Some("mauntic-g"));
    assert_eq!(
        (q.active, q.cursor.as_deref(), q.limit),
        (Some(false), Some("a b"), LIST_PAGE_MAX)
    );
    assert_eq!(
        parse_list_query(None, INDEX_PAGE).unwrap().limit,
        INDEX_PAGE
    );
    for bad in [
        "phase=rolled%20back",
        "phase=nope",
        "active=yes",
        "limit=x",
        "page=2",
        "script=%zz",
        "script=%e2%82",
    ] {
        let err = parse_list_query(Some(bad), LIST_PAGE_DEFAULT).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "invalid_query"), "{bad}");
    }
}

#[test]
fn a_list_query_written_out_reads_back_the_same() {
    let q = parse_list_query(
        Some("phase=paused&script=a%26b%3Dc&active=true&limit=7"),
        LIST_PAGE_DEFAULT,
    )
    .unwrap();
    let text = q.to_query(Some("x y"));
    let back = parse_list_query(Some(&text), LIST_PAGE_DEFAULT).unwrap();
    assert_eq!(
        back,
        ListQuery {
            cursor: Some("x y".into()),
            ..q
        }
    );
}

#[test]
fn a_typed_by_is_kept_only_as_an_unverified_note_beside_the_reason() {
    let body = |by: Option<&str>, reason: Option<&str>| OperatorBody {
        by: by.map(str::to_string),
        reason: reason.map(str::to_string),
    };
    assert_eq!(operator_why(body(None, None)), None);
    assert_eq!(operator_why(body(None, Some("db"))).as_deref(), Some("db"));
    assert_eq!(
        operator_why(body(Some("alice"), None)).as_deref(),
        Some("(note: by alice, unverified)")
    );
    assert_eq!(
        operator_why(body(Some("alice"), Some("db"))).as_deref(),
        Some("db (note: by alice, unverified)")
    );
    assert_eq!(
        operator_why(body(Some(" "), Some("db"))).as_deref(),
        Some("db")
    );
}

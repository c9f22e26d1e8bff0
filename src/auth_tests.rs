//! Tests of scopes, named tokens and the route table.

use super::*;
use crate::rollout::Command;

fn credentials() -> Vec<Credential> {
    vec![
        Credential {
            name: "ci".into(),
            scopes: Scopes::of(&[Scope::Start]),
            value: "ci-secret".into(),
        },
        Credential {
            name: "oncall".into(),
            scopes: Scopes::of(&[Scope::Operate, Scope::Read]),
            value: "oncall-secret".into(),
        },
        Credential {
            name: "unset".into(),
            scopes: Scopes::ALL,
            value: String::new(),
        },
        Credential {
            name: HOOK_NAME.into(),
            scopes: Scopes::ALL,
            value: "hook-secret".into(),
        },
    ]
}

fn operator() -> Route {
    Route::Operator {
        script: "gw".into(),
        command: Command::Promote,
    }
}

#[test]
fn a_presented_token_names_its_caller_and_scopes() {
    let creds = credentials();
    let ci = authenticate(Some("Bearer ci-secret"), &creds).unwrap();
    assert_eq!(ci.name, "token:ci");
    assert_eq!(ci.scopes.names(), ["start"]);
    let oncall = authenticate(Some("Basic b3BzOm9uY2FsbC1zZWNyZXQ="), &creds).unwrap();
    assert_eq!(
        oncall.name, "token:oncall",
        "Basic with the token as password"
    );
    let hook = authenticate(Some("Bearer hook-secret"), &creds).unwrap();
    assert_eq!(hook.scopes, Scopes::ALL);
}

#[test]
fn no_token_an_unknown_one_or_one_off_by_a_byte_is_unauthorized() {
    let creds = credentials();
    for header in [
        None,
        Some(""),
        Some("Bearer "),
        Some("Bearer ci-secreT"),
        Some("Bearer ci-secre"),
        Some("Bearer ci-secret0"),
        Some("Token ci-secret"),
    ] {
        assert_eq!(
            authenticate(header, &creds),
            Err(ApiError::Unauthorized),
            "{header:?}"
        );
    }
}

#[test]
fn an_unset_token_value_matches_nothing_not_even_an_empty_token() {
    let creds = credentials();
    assert_eq!(
        authenticate(Some("Bearer "), &creds),
        Err(ApiError::Unauthorized)
    );
    assert_eq!(
        authenticate(Some("Basic Og=="), &creds),
        Err(ApiError::Unauthorized)
    );
    assert_eq!(
        authenticate(Some("Bearer x"), &[]),
        Err(ApiError::Unauthorized)
    );
}

#[test]
fn each_route_needs_its_scope_and_only_health_and_the_document_are_open() {
    use Scope::*;
    let script = || "gw".to_string();
    let table: [(Route, &[Scope]); 11] = [
        (Route::Health, &[]),
        (Route::OpenApi, &[]),
        // Signed by Slack and checked against SLACK_OPERATORS instead (slack_actions).
        (Route::SlackActions, &[]),
        (Route::StartRollout, &[Start]),
        (Route::RolloutStatus { script: script() }, &[Read, Start]),
        (operator(), &[Operate]),
        (Route::Parity, &[Operate]),
        (Route::ListRollouts, &[Read]),
        (Route::RolloutEvents { script: script() }, &[Read]),
        (Route::StatusPage, &[Read]),
        (Route::RolloutPage { script: script() }, &[Read]),
    ];
    for (route, scopes) in table {
        assert_eq!(route_scopes(&route), scopes, "{route:?}");
        assert_eq!(route.needs_token(), !scopes.is_empty(), "{route:?}");
    }
}

#[test]
fn a_caller_without_the_scope_gets_403_naming_what_it_lacks() {
    let ci = Caller {
        name: "token:ci".into(),
        scopes: Scopes::of(&[Scope::Start]),
    };
    let err = check_scope(&ci, &operator()).unwrap_err();
    assert_eq!((err.status(), err.code()), (403, "missing_scope"));
    assert_eq!(err.to_string(), "token:ci lacks scope 'operate'");
    assert!(check_scope(&ci, &Route::StartRollout).is_ok());
    assert!(check_scope(
        &ci,
        &Route::RolloutStatus {
            script: "gw".into()
        }
    )
    .is_ok());
    assert!(check_scope(&ci, &Route::ListRollouts).is_err());
    let reader = Caller {
        name: "r".into(),
        scopes: Scopes::of(&[Scope::Read]),
    };
    assert!(check_scope(&reader, &Route::StatusPage).is_ok());
    assert!(check_scope(&reader, &Route::Parity).is_err());
    assert!(check_scope(&reader, &Route::StartRollout).is_err());
}

#[test]
fn credentials_debug_never_prints_the_value() {
    let shown = format!("{:?}", credentials());
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("oncall"));
}

#[test]
fn token_specs_are_read_from_json_and_their_names_checked() {
    let specs: Vec<TokenSpec> = serde_json::from_str(
        r#"[{"name":"ci","scopes":["start"]},{"name":"on_call2","scopes":["operate","read"]}]"#,
    )
    .unwrap();
    assert_eq!(check_token_specs(&specs), Ok(()));
    assert_eq!(specs[1].secret_name(), "TOKEN_ON_CALL2");
    let bad = |json: &str| {
        let specs: Vec<TokenSpec> = serde_json::from_str(json).unwrap();
        check_token_specs(&specs).unwrap_err()
    };
    assert!(bad(r#"[{"name":"CI","scopes":["start"]}]"#).contains("a-z"));
    assert!(bad(r#"[{"name":"1ci","scopes":["start"]}]"#).contains("a-z"));
    assert!(bad(r#"[{"name":"hook","scopes":["start"]}]"#).contains("HOOK_TOKEN"));
    assert!(
        bad(r#"[{"name":"a","scopes":["read"]},{"name":"a","scopes":["read"]}]"#).contains("twice")
    );
    assert!(bad(r#"[{"name":"a","scopes":[]}]"#).contains("no scopes"));
    assert!(
        serde_json::from_str::<Vec<TokenSpec>>(r#"[{"name":"a","scopes":["admin"]}]"#).is_err()
    );
}

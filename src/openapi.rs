//! The OpenAPI 3.1 description of the gate's HTTP API, served at `GET /openapi.json`. The
//! document lives in `docs/openapi.json`; the tests here hold it (and the adoption docs'
//! paths, vars and phase names) to `api::route`, the parsers, the error contract and serde.

/// The OpenAPI document (JSON), exactly as `docs/openapi.json`.
pub fn document() -> &'static str {
    include_str!("../docs/openapi.json")
}

/// Content type to serve it with.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{self, Route};
    use crate::http_error::ApiError;
    use crate::rollout::{Command, Phase};
    use serde_json::Value;
    use std::collections::BTreeSet;

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn doc() -> Value {
        serde_json::from_str(document()).expect("docs/openapi.json is JSON")
    }

    /// A stable name per route the API knows. The match has no wildcard arm: a new `Route`
    /// variant does not compile until it is named here, and then `every_route_the_api_knows
    /// _is_documented` fails until the document has it.
    fn route_name(route: &Route) -> String {
        match route {
            Route::Health => "health".into(),
            Route::StatusPage => "status_page".into(),
            Route::RolloutPage { .. } => "rollout_page".into(),
            Route::OpenApi => "openapi".into(),
            Route::ListRollouts => "list_rollouts".into(),
            Route::StartRollout => "start_rollout".into(),
            Route::RolloutStatus { .. } => "rollout_status".into(),
            Route::RolloutEvents { .. } => "rollout_events".into(),
            Route::Operator { command, .. } => format!("operator_{command}"),
            Route::Parity => "parity".into(),
            Route::SlackActions => "slack_actions".into(),
        }
    }

    /// Every route of `api::Route`, one row per variant (and per operator command).
    fn known_routes() -> Vec<Route> {
        let script = || "mauntic-gateway".to_string();
        let mut routes = vec![
            Route::Health,
            Route::StatusPage,
            Route::RolloutPage { script: script() },
            Route::OpenApi,
            Route::ListRollouts,
            Route::StartRollout,
            Route::RolloutStatus { script: script() },
            Route::RolloutEvents { script: script() },
            Route::Parity,
            Route::SlackActions,
        ];
        for command in [
            Command::Pause,
            Command::Resume,
            Command::Promote,
            Command::Abort,
        ] {
            routes.push(Route::Operator {
                script: script(),
                command,
            });
        }
        routes
    }

    /// (METHOD, concrete path, operation) for every documented operation.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let concrete = path.replace("{script}", "mauntic-gateway");
                    out.push((method.to_ascii_uppercase(), concrete, op.clone()));
                }
            }
        }
        out
    }

    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}"))
            }
            None => value,
        }
    }

    #[test]
    fn document_is_openapi_3_1_json_for_this_version() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_documented_operation_answers_through_api_route() {
        let doc = doc();
        let ops = operations(&doc);
        assert!(ops.len() >= 12, "{} operations", ops.len());
        for (method, path, _) in ops {
            if let Err(e) = api::route(&method, &path) {
                panic!("{method} {path} is documented but routes to {}", e.status());
            }
        }
    }

    #[test]
    fn every_route_the_api_knows_is_documented() {
        let doc = doc();
        let documented: BTreeSet<String> = operations(&doc)
            .iter()
            .map(|(m, p, _)| route_name(&api::route(m, p).unwrap()))
            .collect();
        let known: BTreeSet<String> = known_routes().iter().map(route_name).collect();
        assert_eq!(documented, known);
    }

    #[test]
    fn v1_and_pages_need_a_token_and_only_health_and_this_document_are_open() {
        let doc = doc();
        for (method, path, op) in operations(&doc) {
            let route = api::route(&method, &path).unwrap();
            let open = op["security"].as_array().is_some_and(Vec::is_empty);
            assert_eq!(open, !route.needs_token(), "{method} {path}");
            if !open {
                let schemes: Vec<&str> = op["security"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
                    .collect();
                assert!(schemes.contains(&"bearerAuth"), "{method} {path}");
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
                assert!(schemes.contains(&"accessJwt"), "{method} {path}");
                assert_eq!(
                    op["responses"]["403"]["$ref"], "#/components/responses/Forbidden",
                    "{method} {path}"
                );
                assert!(op["responses"]["503"].is_object(), "{method} {path}");
            }
        }
    }

    #[test]
    fn the_description_names_each_routes_scope_as_auth_does() {
        let doc = doc();
        let text = doc["info"]["description"].as_str().unwrap();
        for (method, path, _) in operations(&doc) {
            let route = api::route(&method, &path).unwrap();
            for scope in crate::auth::route_scopes(&route) {
                assert!(text.contains(&format!("`{}`", scope.name())), "{scope:?}");
            }
        }
        for code in ["missing_scope", "STATUS_PAGE_AUTH=access", "HOOK_TOKEN"] {
            assert!(text.contains(code), "{code}");
        }
        let unauthorized = doc["components"]["responses"]["Unauthorized"]["description"]
            .as_str()
            .unwrap();
        for code in [
            "access_invalid",
            "access_expired",
            "access_not_yet_valid",
            "access_wrong_audience",
            "access_wrong_issuer",
            "access_unknown_key",
        ] {
            assert!(unauthorized.contains(code), "{code}");
        }
    }

    #[test]
    fn the_slack_route_documents_every_refusal_with_its_status() {
        use crate::slack_actions::Refusal;
        let doc = doc();
        let op = &doc["paths"]["/slack/actions"]["post"];
        let text = op["description"].as_str().unwrap();
        let refusals = [
            Refusal::Unsigned,
            Refusal::Stale,
            Refusal::BadSignature,
            Refusal::Replay,
            Refusal::BadPayload("x".into()),
            Refusal::UnknownUser("U1".into()),
            Refusal::MissingScope {
                user: "U1".into(),
                scope: crate::auth::Scope::Operate,
            },
            Refusal::RolloutEnded("x".into()),
        ];
        for refusal in refusals {
            let err = refusal.to_api_error();
            assert!(
                text.contains(&format!("`{}`", err.code())),
                "{}",
                err.code()
            );
            assert!(
                op["responses"][err.status().to_string()].is_object(),
                "{}",
                err.status()
            );
        }
    }

    #[test]
    fn deploy_hook_schema_matches_the_parser() {
        let doc = doc();
        let schema = &doc["components"]["schemas"]["DeployHook"];
        assert_eq!(schema["additionalProperties"], false);
        let fields: BTreeSet<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected: BTreeSet<&str> = [
            "script",
            "version_id",
            "git_sha",
            "baseline_version_id",
            "schedule",
            "dry_run",
            "message",
        ]
        .into();
        assert_eq!(fields, expected);
        assert_eq!(
            schema["required"],
            serde_json::json!(["script", "version_id"])
        );
        let step = &doc["components"]["schemas"]["Step"];
        assert_eq!(step["additionalProperties"], false);
        let step_fields: BTreeSet<&str> = step["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            step_fields,
            ["percent", "dwell_minutes", "max_minutes"].into()
        );
        let op = &doc["paths"]["/v1/rollouts"]["post"];
        let examples = op["requestBody"]["content"]["application/json"]["examples"]
            .as_object()
            .unwrap();
        for (name, example) in examples {
            let body = serde_json::to_vec(&example["value"]).unwrap();
            let parsed = api::parse_deploy_hook(Some("application/json"), &body);
            assert!(parsed.is_ok(), "example {name}: {parsed:?}");
        }
        // The parser agrees that the schema is closed.
        let extra = br#"{"script":"gw","version_id":"4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f","x":1}"#;
        let refused = api::parse_deploy_hook(Some("application/json"), extra).unwrap_err();
        assert_eq!(refused.code(), "unknown_field");
        let body = br#"{"by":"alice","reason":"why","x":1}"#;
        assert!(api::parse_operator_body(Some("application/json"), body).is_err());
    }

    #[test]
    fn every_error_status_has_a_documented_response_with_the_error_schema() {
        let doc = doc();
        let errors = [
            ApiError::bad_request("malformed_json", "x"),
            ApiError::Unauthorized,
            ApiError::Forbidden {
                code: "missing_scope",
                message: "x".into(),
            },
            ApiError::NotFound("x".into()),
            ApiError::MethodNotAllowed("DELETE".into()),
            ApiError::conflict("rollout_active", "x"),
            ApiError::PayloadTooLarge(api::MAX_BODY_BYTES),
            ApiError::UnsupportedMediaType,
            ApiError::unprocessable("invalid_version_id", "x"),
            ApiError::internal("x"),
            ApiError::Upstream("x".into()),
        ];
        let statuses: BTreeSet<u16> = errors.iter().map(ApiError::status).collect();
        assert_eq!(
            statuses,
            [400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 502].into()
        );
        let responses = doc["components"]["responses"].as_object().unwrap();
        for err in &errors {
            let status = err.status().to_string();
            let (_, response) = responses
                .iter()
                .find(|(_, r)| {
                    r["description"]
                        .as_str()
                        .is_some_and(|d| d.starts_with(&format!("{status}:")))
                })
                .unwrap_or_else(|| panic!("no documented response for {status}"));
            let content = &response["content"]["application/json"];
            assert_eq!(content["schema"]["$ref"], "#/components/schemas/Error");
            // The example has the real shape: what `to_json` produces, key for key.
            let real: Value = serde_json::from_str(&err.to_json()).unwrap();
            let example = &content["example"];
            let keys = |v: &Value| -> Vec<String> {
                v["error"].as_object().unwrap().keys().cloned().collect()
            };
            assert_eq!(keys(example), keys(&real), "{status}");
        }
        let error = &doc["components"]["schemas"]["Error"];
        assert_eq!(
            error["properties"]["error"]["required"],
            serde_json::json!(["code", "message"])
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        fn walk<'a>(v: &'a Value, refs: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r);
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(refs.len() > 20);
        for r in refs {
            let _ = resolve(&doc, &serde_json::json!({ "$ref": r }));
        }
    }

    #[test]
    fn phase_names_in_the_document_are_the_serialized_tags() {
        use crate::observe::LiveDeployment;
        use crate::rollout::{PauseReason, RollbackCause, Stage};
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let enum_of = |v: &Value| -> BTreeSet<String> {
            v["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let cause = RollbackCause::Operator {
            by: "a".into(),
            why: None,
        };
        let phases = [
            Phase::Preflight,
            Phase::Ramping { step: 0 },
            Phase::Baking,
            Phase::Completed,
            Phase::RollingBack {
                cause: cause.clone(),
            },
            Phase::RolledBack { cause },
            Phase::Paused {
                at: Stage::Baking,
                reason: PauseReason::Operator {
                    by: "a".into(),
                    why: None,
                },
                resumable: true,
            },
            Phase::Aborted {
                by: "a".into(),
                why: None,
            },
            Phase::Drifted {
                at: Stage::Baking,
                observed: LiveDeployment::default(),
            },
            Phase::Superseded {
                observed: LiveDeployment::default(),
            },
            Phase::Failed {
                reasons: Vec::new(),
            },
        ];
        let tags: BTreeSet<String> = phases
            .iter()
            .map(|p| {
                serde_json::to_value(p).unwrap()["phase"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(enum_of(&schemas["PhaseTag"]), tags);
        for phase in &phases {
            let tag = serde_json::to_value(phase).unwrap()["phase"].clone();
            assert_eq!(tag, phase.tag(), "Phase::tag is the stored tag");
        }
        let filters: BTreeSet<String> = api::PHASE_TAGS.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            filters, tags,
            "the ?phase= filter takes every tag and no other"
        );
        let names: BTreeSet<String> = phases.iter().map(|p| p.name().to_string()).collect();
        assert_eq!(
            enum_of(&schemas["RolloutView"]["properties"]["phase_name"]),
            names
        );
    }
}

/// The adoption docs (docs/*.md, instrument/README.md) held to the code: every API path
/// they show routes, every variable is explained, every phase is named as serialized.
#[cfg(test)]
mod docs_match_the_code {
    use crate::api;

    const DOCS: [(&str, &str); 5] = [
        ("docs/deploy.md", include_str!("../docs/deploy.md")),
        ("docs/ci.md", include_str!("../docs/ci.md")),
        ("docs/runbook.md", include_str!("../docs/runbook.md")),
        ("docs/instrument.md", include_str!("../docs/instrument.md")),
        (
            "instrument/README.md",
            include_str!("../instrument/README.md"),
        ),
    ];

    /// Every `/v1/...` path in `text`, with the script placeholders filled in; paths with
    /// another placeholder (`<command>`) are skipped.
    fn api_paths(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("/v1/rollouts") {
            let path: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_/<>{}$".contains(*c))
                .collect();
            let path = ["<script>", "{script}", "${SCRIPT}", "$SCRIPT"]
                .iter()
                .fold(path, |p, placeholder| {
                    p.replace(placeholder, "mauntic-gateway")
                });
            if !path.contains(['<', '{', '$']) {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn every_api_path_in_the_docs_routes() {
        let mut checked = 0;
        for (name, text) in DOCS {
            for path in api_paths(text) {
                let routed = ["GET", "POST"].iter().any(|m| api::route(m, &path).is_ok());
                assert!(routed, "{name}: {path} is not a route");
                checked += 1;
            }
        }
        assert!(checked >= 12, "only {checked} paths found");
    }

    #[test]
    fn deploy_guide_explains_every_variable() {
        let deploy = DOCS[0].1;
        for (var, _) in crate::config::VARS {
            assert!(
                deploy.contains(&format!("| `{var}` |")),
                "docs/deploy.md: {var}"
            );
        }
        let secrets = crate::config::SECRET_NAMES
            .iter()
            .chain([&crate::config::ANALYTICS_TOKEN_NAME]);
        for secret in secrets {
            assert!(
                deploy.contains(&format!("binding = \"{secret}\"")),
                "{secret}"
            );
        }
    }

    #[test]
    fn runbook_names_every_phase_as_serialized() {
        let runbook = DOCS[2].1;
        let doc: serde_json::Value = serde_json::from_str(super::document()).unwrap();
        for tag in doc["components"]["schemas"]["PhaseTag"]["enum"]
            .as_array()
            .unwrap()
        {
            let tag = tag.as_str().unwrap();
            assert!(
                runbook.contains(&format!("`{tag}`")),
                "docs/runbook.md: {tag}"
            );
        }
    }
}

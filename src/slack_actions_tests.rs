//! Tests of `slack_actions`: the signed request's pure checks, the click payload, the
//! button value, the allow-list and the buttons as Block Kit.

use super::*;

const NOW: i64 = 1_795_773_600;
const VERSION: &str = "11111111-1111-4111-8111-111111111111";

fn target() -> ButtonTarget {
    ButtonTarget {
        script: "mauntic-gateway".into(),
        version_id: VERSION.into(),
        started_ms: 1_795_773_600_000,
    }
}

/// A form-encoded body as Slack sends it, the JSON percent-encoded.
fn form(payload: &serde_json::Value) -> Vec<u8> {
    let json = payload.to_string();
    let mut out = String::from("payload=");
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into_bytes()
}

fn click_payload(action_id: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "block_actions",
        "user": {"id": "U012ABCDEF", "username": "ana", "name": "ana", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1795773600.000100", "channel_id": "C0001", "is_ephemeral": false},
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C0001", "name": "deploys"},
        "message": {"type": "message", "ts": "1795773600.000100", "text": "alert", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
        "actions": [{"action_id": action_id, "block_id": BLOCK_ID, "text": {"type": "plain_text", "text": "Pause"},
                     "value": value, "type": "button", "action_ts": "1795773601.000200"}],
        "state": {"values": {}}
    })
}

#[test]
fn the_base_string_is_v0_timestamp_and_the_raw_body() {
    assert_eq!(
        base_string("1531420618", b"a=b&c=d"),
        b"v0:1531420618:a=b&c=d"
    );
    // The body is signed as sent: percent-encoding and all, never re-encoded.
    assert_eq!(base_string("1", b"payload=%7B%7D"), b"v0:1:payload=%7B%7D");
}

#[test]
fn timestamps_more_than_five_minutes_off_either_way_are_stale() {
    for ok in [NOW, NOW - 300, NOW + 300] {
        assert_eq!(check_timestamp(&ok.to_string(), NOW), Ok(ok));
    }
    for stale in ["1795773299", "1795773901", "", "abc", "1795773600.5", "-1"] {
        assert_eq!(check_timestamp(stale, NOW), Err(Refusal::Stale), "{stale}");
    }
}

#[test]
fn a_signature_is_v0_and_64_hex_digits() {
    let hex = "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    let bytes = parse_signature(&format!("v0={hex}")).unwrap();
    assert_eq!(bytes[0], 0xa2);
    assert_eq!(bytes[31], 0x03);
    for bad in [
        hex.to_string(),
        format!("v1={hex}"),
        format!("v0={}", &hex[..62]),
        format!("v0={hex}00"),
        format!("v0={}zz", &hex[..62]),
    ] {
        assert_eq!(parse_signature(&bad), Err(Refusal::BadSignature), "{bad}");
    }
}

#[test]
fn headers_are_checked_in_order_missing_then_stale_then_malformed() {
    let sig = format!("v0={}", "0".repeat(64));
    let now = NOW.to_string();
    assert_eq!(check_headers(None, Some(&sig), NOW), Err(Refusal::Unsigned));
    assert_eq!(check_headers(Some(&now), None, NOW), Err(Refusal::Unsigned));
    assert_eq!(
        check_headers(Some("1"), Some("garbage"), NOW),
        Err(Refusal::Stale)
    );
    assert_eq!(
        check_headers(Some(&now), Some("garbage"), NOW),
        Err(Refusal::BadSignature)
    );
    assert_eq!(check_headers(Some(&now), Some(&sig), NOW).unwrap().0, now);
}

#[test]
fn a_block_actions_payload_gives_the_user_button_and_thread() {
    let body = form(&click_payload("pause", &target().value()));
    let click = parse_click(&body).unwrap();
    assert_eq!(click.user_id, "U012ABCDEF");
    assert_eq!(click.team_id.as_deref(), Some("T0001"));
    assert_eq!(click.action_id, "pause");
    assert_eq!(click.value, target().value());
    assert_eq!(click.message_ts.as_deref(), Some("1795773600.000100"));
    assert_eq!(
        click.response_url,
        "https://hooks.slack.com/actions/T0001/1/abc"
    );
}

#[test]
fn payloads_that_are_not_one_button_click_are_refused() {
    let mut two = click_payload("pause", "x");
    let action = two["actions"][0].clone();
    two["actions"].as_array_mut().unwrap().push(action);
    let mut shortcut = click_payload("pause", "x");
    shortcut["type"] = "shortcut".into();
    let mut no_url = click_payload("pause", "x");
    no_url.as_object_mut().unwrap().remove("response_url");
    let mut select = click_payload("pause", "x");
    select["actions"][0]["type"] = "static_select".into();
    for (name, body) in [
        ("two actions", form(&two)),
        ("shortcut", form(&shortcut)),
        ("no response_url", form(&no_url)),
        ("a select", form(&select)),
        (
            "json body",
            click_payload("pause", "x").to_string().into_bytes(),
        ),
        ("bad escape", b"payload=%7".to_vec()),
        ("not json", b"payload=nope".to_vec()),
    ] {
        assert!(
            matches!(parse_click(&body), Err(Refusal::BadPayload(_))),
            "{name}"
        );
    }
}

#[test]
fn a_button_value_names_script_version_and_start_and_nothing_else_parses() {
    let value = target().value();
    assert_eq!(value, format!("mauntic-gateway:{VERSION}:1795773600000"));
    assert_eq!(ButtonTarget::parse(&value), Ok(target()));
    for bad in [
        "",
        "mauntic-gateway",
        &format!("mauntic-gateway:{VERSION}"),
        &format!("Bad Name:{VERSION}:1"),
        "mauntic-gateway:not-a-uuid:1",
        &format!("mauntic-gateway:{VERSION}:soon"),
        &format!("mauntic-gateway:{VERSION}:1:extra"),
    ] {
        assert!(ButtonTarget::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_four_action_ids_are_the_four_commands() {
    assert_eq!(command_of("pause"), Ok(Command::Pause));
    assert_eq!(command_of("resume"), Ok(Command::Resume));
    assert_eq!(command_of("promote"), Ok(Command::Promote));
    assert_eq!(command_of("abort"), Ok(Command::Abort));
    assert!(command_of("rollback").is_err());
}

#[test]
fn a_button_applies_only_to_the_running_rollout_it_was_made_for() {
    let t = target();
    assert_eq!(check_target(&t, VERSION, t.started_ms, false), Ok(()));
    for (version, started, terminal) in [
        (VERSION, t.started_ms, true),
        ("22222222-2222-4222-8222-222222222222", t.started_ms, false),
        (VERSION, t.started_ms + 60_000, false),
    ] {
        let refused = check_target(&t, version, started, terminal).unwrap_err();
        assert!(matches!(refused, Refusal::RolloutEnded(_)));
        assert_eq!(refused.to_api_error().code(), "rollout_ended");
    }
}

#[test]
fn the_allow_list_maps_user_ids_to_scopes() {
    let ops = Operators::parse(r#"{"U012ABCDEF":["operate","read"],"W0READER":["read"]}"#).unwrap();
    assert_eq!(ops.check("U012ABCDEF", Scope::Operate), Ok(()));
    assert_eq!(
        ops.check("W0READER", Scope::Operate),
        Err(Refusal::MissingScope {
            user: "W0READER".into(),
            scope: Scope::Operate
        })
    );
    assert_eq!(
        ops.check("U999", Scope::Operate),
        Err(Refusal::UnknownUser("U999".into()))
    );
    for bad in [
        r#"{"ana":["operate"]}"#,
        r#"{"u012":["operate"]}"#,
        r#"{"U012":[]}"#,
        r#"{"U012":["admin"]}"#,
        r#"["U012"]"#,
    ] {
        assert!(Operators::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn each_refusal_has_its_status_and_code() {
    let cases = [
        (Refusal::Unsigned, 401, "slack_unsigned"),
        (Refusal::Stale, 401, "slack_stale"),
        (Refusal::BadSignature, 401, "slack_bad_signature"),
        (Refusal::Replay, 409, "slack_replay"),
        (Refusal::BadPayload("x".into()), 400, "slack_bad_payload"),
        (Refusal::UnknownUser("U1".into()), 403, "slack_unknown_user"),
        (
            Refusal::MissingScope {
                user: "U1".into(),
                scope: Scope::Operate,
            },
            403,
            "missing_scope",
        ),
        (Refusal::RolloutEnded("x".into()), 409, "rollout_ended"),
    ];
    for (refusal, status, code) in cases {
        let err = refusal.to_api_error();
        assert_eq!((err.status(), err.code()), (status, code), "{refusal:?}");
    }
}

#[test]
fn the_buttons_are_an_actions_block_with_a_confirmed_danger_abort() {
    let block = serde_json::to_value(buttons(&target())).unwrap();
    assert_eq!(block["type"], "actions");
    assert_eq!(block["block_id"], BLOCK_ID);
    let elements = block["elements"].as_array().unwrap();
    let ids: Vec<&str> = elements
        .iter()
        .map(|e| e["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pause", "resume", "promote", "abort"]);
    for e in elements {
        assert_eq!(e["type"], "button");
        assert_eq!(e["text"]["type"], "plain_text");
        assert_eq!(e["value"], target().value());
    }
    let abort = &elements[3];
    assert_eq!(abort["style"], "danger");
    assert_eq!(abort["confirm"]["confirm"]["type"], "plain_text");
    assert_eq!(abort["confirm"]["style"], "danger");
    assert_eq!(elements[2]["style"], "primary");
    assert!(elements[0].get("style").is_none());
    // The block reads back (the outbox stores messages as JSON).
    let back: Block = serde_json::from_value(block).unwrap();
    assert_eq!(back, buttons(&target()));
}

#[test]
fn the_reply_goes_in_the_thread_and_names_the_slack_actor() {
    let click = parse_click(&form(&click_payload("pause", "x"))).unwrap();
    let text = outcome_text(&click, Some(Command::Pause), Ok("paused"));
    assert!(
        text.contains("slack:U012ABCDEF") && text.contains("paused"),
        "{text}"
    );
    let body = reply(&click, &text);
    assert_eq!(body["thread_ts"], "1795773600.000100");
    assert_eq!(body["replace_original"], false);
    assert_eq!(body["response_type"], "in_channel");
    let refused = outcome_text(&click, None, Err("not <allowed>"));
    assert!(
        refused.contains("refused: not &lt;allowed&gt;"),
        "{refused}"
    );
}

#[test]
fn a_request_is_new_once_and_forgotten_only_after_the_window() {
    let mut seen = SeenRequests::default();
    assert!(seen.first_time("a", NOW, NOW));
    assert!(
        !seen.first_time("a", NOW, NOW + 1),
        "the same request again"
    );
    assert!(seen.first_time("b", NOW, NOW + 1));
    // Still remembered when the window (either way) would still let it in.
    assert!(!seen.first_time("a", NOW, NOW + 2 * WINDOW_SECS));
    assert!(seen.first_time("a", NOW, NOW + REPLAY_MEMORY_SECS));
    assert_eq!(replay_key(&[0xab; 32]).len(), 64);
}

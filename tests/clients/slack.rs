//! Slack: exact payload JSON, Block Kit limits under abuse, the webhook request, and
//! classification of Slack's answers (bodies from the documented error list).

use crate::support::{fixture, NEW, OLD};
use rollout_gate::clients::http::Method;
use rollout_gate::clients::slack::*;

fn rolled_back() -> GateMessage {
    GateMessage {
        emoji: ":rotating_light:".into(),
        title: "Rolled back mauntic-gateway".into(),
        script: "mauntic-gateway".into(),
        environment: "production".into(),
        new_version: NEW.into(),
        stable_version: Some(OLD.into()),
        git_sha: Some("fda42e04c1b2".into()),
        body: "5xx on the new version is worse than on the stable one over the same minutes."
            .into(),
        facts: vec![
            ("Requests (new / stable)".into(), "1,204 / 10,873".into()),
            ("5xx rate (new / stable)".into(), "3.1% / 0.4%".into()),
            ("e-value".into(), "212 > 1/α = 100".into()),
        ],
        status_url: Some("https://gate.mauntic.example/".into()),
        dry_run: false,
    }
}

#[test]
fn gate_message_payload_is_exact() {
    let payload = rolled_back().to_message().to_payload().expect("json");
    let want = format!(
        concat!(
            r#"{{"text":":rotating_light: Rolled back mauntic-gateway: mauntic-gateway (production)","#,
            r#""blocks":["#,
            r#"{{"type":"header","text":{{"type":"plain_text","text":":rotating_light: Rolled back mauntic-gateway","emoji":true}}}},"#,
            r#"{{"type":"section","fields":["#,
            r#"{{"type":"mrkdwn","text":"*Script*\n`mauntic-gateway`"}},"#,
            r#"{{"type":"mrkdwn","text":"*Environment*\n`production`"}},"#,
            r#"{{"type":"mrkdwn","text":"*New version*\n`{new}`"}},"#,
            r#"{{"type":"mrkdwn","text":"*Stable version*\n`{old}`"}},"#,
            r#"{{"type":"mrkdwn","text":"*Git sha*\n`fda42e04c1b2`"}}]}},"#,
            r#"{{"type":"section","text":{{"type":"mrkdwn","text":"5xx on the new version is worse than on the stable one over the same minutes.\n"#,
            r#"• *Requests (new / stable):* 1,204 / 10,873\n"#,
            r#"• *5xx rate (new / stable):* 3.1% / 0.4%\n"#,
            r#"• *e-value:* 212 &gt; 1/α = 100"}}}},"#,
            r#"{{"type":"context","elements":[{{"type":"mrkdwn","text":"<https://gate.mauntic.example/|Status page> · Tail: `wrangler tail mauntic-gateway`"}}]}}"#,
            r#"]}}"#
        ),
        new = NEW,
        old = OLD
    );
    assert_eq!(payload, want);
}

#[test]
fn dry_run_is_marked_and_optional_parts_drop_out() {
    let message = GateMessage {
        emoji: ":test_tube:".into(),
        title: "Would advance to 50%".into(),
        script: "tenant-cache".into(),
        environment: "preview".into(),
        new_version: NEW.into(),
        dry_run: true,
        ..GateMessage::default()
    }
    .to_message();
    let want = format!(
        concat!(
            r#"{{"text":":test_tube: [dry run] Would advance to 50%: tenant-cache (preview)","blocks":["#,
            r#"{{"type":"header","text":{{"type":"plain_text","text":":test_tube: [dry run] Would advance to 50%","emoji":true}}}},"#,
            r#"{{"type":"section","fields":[{{"type":"mrkdwn","text":"*Script*\n`tenant-cache`"}},"#,
            r#"{{"type":"mrkdwn","text":"*Environment*\n`preview`"}},"#,
            r#"{{"type":"mrkdwn","text":"*New version*\n`{new}`"}}]}},"#,
            r#"{{"type":"context","elements":[{{"type":"mrkdwn","text":"Tail: `wrangler tail tenant-cache`"}}]}}]}}"#
        ),
        new = NEW
    );
    assert_eq!(message.to_payload().expect("json"), want);
}

#[test]
fn tail_command_opens_the_worker_named_with_no_env_suffix_added() {
    // `wrangler tail <name> --env <env>` tails `<name>-<env>` (workers-sdk
    // getLegacyScriptName.ts); the script is already the full Worker name.
    let message = GateMessage {
        script: "mauntic-gateway-production".into(),
        environment: "production".into(),
        ..GateMessage::default()
    };
    assert_eq!(
        message.tail_command(),
        "wrangler tail mauntic-gateway-production"
    );
}

#[test]
fn user_text_cannot_inject_links_or_mentions() {
    let mut msg = rolled_back();
    msg.facts = vec![("<!channel>".into(), "<https://evil|click>".into())];
    msg.status_url = Some("https://x/|<evil>".into());
    let payload = msg.to_message().to_payload().expect("json");
    assert!(!payload.contains("<!channel>"), "{payload}");
    assert!(!payload.contains("<https://evil"), "{payload}");
    assert!(
        payload.contains("Status page: https://x/|&lt;evil&gt;"),
        "{payload}"
    );
}

#[test]
fn builder_payload_is_exact() {
    let payload = SlackMessage::new("Queue depth high")
        .header(":warning: Queue depth")
        .section("*mauntic-events* depth 12,400 > 10,000")
        .divider()
        .context(vec!["since 10:04 UTC".into()])
        .to_payload()
        .expect("json");
    assert_eq!(
        payload,
        concat!(
            r#"{"text":"Queue depth high","blocks":["#,
            r#"{"type":"header","text":{"type":"plain_text","text":":warning: Queue depth","emoji":true}},"#,
            r#"{"type":"section","text":{"type":"mrkdwn","text":"*mauntic-events* depth 12,400 > 10,000"}},"#,
            r#"{"type":"divider"},"#,
            r#"{"type":"context","elements":[{"type":"mrkdwn","text":"since 10:04 UTC"}]}]}"#
        )
    );
}

/// Checks every limit the stand-in Slack enforces.
fn assert_within_limits(message: &SlackMessage) {
    assert!(message.blocks.len() <= limits::BLOCKS);
    assert!(!message.text.trim().is_empty());
    assert!(message.text.chars().count() <= limits::TOTAL_TEXT);
    let mut total = 0;
    let mut text_ok = |t: &Text, max: usize| {
        let s = match t {
            Text::PlainText { text, .. } | Text::Mrkdwn { text } => text,
        };
        let n = s.chars().count();
        assert!(n >= 1 && n <= max, "{n} > {max}");
        total += n;
    };
    for block in &message.blocks {
        match block {
            Block::Header { text } => {
                assert!(matches!(text, Text::PlainText { .. }));
                text_ok(text, limits::HEADER_TEXT);
            }
            Block::Section { text, fields } => {
                assert!(text.is_some() || !fields.is_empty());
                assert!(fields.len() <= limits::FIELDS);
                if let Some(t) = text {
                    text_ok(t, limits::SECTION_TEXT);
                }
                for f in fields {
                    text_ok(f, limits::FIELD_TEXT);
                }
            }
            Block::Context { elements } => {
                assert!(!elements.is_empty() && elements.len() <= limits::CONTEXT_ELEMENTS);
                for e in elements {
                    text_ok(e, limits::CONTEXT_TEXT);
                }
            }
            Block::Divider => {}
            Block::Actions { elements, .. } => {
                assert!(!elements.is_empty() && elements.len() <= limits::ACTION_ELEMENTS);
                for b in elements {
                    assert!(matches!(b.text, Text::PlainText { .. }));
                    text_ok(&b.text, limits::BUTTON_TEXT);
                    assert!(b.action_id.len() <= limits::ACTION_ID);
                    assert!(b.value.chars().count() <= limits::BUTTON_VALUE);
                }
            }
        }
    }
    assert!(total <= limits::TOTAL_TEXT, "total {total}");
}

#[test]
fn oversized_messages_are_cut_not_refused() {
    let huge = "é".repeat(5_000);
    let mut message = SlackMessage::new("x".repeat(50_000))
        .header(format!(":fire: {huge}"))
        .fields((0..14).map(|i| format!("field {i} {huge}")).collect())
        .context((0..12).map(|i| format!("ctx {i}")).collect());
    for i in 0..60 {
        message = message.section(format!("section {i} {huge}"));
    }
    let fitted = message.fitted();
    assert_within_limits(&fitted);
    // Header 150 + fields ~18k + context, then 3,000-char sections until the 40,000-char
    // budget runs out (the 8th is cut short); the other 52 are named in a closing note.
    assert_eq!(fitted.blocks.len(), 12);
    assert_eq!(
        fitted.blocks.last(),
        Some(&Block::Context {
            elements: vec![Text::mrkdwn("_… 52 more blocks left out_")]
        })
    );
    match &fitted.blocks[1] {
        Block::Section { fields, .. } => {
            assert_eq!(fields.len(), 10);
            assert_eq!(fields[9], Text::mrkdwn("_… 5 more left out_"));
            assert!(fields[0].clone() != Text::mrkdwn(""));
        }
        other => panic!("unexpected {other:?}"),
    }
    match &fitted.blocks[0] {
        Block::Header {
            text: Text::PlainText { text, .. },
        } => {
            assert_eq!(text.chars().count(), limits::HEADER_TEXT);
            assert!(text.ends_with('…'));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The payload still serializes and re-parses as the same message.
    let payload = message.to_payload().expect("json");
    let back: SlackMessage = serde_json::from_str(&payload).expect("parse");
    assert_eq!(back, fitted);
}

#[test]
fn too_many_blocks_end_with_a_note() {
    let mut message = SlackMessage::new("many");
    for i in 0..70 {
        message = message.section(format!("s{i}"));
    }
    let fitted = message.fitted();
    assert_within_limits(&fitted);
    assert_eq!(
        fitted.blocks.last(),
        Some(&Block::Context {
            elements: vec![Text::mrkdwn("_… 21 more blocks left out_")]
        })
    );
}

#[test]
fn webhook_request_is_exact() {
    let url = "https://hooks.slack.com/services/T000/B000/XXXXXXXX";
    let message = SlackMessage::new("hello");
    let req = build_webhook_request(url, &message).expect("valid");
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url, url);
    assert_eq!(
        req.headers,
        vec![("Content-Type".to_string(), "application/json".to_string())]
    );
    assert_eq!(req.body.as_deref(), Some(r#"{"text":"hello"}"#));
    assert!(!format!("{req:?}").contains("XXXXXXXX"));
}

#[test]
fn slack_answers_classify() {
    let body = |name: &str| fixture(&format!("slack/{name}"));
    let dead = |code: &str| SlackOutcome::DeadWebhook { code: code.into() };
    let rejected = |code: &str| SlackOutcome::Rejected { code: code.into() };
    let cases = vec![
        (200, body("ok.txt"), None, SlackOutcome::Delivered),
        (
            400,
            body("invalid_payload.txt"),
            None,
            rejected("invalid_payload"),
        ),
        (
            400,
            body("invalid_blocks.txt"),
            None,
            rejected("invalid_blocks"),
        ),
        (
            400,
            body("missing_text_or_fallback_or_attachments.txt"),
            None,
            rejected("missing_text_or_fallback_or_attachments"),
        ),
        (403, body("invalid_token.txt"), None, dead("invalid_token")),
        (
            403,
            body("action_prohibited.txt"),
            None,
            dead("action_prohibited"),
        ),
        (
            404,
            body("channel_not_found.txt"),
            None,
            dead("channel_not_found"),
        ),
        (404, body("no_service.txt"), None, dead("no_service")),
        (
            410,
            body("channel_is_archived.txt"),
            None,
            dead("channel_is_archived"),
        ),
        (
            500,
            body("rollup_error.txt"),
            None,
            SlackOutcome::Transient { status: Some(500) },
        ),
        (
            502,
            body("proxy_502.html"),
            None,
            SlackOutcome::Transient { status: Some(502) },
        ),
        (
            429,
            String::new(),
            Some("4"),
            SlackOutcome::RetryAfter { secs: 4 },
        ),
        (
            429,
            String::new(),
            None,
            SlackOutcome::RetryAfter { secs: 1 },
        ),
    ];
    for (status, text, retry_after, want) in cases {
        assert_eq!(
            classify_response(status, &text, retry_after),
            want,
            "{status} {text}"
        );
    }
}

//! The rollout's JSON: stored state round-trips, and a tick input and a live read parse.

use super::*;

#[test]
fn state_round_trips_through_json() {
    let (s, _) = run(ramping(), 1..=4, HEALTHY);
    let json = serde_json::to_string(&s).expect("serializes");
    let back: RolloutState = serde_json::from_str(&json).expect("parses");
    // Floats may move by an ulp through serde_json; the decisions' inputs must not.
    assert_eq!(back.phase, s.phase);
    assert_eq!(back.deployment, s.deployment);
    assert_eq!(back.clock, s.clock);
    assert_eq!(back.signals.next_minute, s.signals.next_minute);
    assert_eq!(back.signals.step_totals, s.signals.step_totals);
}

#[test]
fn tick_input_parses_from_json() {
    let json = r#"{
        "input": "tick",
        "deployment": {"status": "ok", "value": {"versions": [{"version_id": "old", "percent": 100}]}},
        "healthz": {"result": "failed", "status": 503, "error": null},
        "counts": {"status": "failed", "value": {"why": "SQL timeout"}},
        "queue": null
    }"#;
    let input: Input = serde_json::from_str(json).expect("parses");
    let Input::Tick(obs) = input else {
        panic!("not a tick")
    };
    assert!(matches!(obs.counts, Some(Fetched::Failed { .. })));
    assert!(matches!(
        obs.healthz,
        Some(Probe::Failed {
            status: Some(503),
            ..
        })
    ));
}

#[test]
fn live_read_input_parses_from_json() {
    let json = r#"{"input": "live_read", "status": "ok",
        "value": {"versions": [{"version_id": "old", "percent": 100}]}}"#;
    let input: Input = serde_json::from_str(json).expect("parses");
    let want = LiveDeployment {
        versions: vec![stable()],
        ..LiveDeployment::default()
    };
    assert_eq!(input, Input::LiveRead(Fetched::Ok(want)));
    let failed = Input::LiveRead(Fetched::Failed { why: "502".into() });
    let text = serde_json::to_string(&failed).expect("encodes");
    assert_eq!(
        serde_json::from_str::<Input>(&text).expect("parses"),
        failed
    );
}

#[test]
fn an_event_kind_tag_is_the_kind_serde_writes() {
    let kinds = [
        (EventKind::Started, "started"),
        (
            EventKind::StepStarted {
                step: 1,
                percent: 25.0,
            },
            "step_started",
        ),
        (EventKind::Holding { step: 0 }, "holding"),
        (EventKind::RolledBack, "rolled_back"),
        (EventKind::Tick, "tick"),
    ];
    for (kind, tag) in kinds {
        assert_eq!(kind.tag(), tag);
        let written = serde_json::to_string(&kind).expect("serializes");
        assert!(
            written.starts_with(&format!(r#"{{"kind":"{tag}""#)),
            "{written}"
        );
    }
}

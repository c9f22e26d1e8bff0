//! Start and pre-flight: the start is announced once, a failed pre-flight refuses, an
//! undecided one retries then pauses, and a passed one writes the first split.

use super::*;

#[test]
fn start_announces_once_and_asks_for_preflight() {
    let (s, actions) = started(Policy::default());
    assert_eq!(s.phase, Phase::Preflight);
    assert_eq!(notices(&actions).len(), 1);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::RunPreflight { .. })));
    let (_, again) = step(s, Input::Start, T0);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn preflight_failure_refuses_without_moving_traffic() {
    let fail = Check::Fail {
        reason: "bad".into(),
    };
    let cases: Vec<(&str, PreflightReport)> = vec![
        (
            "version",
            PreflightReport {
                version_exists: fail.clone(),
                ..report()
            },
        ),
        (
            "healthz",
            PreflightReport {
                healthz: fail.clone(),
                ..report()
            },
        ),
        (
            "asset",
            PreflightReport {
                asset: fail.clone(),
                ..report()
            },
        ),
        (
            "bindings",
            PreflightReport {
                bindings: fail.clone(),
                ..report()
            },
        ),
    ];
    for (name, r) in cases {
        let (s, _) = started(Policy::default());
        let (s, actions) = step(s, Input::Preflight(r), T0);
        assert!(
            matches!(&s.phase, Phase::Failed { reasons } if reasons[0].starts_with(name)),
            "{name}: {:?}",
            s.phase
        );
        assert!(writes(&actions).is_empty(), "{name}");
        assert_eq!(notices(&actions).len(), 1, "{name}");
    }
}

#[test]
fn preflight_undecided_retries_then_pauses() {
    let unknown = PreflightReport {
        version_exists: Check::Unknown {
            why: "API 503".into(),
        },
        ..report()
    };
    let (mut s, _) = started(Policy::default());
    for m in 0..10 {
        let (next, actions) = step(s, Input::Preflight(unknown.clone()), at(m));
        assert_eq!(next.phase, Phase::Preflight, "minute {m}");
        assert!(notices(&actions).is_empty());
        s = next;
    }
    let (s, actions) = step(s, Input::Preflight(unknown), at(10));
    assert!(matches!(
        s.phase,
        Phase::Paused {
            at: Stage::Preflight,
            reason: PauseReason::PreflightUndecided { .. },
            resumable: true
        }
    ));
    assert_eq!(notices(&actions).len(), 1);
    assert!(plan(&s, at(11)).counts.is_none());
}

#[test]
fn preflight_pass_writes_the_first_split_with_a_gate_message() {
    let (s, actions) = first_split_written(Policy::default());
    assert_eq!(s.phase, Phase::Ramping { step: 0 });
    let read_first = actions
        .iter()
        .position(|a| matches!(a, Action::ReadDeployment { .. }));
    let write_at = actions
        .iter()
        .position(|a| matches!(a, Action::SetDeployment { .. }));
    assert!(read_first < write_at, "read, then write: {actions:?}");
    let ws = writes(&actions);
    assert_eq!(ws.len(), 1);
    assert_eq!(percents(&ws[0].1), vec![("new", 10.0), ("old", 90.0)]);
    let message = actions.iter().find_map(|a| match a {
        Action::SetDeployment { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(message.as_deref(), Some("rollout-gate: new step 1/3 (10%)"));
    assert!(
        s.clock.live_since.is_none(),
        "only intended until confirmed"
    );
}

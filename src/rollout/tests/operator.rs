//! Operator commands: each applies only in its phases; promote skips the wait, abort in
//! pre-flight stops without a write.

use super::*;

#[test]
fn operator_commands_apply_only_in_their_phases() {
    let ramp = ramping();
    let paused = step(ramp.clone(), operator(Command::Pause, "a", None), at(1)).0;
    let failed = {
        let (s, _) = started(Policy::default());
        let fail = PreflightReport {
            asset: Check::Fail {
                reason: "missing".into(),
            },
            ..report()
        };
        step(s, Input::Preflight(fail), T0).0
    };
    let preflight = started(Policy::default()).0;
    let cases = [
        (&preflight, [true, false, false, true]),
        (&ramp, [true, false, true, true]),
        (&paused, [false, true, true, true]),
        (&failed, [false, false, false, false]),
    ];
    let commands = [
        Command::Pause,
        Command::Resume,
        Command::Promote,
        Command::Abort,
    ];
    for (state, allowed) in cases {
        for (command, ok) in commands.iter().zip(allowed) {
            assert_eq!(
                check_command(state, *command).is_ok(),
                ok,
                "{command} when {}",
                state.phase.name()
            );
        }
    }
    // A refused command changes nothing.
    let (same, actions) = step(failed.clone(), operator(Command::Abort, "a", None), at(1));
    assert_eq!((same, actions.len()), (failed, 0));
}

#[test]
fn operator_promote_skips_the_wait() {
    let (s, actions) = step(
        ramping(),
        operator(Command::Promote, "lead", Some("hotfix")),
        at(1),
    );
    assert_eq!(s.phase, Phase::Ramping { step: 1 });
    assert!(writes(&actions).is_empty(), "not before a fresh read");
    let (_, written) = confirm(s, &actions, at(1));
    assert_eq!(
        percents(&writes(&written)[0].1),
        vec![("new", 50.0), ("old", 50.0)]
    );
    assert!(notices(&actions)
        .iter()
        .any(|n| n.kind == EventKind::Promoted && n.headline.contains("hotfix")));
}

#[test]
fn abort_in_preflight_stops_without_a_write() {
    let (s, _) = started(Policy::default());
    let (s, actions) = step(s, operator(Command::Abort, "a", None), T0);
    assert!(matches!(s.phase, Phase::Aborted { .. }));
    assert!(writes(&actions).is_empty());
}

//! The gate's own telemetry: each audit event as one Analytics Engine data point in the
//! gate's dataset (`GATE_EVENTS`), so a team can measure its gate over time. Pure layout;
//! the runtime writes it. Queries over it are in docs/telemetry.md.

use crate::rollout::{AuditEvent, Decision};
use serde::Serialize;

/// One data point: index = script, then blobs and doubles in a documented order.
///
/// | column | value |
/// | --- | --- |
/// | index1 | script |
/// | blob1 | environment |
/// | blob2 | script |
/// | blob3 | new version id |
/// | blob4 | event kind (`tick`, `rolled_back`, `completed`, ...) |
/// | blob5 | phase after the event |
/// | blob6 | decision (`advance`, `hold`, `roll_back`, `pause`, `complete`, `wait`, or empty) |
/// | blob7 | `dry_run` or empty |
/// | double1 | 5xx e-value (0 when not assessed) |
/// | double2 | slow-request e-value (0 when not assessed) |
/// | double3 | new-version requests counted so far by the 5xx test |
/// | double4 | new-version 5xx counted so far |
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecisionPoint {
    pub index: String,
    pub blobs: Vec<String>,
    pub doubles: Vec<f64>,
}

/// The data point for one audit event.
pub fn decision_point(environment: &str, event: &AuditEvent) -> DecisionPoint {
    let kind = event.kind.tag();
    let phase = event.phase.tag().to_string();
    let decision = match &event.decision {
        Some(Decision::Advance { .. }) => "advance",
        Some(Decision::Complete) => "complete",
        Some(Decision::Hold { .. }) => "hold",
        Some(Decision::RollBack { .. }) => "roll_back",
        Some(Decision::Pause { .. }) => "pause",
        Some(Decision::Wait { .. }) => "wait",
        None => "",
    };
    let finite = |x: f64| if x.is_finite() { x } else { f64::MAX };
    let tests = event.assessment.as_ref();
    let errors = tests.and_then(|a| a.errors_test.as_ref());
    let slow = tests.and_then(|a| a.slow_test.as_ref());
    DecisionPoint {
        index: event.script.clone(),
        blobs: vec![
            environment.to_string(),
            event.script.clone(),
            event.version_id.clone(),
            kind,
            phase,
            decision.to_string(),
            if event.dry_run {
                "dry_run".into()
            } else {
                String::new()
            },
        ],
        doubles: vec![
            errors.map_or(0.0, |t| finite(t.e_value)),
            slow.map_or(0.0, |t| finite(t.e_value)),
            errors.map_or(0.0, |t| t.new_total),
            errors.map_or(0.0, |t| t.new_bad),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{EventKind, Phase};
    use crate::time::Timestamp;

    fn event(kind: EventKind, phase: Phase, decision: Option<Decision>) -> AuditEvent {
        AuditEvent {
            at: Timestamp::from_millis(0),
            script: "mauntic-gateway".into(),
            version_id: "11111111-1111-4111-8111-111111111111".into(),
            dry_run: false,
            kind,
            phase,
            summary: String::new(),
            details: Vec::new(),
            assessment: None,
            facts: None,
            decision,
        }
    }

    #[test]
    fn a_tick_is_one_point_keyed_by_script_with_kind_phase_and_decision() {
        let e = event(
            EventKind::Tick,
            Phase::Ramping { step: 0 },
            Some(Decision::Complete),
        );
        let point = decision_point("production", &e);
        assert_eq!(point.index, "mauntic-gateway");
        assert_eq!(
            point.blobs,
            [
                "production",
                "mauntic-gateway",
                "11111111-1111-4111-8111-111111111111",
                "tick",
                "ramping",
                "complete",
                ""
            ]
        );
        assert_eq!(point.doubles, [0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn a_transition_without_a_decision_leaves_the_decision_blank() {
        let point = decision_point(
            "preview",
            &event(EventKind::Completed, Phase::Completed, None),
        );
        assert_eq!(point.blobs[3], "completed");
        assert_eq!(point.blobs[4], "completed");
        assert_eq!(point.blobs[5], "");
    }
}

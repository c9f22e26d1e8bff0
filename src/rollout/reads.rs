//! When the core reads the live deployment: every minute while anything can change, once
//! every `DRIFT_READ_MINUTES` on a quiet rollout, and always in the same step before a write.

use super::{Action, Input, PendingWrite, Phase, RolloutState, Stage};
use crate::observe::Fetched;
use crate::time::Timestamp;

/// Minutes between reads of the live deployment on a quiet rollout (live, its step
/// confirmed, no write pending): the longest a human's change to the deployment goes
/// unnoticed there. While anything is in flight the read is every minute. Issue 19: read
/// every minute, 200 rollouts spent 1,000 of the account's 1,200 API requests per 5 minutes
/// (platform reference §0.16) on reads alone; one read in five spends 200.
pub const DRIFT_READ_MINUTES: i64 = 5;

/// Whether the step being applied read the live deployment: a tick's read, or an
/// `Input::LiveRead`. `step` sets it from its input and clears it before returning, so it is
/// never stored (and never seen outside `step`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum StepRead {
    /// This step read nothing.
    #[default]
    None,
    /// This step read the live deployment.
    Ok,
    /// This step tried, and the read failed.
    Failed,
}

impl StepRead {
    /// What `input` says about this step's read.
    pub(super) fn of(input: &Input) -> Self {
        let read = match input {
            Input::Tick(obs) => obs.deployment.as_ref(),
            Input::LiveRead(read) => Some(read),
            _ => None,
        };
        match read {
            None => StepRead::None,
            Some(Fetched::Ok(_)) => StepRead::Ok,
            Some(Fetched::Failed { .. }) => StepRead::Failed,
        }
    }
}

/// Whether `plan` reads the live deployment at `now`: every minute while anything can
/// change (pre-flight, a rollback, drift, a write pending, the current step not yet confirmed
/// live), otherwise at the quiet rollout's read minutes (`drift_read_due`). So drift is
/// noticed within 1 minute while anything is in flight and within `DRIFT_READ_MINUTES` on a
/// quiet rollout (a cron tick skipped on a read minute waits for the next one).
pub(super) fn reads_deployment(state: &RolloutState, now: Timestamp) -> bool {
    let in_flight = matches!(
        state.phase,
        Phase::Preflight | Phase::RollingBack { .. } | Phase::Drifted { .. }
    ) || state.phase.stage() == Some(Stage::Preflight)
        || state.deployment.pending.is_some()
        || state.clock.live_since.is_none();
    in_flight || drift_read_due(&state.script, now)
}

/// A quiet rollout's read minutes: one minute in every `DRIFT_READ_MINUTES`, offset by a
/// stable hash of the script name, so that many rollouts spread their reads over the
/// minutes, and a rollout reads at the same minutes whether it runs alone or among 200.
/// Deterministic: no clock but `now`, no randomness, nothing stored.
pub fn drift_read_due(script: &str, now: Timestamp) -> bool {
    let offset = (fnv1a(script.as_bytes()) % DRIFT_READ_MINUTES as u64) as i64;
    (now.minute_index() + offset).rem_euclid(DRIFT_READ_MINUTES) == 0
}

/// FNV-1a, 64-bit: stable across Rust releases and platforms, unlike `DefaultHasher`, whose
/// output std does not promise to keep.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Sends pending write `w` (just asked for, or due again), but only right after a read of
/// the live deployment in the same step. Cloudflare's deployments API has no compare-and-
/// swap: a create carries no precondition on what is live (no source found for one; platform
/// reference §1 lists only `?force=true`), and replaces the whole deployment, cohorts it does
/// not name included. The fresh read just before the write is the only guard against
/// overwriting a human's change (the gate never fights a human, nor erases cohorts), so:
/// - the step read the deployment: `SetDeployment`, as before;
/// - it did not (a rollback decided on evidence in a tick without a read, an advance at a
///   dwell's end, an operator's promote, abort or resume, a forced re-send): `ReadDeployment`
///   instead, the write kept pending and due; `Input::LiveRead` sends it if still wanted;
/// - its read failed: the write stays pending and due, and the next tick (which reads,
///   since a write is pending) sends it.
pub(super) fn send(s: &mut RolloutState, w: PendingWrite, now: Timestamp, out: &mut Vec<Action>) {
    match s.deployment.step_read {
        StepRead::Ok => {
            out.push(Action::WakeAt(w.next_attempt_at));
            out.push(set_deployment(&w));
        }
        StepRead::None => {
            s.deployment.hold_for_read(now);
            out.push(Action::ReadDeployment { write: w.write });
        }
        StepRead::Failed => s.deployment.hold_for_read(now),
    }
}

/// The `SetDeployment` action for a pending write (only `send` makes one).
fn set_deployment(w: &PendingWrite) -> Action {
    Action::SetDeployment {
        write: w.write,
        split: w.split.clone(),
        message: w.message.clone(),
        force: w.force,
    }
}

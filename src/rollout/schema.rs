//! Stored rollouts across gate releases: the schema version of the stored form, and the one
//! place that decides what another version means: a migration step per version where the
//! change carries over, and a pause for an operator where the evidence does not.
//!
//! Version 0 is a rollout stored before versions existed (no `schema` field), by the release
//! at 4c8fa47 or an earlier one. Version 1 is 4c8fa47's form with `schema: 1`; step 0 → 1
//! fills the fields that earlier releases lacked (`v0`). Version 2 has one kind of look;
//! step 1 → 2 rewrites the three look types as it (`v1`). Version 3 adds the onset looks;
//! step 2 → 3 leaves them unfunded in rollouts started before them and stores the split
//! tests' rows as arrays (`v2`). Version 4's looks fold the minutes they have looked at into
//! a stored distribution and its e-processes keep their bound; step 3 → 4 rewrites nothing,
//! and version 3 gates pause on version 4's rollouts (`v3`).

mod v0;
mod v1;
mod v2;
mod v3;

use super::transitions::pause;
use super::{Action, AuditEvent, PauseReason, Phase, RolloutState, Stage};
use crate::clients::cloudflare::ApiBudget;
use crate::controller::{StoredRollout, API_CALLS_PER_5_MIN};
use crate::json::{from_value, to_value};
use crate::policy::{Policy, QueueThresholds};
use crate::signals::SignalState;
use crate::time::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The stored form this gate writes.
pub const CURRENT: u32 = 4;

/// The oldest version the steps migrate from. A change no step can carry over (evidence
/// whose meaning changed) raises it to the version that change makes, and rollouts stored
/// before it then pause like those from a newer gate.
const MIGRATES_FROM: u32 = 0;

/// `STEPS[i]` turns version `MIGRATES_FROM + i` into the next one, in place.
const STEPS: [fn(&mut Value); (CURRENT - MIGRATES_FROM) as usize] = [
    // 0 → 1: the fields added before schema versions existed.
    v0::fill_fields_added_before_versions,
    // 1 → 2: one kind of look.
    v1::looks_become_one_kind,
    // 2 → 3: the onset looks, unfunded in rollouts started before them; the split tests'
    // rows as arrays.
    v2::onset_looks_and_rows_as_arrays,
    // 3 → 4: the looks fold what they have looked at; the e-processes keep their bound.
    v3::looks_fold_what_they_looked_at,
];

/// Why a stored rollout (or audit row) could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The text is not JSON.
    #[error("stored rollout is not JSON: {0}")]
    NotJson(String),
    /// `schema` is not a version number.
    #[error("stored rollout has schema {0}, not a version number")]
    NotAVersion(String),
    /// The migrated rollout does not decode; from a version this gate cannot carry on from,
    /// even what a pause needs (identity, schedule, policy, phase, deployment, clock) does not.
    #[error(
        "stored rollout of schema {schema} (this gate writes {CURRENT}) does not decode: {why}"
    )]
    Undecodable { schema: u32, why: String },
}

/// Reads a stored rollout. A version from `MIGRATES_FROM` to `CURRENT` goes through each step
/// after it; any other keeps what a pause needs, with its evidence set aside, and comes back
/// marked `upgraded_from` (the controller then steps `Input::GateUpgraded` before anything
/// else).
///
/// # Errors
/// The text is not JSON, its `schema` is not a number, or the migrated rollout (from another
/// version: what a pause needs) does not decode.
pub fn decode(text: &str) -> Result<StoredRollout, SchemaError> {
    let stored = serde_json::from_str(text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
    decode_value(stored)
}

/// `decode` of an already parsed value.
///
/// # Errors
/// As `decode`.
pub fn decode_value(mut stored: Value) -> Result<StoredRollout, SchemaError> {
    let schema = match stored.get("schema") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| SchemaError::NotAVersion(v.to_string()))?,
    };
    if !(MIGRATES_FROM..=CURRENT).contains(&schema) {
        return set_evidence_aside(&stored, schema);
    }
    upgrade(&mut stored, schema);
    from_value(&stored).map_err(|e| undecodable(schema, e))
}

/// Applies every step after `schema` (from `MIGRATES_FROM` to `CURRENT`) to a stored
/// rollout, which then reads as `CURRENT`'s form.
pub fn upgrade(stored: &mut Value, schema: u32) {
    let from = schema.clamp(MIGRATES_FROM, CURRENT);
    for step in &STEPS[(from - MIGRATES_FROM) as usize..] {
        step(stored);
    }
    if let Some(fields) = stored.as_object_mut() {
        fields.insert("schema".into(), CURRENT.into());
    }
}

/// Reads one audit-log row. Rows carry no version: each is kept as it was written, the
/// fields added before versions existed are filled in (a no-op on every later row), and an
/// assessment with one field per look (version 1's) gets its looks keyed by budget row.
///
/// # Errors
/// The row is not JSON or does not decode.
pub fn decode_event(text: &str) -> Result<AuditEvent, SchemaError> {
    let mut event = serde_json::from_str(text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
    v0::fill_event_fields_added_before_versions(&mut event);
    v1::event_looks_become_one_kind(&mut event);
    from_value(&event).map_err(|e| undecodable(0, e))
}

fn undecodable(schema: u32, err: impl std::fmt::Display) -> SchemaError {
    SchemaError::Undecodable {
        schema,
        why: err.to_string(),
    }
}

/// A rollout from a version this gate cannot carry on from: what a pause needs, as this gate
/// reads it, the stored policy's knobs this gate knows, and fresh evidence in place of the
/// stored one (the pause restarts it at its own `now`). The outbox and the API budget are
/// kept when they read and start empty when they do not.
fn set_evidence_aside(stored: &Value, schema: u32) -> Result<StoredRollout, SchemaError> {
    let mut state = stored.get("state").cloned().unwrap_or(Value::Null);
    let policy = known_knobs(state.get("policy").unwrap_or(&Value::Null))
        .map_err(|e| undecodable(schema, format!("policy: {e}")))?;
    let started_at: Timestamp = read(&state, "started_at")
        .ok_or_else(|| undecodable(schema, "no started_at in its state"))?;
    let Some(fields) = state.as_object_mut() else {
        return Err(undecodable(schema, "no state"));
    };
    let evidence = SignalState::new(&policy, started_at);
    fields.insert("policy".into(), json(&policy));
    fields.insert("signals".into(), json(&evidence));
    fields.insert("last_assessment".into(), Value::Null);
    fields.insert("last_decision".into(), Value::Null);
    let state: RolloutState = from_value(&state).map_err(|e| undecodable(schema, e))?;
    Ok(StoredRollout {
        schema: CURRENT,
        last_now: read(stored, "last_now").unwrap_or(state.started_at),
        outbox: read(stored, "outbox").unwrap_or_default(),
        budget: read(stored, "budget").unwrap_or_else(|| ApiBudget::new(API_CALLS_PER_5_MIN)),
        upgraded_from: Some(schema),
        state,
    })
}

/// `object[key]` as a `T`, if it is there and reads as one.
fn read<T: DeserializeOwned>(object: &Value, key: &str) -> Option<T> {
    object.get(key).and_then(|v| from_value(v).ok())
}

fn json(value: &impl serde::Serialize) -> Value {
    to_value(value).expect("a policy and fresh evidence encode")
}

/// The stored policy with only the knobs this gate knows: a newer gate's knobs are dropped
/// (`Policy` refuses unknown fields), and each knob it lacks takes this gate's default.
fn known_knobs(stored: &Value) -> Result<Policy, serde_json::Error> {
    let every_knob = Policy {
        queue: Some(QueueThresholds::default()),
        ..Policy::default()
    };
    from_value(&keep_known(stored, &json(&every_knob)))
}

fn keep_known(stored: &Value, known: &Value) -> Value {
    match (stored, known) {
        (Value::Object(stored), Value::Object(known)) => Value::Object(
            stored
                .iter()
                .filter_map(|(k, v)| known.get(k).map(|known| (k.clone(), keep_known(v, known))))
                .collect(),
        ),
        _ => stored.clone(),
    }
}

/// `Input::GateUpgraded`: the rollout was stored in a schema this gate cannot carry on from,
/// so its evidence was set aside. The evidence restarts now, and a rollout with traffic on
/// the new version pauses at its stage until an operator resumes (on the fresh evidence) or
/// aborts. Pre-flight (nothing counted yet), a rollback (the safe direction) and drift
/// (already waiting for an operator) go on as they were.
pub(super) fn on_gate_upgraded(
    s: &mut RolloutState,
    stored_schema: u32,
    now: Timestamp,
    out: &mut Vec<Action>,
) {
    if s.phase.is_terminal() {
        return;
    }
    s.signals = SignalState::new(&s.policy, now);
    s.last_assessment = None;
    s.last_decision = None;
    let (at, resumable) = match &s.phase {
        Phase::Ramping { step } => (Stage::Ramping { step: *step }, true),
        Phase::Baking => (Stage::Baking, true),
        Phase::Paused { at, resumable, .. } if *at != Stage::Preflight => (*at, *resumable),
        _ => return,
    };
    s.signals.start_counting(now);
    if at == Stage::Baking && s.clock.live_since.is_some() {
        let horizon = s.schedule.steps().last().map_or(0, |step| step.max_minutes);
        s.signals.begin_bake(now, horizon);
    }
    let reason = PauseReason::GateUpgraded {
        stored_schema,
        schema: CURRENT,
    };
    pause(s, at, reason, resumable, now, out);
}

#[cfg(test)]
mod tests;

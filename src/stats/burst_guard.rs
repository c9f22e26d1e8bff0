//! The burst guard of both e-processes: a minute with many bad events may raise a likelihood
//! ratio by at most ×10.

/// Burst guard: a minute with at least this many bad events (both versions during a split,
/// the new version's in the bake) may raise each alternative's likelihood ratio by at most
/// `BURST_CLIP_LOG`. A burst that wobbles one version's rate by a third for a minute is
/// "overwhelming evidence" at thousands of events; clipped, it takes several such minutes
/// in a row. Capping a likelihood ratio can only lower its expectation, so the e-process stays
/// valid (docs/statistics.md, "Burst guard"). Minutes with fewer events are not clipped: their
/// ratio is bounded by the few events they carry, and low traffic needs every bit of it.
pub(super) const BURST_MIN_EVENTS: f64 = 50.0;
/// ln 10: at most ×10 per bursty minute.
const BURST_CLIP_LOG: f64 = std::f64::consts::LN_10;

/// One minute's log-likelihood-ratio increment after the burst guard.
pub(super) fn burst_guarded(increment: f64, events: f64) -> f64 {
    if events >= BURST_MIN_EVENTS {
        increment.min(BURST_CLIP_LOG)
    } else {
        increment
    }
}

//! The timeline behind the charts, read from the audit log: the new version's traffic
//! share over time (live and intended), per-version 5xx and slow-request rates from each
//! tick's evidence, p95 breaches, source failures, and the decision points.

use crate::observe::LiveDeployment;
use crate::policy::Breach;
use crate::rollout::{AuditEvent, EventKind, Phase};
use crate::status::RolloutView;
use crate::time::{Timestamp, MINUTE_MS};

use super::html::{clock, count, pct, rate};
use super::words::{event_name, event_tone};

/// One value at one instant, with a tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub at: Timestamp,
    pub value: f64,
    pub note: String,
}

/// A decision point (any event but ticks and split confirmations), numbered in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub number: usize,
    pub at: Timestamp,
    /// `ok`, `warn`, `bad`, `info`.
    pub tone: &'static str,
    pub name: String,
    pub summary: String,
}

/// Something the charts should flag at an instant: a failed source, a failed probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub at: Timestamp,
    pub tone: &'static str,
    pub text: String,
}

/// Everything the charts draw, over `[from, to]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub from: Timestamp,
    pub to: Timestamp,
    /// New version's confirmed share, in percent (a step function).
    pub live: Vec<Point>,
    /// New version's share the gate asked for, in percent (a step function).
    pub intended: Vec<Point>,
    /// 5xx rate (fraction) of each version over the trailing window, at ticks with fresh
    /// minutes.
    pub errors_new: Vec<Point>,
    pub errors_old: Vec<Point>,
    /// Share of requests slower than the latency ceiling, per version (same ticks).
    pub slow_new: Vec<Point>,
    pub slow_old: Vec<Point>,
    /// Each version's p95 (ms) over the tick's trailing window.
    pub p95_new: Vec<Point>,
    pub p95_old: Vec<Point>,
    /// New version's share of requests over the p95 ceiling where the ceiling's test
    /// reported it over, with the share it was tested against (5%).
    pub p95_breaches: Vec<(Point, f64)>,
    pub notes: Vec<Note>,
    pub marks: Vec<Mark>,
}

/// The new version's share in a deployment someone else made (0 when it is not in it).
fn share_of(read: &LiveDeployment, version_id: &str) -> f64 {
    read.versions
        .iter()
        .find(|v| v.version_id.eq_ignore_ascii_case(version_id))
        .map_or(0.0, |v| v.percent)
}

fn view_share(view: &RolloutView, intended: bool) -> f64 {
    let split = if intended {
        &view.intended_split
    } else {
        &view.live_split
    };
    split
        .iter()
        .find(|v| v.version_id.eq_ignore_ascii_case(&view.version_id))
        .map_or(0.0, |v| v.percent)
}

impl Timeline {
    /// Reads `events` (any order; sorted by time here) of the rollout `view` at `now`. The
    /// time axis runs from the rollout's start to `now`, or when it is over a little past its
    /// last event (a twentieth of its length, at least a minute), so that where it ended (a
    /// rollback's or an abort's 0%, a completion's 100%) is drawn as a level and not only as
    /// a drop at the axis's edge; it is at least a minute long.
    pub fn read(view: &RolloutView, events: &[AuditEvent], now: Timestamp) -> Timeline {
        let mut sorted: Vec<&AuditEvent> = events
            .iter()
            .filter(|e| e.version_id.eq_ignore_ascii_case(&view.version_id))
            .collect();
        sorted.sort_by_key(|e| e.at);
        let first = sorted.first().map_or(view.started_at, |e| e.at);
        let last = sorted.last().map_or(view.started_at, |e| e.at);
        let from = first.min(view.started_at);
        let end = if view.terminal {
            let tail = ((last.millis() - from.millis()) / 20).max(MINUTE_MS);
            Timestamp::from_millis(last.millis() + tail)
        } else {
            now.max(last)
        };
        let to = end.max(Timestamp::from_millis(from.millis() + MINUTE_MS));
        let mut t = Timeline {
            from,
            to,
            live: Vec::new(),
            intended: Vec::new(),
            errors_new: Vec::new(),
            errors_old: Vec::new(),
            slow_new: Vec::new(),
            slow_old: Vec::new(),
            p95_new: Vec::new(),
            p95_old: Vec::new(),
            p95_breaches: Vec::new(),
            notes: Vec::new(),
            marks: Vec::new(),
        };
        for event in sorted {
            t.add(event, &view.version_id);
        }
        // No split event in the page of events we were given: show what the view knows.
        if t.live.is_empty() {
            t.live
                .push(point(from, view_share(view, false), "live share"));
        }
        if t.intended.is_empty() {
            t.intended
                .push(point(from, view_share(view, true), "intended share"));
        }
        t
    }

    fn add(&mut self, event: &AuditEvent, version_id: &str) {
        let at = event.at;
        match &event.kind {
            EventKind::Started => {
                self.live.push(point(at, 0.0, "started: 0%"));
                self.intended.push(point(at, 0.0, "started: 0%"));
            }
            EventKind::StepStarted { step, percent } => self.intended.push(point(
                at,
                *percent,
                &format!("step {} asked: {percent}%", step + 1),
            )),
            EventKind::StepLive { step, percent } => self.live.push(point(
                at,
                *percent,
                &format!("step {} live: {percent}%", step + 1),
            )),
            EventKind::RollingBack => self.intended.push(point(at, 0.0, "rolling back: 0%")),
            EventKind::RolledBack | EventKind::Aborted => {
                self.live.push(point(at, 0.0, "stable version at 100%"));
                self.intended.push(point(at, 0.0, "stable version at 100%"));
            }
            EventKind::Drifted | EventKind::Superseded => {
                if let Phase::Drifted { observed, .. } | Phase::Superseded { observed } =
                    &event.phase
                {
                    let percent = share_of(observed, version_id);
                    let note = format!("set by someone else: {percent}%");
                    self.live.push(point(at, percent, &note));
                    self.intended.push(point(at, percent, &note));
                }
            }
            EventKind::Tick => self.add_tick(event),
            _ => {}
        }
        if !matches!(event.kind, EventKind::Tick | EventKind::StepLive { .. }) {
            self.marks.push(Mark {
                number: self.marks.len() + 1,
                at,
                tone: event_tone(&event.kind),
                name: event_name(&event.kind),
                summary: event.summary.clone(),
            });
        }
    }

    fn add_tick(&mut self, event: &AuditEvent) {
        let at = event.at;
        let Some(facts) = &event.facts else { return };
        if let Some(gap) = &facts.counts_gap {
            if matches!(gap, crate::policy::Gap::SourceFailed { .. }) {
                self.notes.push(Note {
                    at,
                    tone: "warn",
                    text: format!("{}: {gap}", clock(at)),
                });
            }
        }
        if let Some(crate::observe::Probe::Failed { status, error }) = &facts.probe {
            let why = status.map_or_else(
                || error.clone().unwrap_or_else(|| "no answer".into()),
                |s| format!("HTTP {s}"),
            );
            self.notes.push(Note {
                at,
                tone: "bad",
                text: format!("{}: /healthz failed ({why})", clock(at)),
            });
        }
        if let Some(Breach::Over(reason)) = &facts.latency {
            let note = format!("{}: {}", clock(at), reason.detail);
            self.p95_breaches
                .push((point(at, reason.observed, &note), reason.limit));
        }
        if let Some(p95) = &facts.p95_ms {
            for (version, value, series) in [
                ("new", p95.new, &mut self.p95_new),
                ("old", p95.old, &mut self.p95_old),
            ] {
                if let Some(ms) = value.filter(|v| v.is_finite()) {
                    series.push(point(
                        at,
                        ms,
                        &format!("{} {version}: p95 {ms:.0} ms", clock(at)),
                    ));
                }
            }
        }
        let Some(a) = &event.assessment else { return };
        if facts.minutes_counted == 0 {
            return;
        }
        let w = &a.window;
        for (version, totals, errors, slow) in [
            ("new", &w.new, &mut self.errors_new, &mut self.slow_new),
            ("old", &w.old, &mut self.errors_old, &mut self.slow_old),
        ] {
            if totals.requests <= 0.0 {
                continue;
            }
            errors.push(point(
                at,
                totals.errors / totals.requests,
                &format!(
                    "{} {version}: 5xx {} ({} of {})",
                    clock(at),
                    rate(totals.errors, totals.requests),
                    count(totals.errors),
                    count(totals.requests)
                ),
            ));
            slow.push(point(
                at,
                totals.slow / totals.requests,
                &format!(
                    "{} {version}: slow {} ({} of {})",
                    clock(at),
                    pct(totals.slow / totals.requests),
                    count(totals.slow),
                    count(totals.requests)
                ),
            ));
        }
    }
}

fn point(at: Timestamp, value: f64, note: &str) -> Point {
    Point {
        at,
        value,
        note: note.to_string(),
    }
}

//! Queue depth watched outside rollouts: an incident opens after `consecutive` breaching
//! minutes, alerts Slack once, reminds after a quiet time while it lasts, and says when it
//! is over. Missing data neither opens nor closes an incident.

use crate::observe::QueueMetrics;
use crate::policy::QueueThresholds;
use crate::time::{Timestamp, MINUTE_MS};
use serde::{Deserialize, Serialize};

/// Default minutes between reminders while an incident lasts.
pub const DEFAULT_REMINDER_MINUTES: u32 = 60;

/// An open incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub since: Timestamp,
    pub last_alert: Timestamp,
    pub peak_depth: f64,
}

/// The watcher's memory (kept by the registry Durable Object).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueWatch {
    /// Consecutive breaching minutes seen.
    pub streak: u32,
    /// Consecutive healthy minutes seen during an incident.
    pub calm: u32,
    pub incident: Option<Incident>,
    /// The last minute judged (a tick twice judges once).
    pub last_minute: Option<Timestamp>,
}

/// What to tell Slack.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
pub enum QueueAlert {
    /// A new incident.
    Opened {
        depth: f64,
        retries_per_minute: f64,
        limit: f64,
    },
    /// Still breaching after the quiet time.
    Reminder {
        since: Timestamp,
        depth: f64,
        peak_depth: f64,
    },
    /// Back under the limits for `consecutive` minutes.
    Resolved {
        since: Timestamp,
        minutes: i64,
        peak_depth: f64,
    },
}

impl QueueAlert {
    /// One line for Slack.
    pub fn headline(&self) -> String {
        match self {
            QueueAlert::Opened { depth, retries_per_minute, limit } => format!(
                "Queue backlog {depth:.0} messages (limit {limit:.0}), {retries_per_minute:.0} retries/min"
            ),
            QueueAlert::Reminder { since, depth, peak_depth } => format!(
                "Queue backlog still high: {depth:.0} messages (peak {peak_depth:.0}) since {since}"
            ),
            QueueAlert::Resolved { minutes, peak_depth, .. } => format!(
                "Queue backlog back under the limit after {minutes} min (peak {peak_depth:.0})"
            ),
        }
    }
}

impl QueueWatch {
    /// Judges one minute's metrics (`None`: no data this minute).
    pub fn observe(
        &mut self,
        metrics: Option<QueueMetrics>,
        limits: &QueueThresholds,
        reminder_minutes: u32,
        now: Timestamp,
    ) -> Option<QueueAlert> {
        let minute = now.floor_minute();
        if self.last_minute.is_some_and(|last| minute <= last) {
            return None;
        }
        self.last_minute = Some(minute);
        let m = metrics?;
        let breaching =
            m.depth > limits.max_depth || m.retries_per_minute > limits.max_retries_per_minute;
        let needed = limits.consecutive.max(1);
        if breaching {
            self.streak += 1;
            self.calm = 0;
        } else {
            self.streak = 0;
            self.calm += 1;
        }
        match &mut self.incident {
            None if self.streak >= needed => {
                self.incident = Some(Incident {
                    since: now,
                    last_alert: now,
                    peak_depth: m.depth,
                });
                Some(QueueAlert::Opened {
                    depth: m.depth,
                    retries_per_minute: m.retries_per_minute,
                    limit: limits.max_depth,
                })
            }
            None => None,
            Some(incident) => {
                incident.peak_depth = incident.peak_depth.max(m.depth);
                if self.calm >= needed {
                    let resolved = QueueAlert::Resolved {
                        since: incident.since,
                        minutes: now.millis_since(incident.since) / MINUTE_MS,
                        peak_depth: incident.peak_depth,
                    };
                    self.incident = None;
                    return Some(resolved);
                }
                let quiet = now.millis_since(incident.last_alert) / MINUTE_MS;
                if breaching && quiet >= i64::from(reminder_minutes) {
                    incident.last_alert = now;
                    return Some(QueueAlert::Reminder {
                        since: incident.since,
                        depth: m.depth,
                        peak_depth: incident.peak_depth,
                    });
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_773_600_000;

    fn limits() -> QueueThresholds {
        QueueThresholds {
            max_depth: 1_000.0,
            max_retries_per_minute: 100.0,
            consecutive: 3,
        }
    }

    fn depth(d: f64) -> Option<QueueMetrics> {
        Some(QueueMetrics {
            depth: d,
            retries_per_minute: 0.0,
        })
    }

    /// Feeds one value per minute and returns the alerts' kinds by minute.
    fn run(values: &[Option<QueueMetrics>], reminder: u32) -> Vec<(usize, &'static str)> {
        let mut watch = QueueWatch::default();
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let now = Timestamp::from_millis(T0 + i as i64 * MINUTE_MS);
            if let Some(alert) = watch.observe(*v, &limits(), reminder, now) {
                let kind = match alert {
                    QueueAlert::Opened { .. } => "opened",
                    QueueAlert::Reminder { .. } => "reminder",
                    QueueAlert::Resolved { .. } => "resolved",
                };
                out.push((i, kind));
            }
        }
        out
    }

    #[test]
    fn an_incident_alerts_once_after_consecutive_breaches_not_every_minute() {
        let values = vec![depth(5_000.0); 10];
        assert_eq!(run(&values, 60), [(2, "opened")]);
    }

    #[test]
    fn a_short_spike_is_not_an_incident() {
        let values = [depth(5_000.0), depth(5_000.0), depth(10.0), depth(5_000.0)];
        assert!(run(&values, 60).is_empty());
    }

    #[test]
    fn a_long_incident_reminds_after_the_quiet_time_then_resolves() {
        let mut values = vec![depth(5_000.0); 30];
        values.extend(vec![depth(10.0); 3]);
        assert_eq!(
            run(&values, 10),
            [
                (2, "opened"),
                (12, "reminder"),
                (22, "reminder"),
                (32, "resolved")
            ]
        );
    }

    #[test]
    fn missing_data_neither_opens_nor_closes_an_incident() {
        let mut values = vec![depth(5_000.0); 3];
        values.extend(vec![None; 5]);
        values.push(depth(5_000.0));
        assert_eq!(run(&values, 60), [(2, "opened")]);
    }

    #[test]
    fn the_same_minute_twice_is_judged_once() {
        let mut watch = QueueWatch::default();
        let now = Timestamp::from_millis(T0);
        for _ in 0..5 {
            watch.observe(depth(5_000.0), &limits(), 60, now);
        }
        assert_eq!(watch.streak, 1);
    }
}

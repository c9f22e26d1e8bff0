//! The fault classes gate-sim can inject and one run's plan of them, drawn from its seed:
//! each class is switched on for about half the seeds, at an intensity the seed also picks,
//! so the same seed always replays the same world.

use crate::sim::rng::Rng;
use serde::Serialize;

/// A kind of thing the world can do to the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    /// A Cloudflare call times out, nothing applied.
    Timeout,
    /// Cloudflare answers 5xx.
    ServerError,
    /// Cloudflare answers 429 with `Retry-After`.
    RateLimited,
    /// A deployment write is applied and its answer lost.
    WriteAnswerLost,
    /// The deployments list does not show this minute's write yet.
    StaleRead,
    /// Slack answers 503 for hours.
    SlackDown,
    /// Slack accepts a post and its answer is lost.
    SlackAnswerLost,
    /// A storage write fails.
    StorageFailure,
    /// The object dies between two awaits (or right after an effect, before its answer).
    Eviction,
    /// A cron tick arrives a minute late.
    CronLate,
    /// A cron tick arrives twice.
    CronTwice,
    /// Two cron ticks arrive out of order.
    CronOutOfOrder,
    /// A cron tick never arrives.
    CronSkipped,
    /// An operator command arrives in the same minute as a tick.
    OperatorRace,
    /// A human deploys by hand.
    ManualDeploy,
    /// Analytics Engine rows arrive minutes late.
    AnalyticsLate,
    /// Analytics Engine answers with some rows missing.
    AnalyticsPartial,
    /// The Analytics Engine query fails.
    AnalyticsFailure,
    /// A secret changes mid-rollout (`wrangler versions secret put`): Cloudflare refuses
    /// to move traffic back to the older version unless forced (code 10220).
    SecretChanged,
}

impl FaultClass {
    pub const ALL: [FaultClass; 19] = [
        FaultClass::Timeout,
        FaultClass::ServerError,
        FaultClass::RateLimited,
        FaultClass::WriteAnswerLost,
        FaultClass::StaleRead,
        FaultClass::SlackDown,
        FaultClass::SlackAnswerLost,
        FaultClass::StorageFailure,
        FaultClass::Eviction,
        FaultClass::CronLate,
        FaultClass::CronTwice,
        FaultClass::CronOutOfOrder,
        FaultClass::CronSkipped,
        FaultClass::OperatorRace,
        FaultClass::ManualDeploy,
        FaultClass::AnalyticsLate,
        FaultClass::AnalyticsPartial,
        FaultClass::AnalyticsFailure,
        FaultClass::SecretChanged,
    ];
}

/// One run's faults: probabilities per call (or per minute for the cron and operator
/// classes), and the windows of the long-lasting ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FaultPlan {
    pub timeout: f64,
    pub server_error: f64,
    pub rate_limited: f64,
    pub write_answer_lost: f64,
    pub stale_read: f64,
    /// World minutes `[from, to)` in which Slack answers 503.
    pub slack_down: Option<(i64, i64)>,
    pub slack_answer_lost: f64,
    pub storage_failure: f64,
    /// Chance that an object call dies at one of its await points.
    pub eviction: f64,
    pub cron_late: f64,
    pub cron_twice: f64,
    pub cron_out_of_order: f64,
    pub cron_skipped: f64,
    /// Chance per minute of an operator command.
    pub operator: f64,
    /// The minute a human deploys by hand.
    pub manual_deploy_minute: Option<i64>,
    /// Minutes before a minute's rows are visible (1 is normal ingestion).
    pub analytics_lag_minutes: i64,
    pub analytics_partial: f64,
    pub analytics_failure: f64,
    /// The minute a secret changes.
    pub secret_change_minute: Option<i64>,
    /// The gate's `ROLLBACK_WHEN_SECRETS_CHANGED` is `pause` (else the default, `force`).
    pub pause_refused_rollbacks: bool,
}

impl FaultPlan {
    /// No faults at all: the gate's happy path.
    pub fn calm() -> Self {
        FaultPlan {
            analytics_lag_minutes: 1,
            ..FaultPlan::default()
        }
    }

    /// The plan of seed `seed`: each class on with probability one half, at an intensity
    /// drawn from its range. `only` restricts the classes that may be switched on.
    pub fn draw(seed: u64, only: Option<&[FaultClass]>) -> Self {
        let mut rng = Rng::derive(seed, &[0x0050_4c41_4e00]);
        let mut plan = FaultPlan::calm();
        for class in FaultClass::ALL {
            // A human's deploy ends most rollouts it touches (drift or superseded), so it
            // is rarer, to leave the other classes runs that go the distance.
            let share = if class == FaultClass::ManualDeploy {
                0.15
            } else {
                0.5
            };
            let on = rng.uniform() < share && only.is_none_or(|o| o.contains(&class));
            let level = rng.uniform();
            if !on {
                continue;
            }
            let between = |lo: f64, hi: f64| lo + (hi - lo) * level;
            match class {
                FaultClass::Timeout => plan.timeout = between(0.01, 0.15),
                FaultClass::ServerError => plan.server_error = between(0.01, 0.15),
                FaultClass::RateLimited => plan.rate_limited = between(0.005, 0.05),
                FaultClass::WriteAnswerLost => plan.write_answer_lost = between(0.1, 0.5),
                FaultClass::StaleRead => plan.stale_read = between(0.2, 0.8),
                FaultClass::SlackDown => {
                    let from = (level * 40.0) as i64;
                    plan.slack_down = Some((from, from + 60 + (level * 180.0) as i64));
                }
                FaultClass::SlackAnswerLost => plan.slack_answer_lost = between(0.05, 0.3),
                FaultClass::StorageFailure => plan.storage_failure = between(0.01, 0.08),
                FaultClass::Eviction => plan.eviction = between(0.05, 0.3),
                FaultClass::CronLate => plan.cron_late = between(0.02, 0.2),
                FaultClass::CronTwice => plan.cron_twice = between(0.02, 0.2),
                FaultClass::CronOutOfOrder => plan.cron_out_of_order = between(0.02, 0.2),
                FaultClass::CronSkipped => plan.cron_skipped = between(0.02, 0.2),
                FaultClass::OperatorRace => plan.operator = between(0.005, 0.03),
                FaultClass::ManualDeploy => {
                    plan.manual_deploy_minute = Some(1 + (level * 45.0) as i64)
                }
                FaultClass::AnalyticsLate => plan.analytics_lag_minutes = 2 + (level * 4.0) as i64,
                FaultClass::AnalyticsPartial => plan.analytics_partial = between(0.02, 0.2),
                FaultClass::AnalyticsFailure => plan.analytics_failure = between(0.02, 0.2),
                FaultClass::SecretChanged => {
                    plan.secret_change_minute = Some((level * 40.0) as i64);
                    plan.pause_refused_rollbacks = rng.uniform() < 0.5;
                }
            }
        }
        plan
    }

    /// The classes this plan switches on.
    pub fn classes(&self) -> Vec<FaultClass> {
        let on = |class: FaultClass| match class {
            FaultClass::Timeout => self.timeout > 0.0,
            FaultClass::ServerError => self.server_error > 0.0,
            FaultClass::RateLimited => self.rate_limited > 0.0,
            FaultClass::WriteAnswerLost => self.write_answer_lost > 0.0,
            FaultClass::StaleRead => self.stale_read > 0.0,
            FaultClass::SlackDown => self.slack_down.is_some(),
            FaultClass::SlackAnswerLost => self.slack_answer_lost > 0.0,
            FaultClass::StorageFailure => self.storage_failure > 0.0,
            FaultClass::Eviction => self.eviction > 0.0,
            FaultClass::CronLate => self.cron_late > 0.0,
            FaultClass::CronTwice => self.cron_twice > 0.0,
            FaultClass::CronOutOfOrder => self.cron_out_of_order > 0.0,
            FaultClass::CronSkipped => self.cron_skipped > 0.0,
            FaultClass::OperatorRace => self.operator > 0.0,
            FaultClass::ManualDeploy => self.manual_deploy_minute.is_some(),
            FaultClass::AnalyticsLate => self.analytics_lag_minutes > 1,
            FaultClass::AnalyticsPartial => self.analytics_partial > 0.0,
            FaultClass::AnalyticsFailure => self.analytics_failure > 0.0,
            FaultClass::SecretChanged => self.secret_change_minute.is_some(),
        };
        FaultClass::ALL.into_iter().filter(|c| on(*c)).collect()
    }
}

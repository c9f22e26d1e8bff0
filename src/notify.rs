//! Slack delivery as data: a rollout `Notice` rendered as a Block Kit message, and the
//! outbox that keeps every message until Slack confirms it (429 honours `Retry-After`,
//! 5xx backs off, a dead webhook stops retrying and is reported, never a crash).

use crate::clients::slack::{GateMessage, SlackMessage, SlackOutcome};
use crate::config::GateConfig;
use crate::rollout::{EventKind, Notice};
use crate::signals::Assessment;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Most messages kept; beyond it the oldest are dropped (and counted).
pub const OUTBOX_CAP: usize = 100;
/// Most messages sent per tick (Slack allows about one per second).
pub const SENDS_PER_FLUSH: usize = 5;
/// Longest back-off after repeated 5xx or network failures.
const MAX_BACKOFF_SECS: i64 = 600;

/// Renders a notice as the gate's standard Slack message; with `actions` (Slack actions
/// configured: `SLACK_SIGNING_SECRET` and `SLACK_OPERATORS`) and a rollout still running,
/// the Pause / Resume / Promote / Abort buttons follow (`slack_actions::buttons`).
pub fn render(notice: &Notice, config: &GateConfig, actions: bool) -> SlackMessage {
    let mut facts = Vec::new();
    if let Some(assessment) = &notice.assessment {
        facts = assessment_facts(assessment);
    }
    let body = notice
        .details
        .iter()
        .map(|line| crate::clients::slack::escape_mrkdwn(line))
        .collect::<Vec<_>>()
        .join("\n");
    let message = GateMessage {
        emoji: emoji(&notice.kind).into(),
        title: notice.headline.clone(),
        script: notice.script.clone(),
        environment: config.environment.clone(),
        new_version: notice.version_id.clone(),
        stable_version: Some(notice.baseline_version_id.clone()),
        git_sha: notice.git_sha.clone(),
        body,
        facts,
        status_url: config.rollout_url(&notice.script),
        dry_run: notice.dry_run,
    }
    .to_message();
    if actions && !notice.phase.is_terminal() {
        let target = crate::slack_actions::ButtonTarget {
            script: notice.script.clone(),
            version_id: notice.version_id.clone(),
            started_ms: notice.started_at.millis(),
        };
        message.block(crate::slack_actions::buttons(&target))
    } else {
        message
    }
}

fn emoji(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Started | EventKind::StepStarted { .. } | EventKind::StepLive { .. } => {
            ":arrow_forward:"
        }
        EventKind::Completed => ":white_check_mark:",
        EventKind::RollingBack | EventKind::RolledBack => ":rotating_light:",
        EventKind::PreflightFailed => ":no_entry:",
        EventKind::Drifted | EventKind::Superseded | EventKind::WriteFailed => ":warning:",
        EventKind::Paused | EventKind::PreflightUndecided => ":double_vertical_bar:",
        EventKind::Holding { .. } => ":hourglass_flowing_sand:",
        _ => ":information_source:",
    }
}

/// The numbers behind a decision as label/value lines.
fn assessment_facts(a: &Assessment) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    let w = &a.window;
    if w.new.requests > 0.0 || w.old.requests > 0.0 {
        facts.push((
            "5xx (window)".into(),
            format!(
                "new {:.0}/{:.0} ({}), old {:.0}/{:.0} ({})",
                w.new.errors,
                w.new.requests,
                percent(w.new.errors, w.new.requests),
                w.old.errors,
                w.old.requests,
                percent(w.old.errors, w.old.requests)
            ),
        ));
    }
    for (label, test) in [
        ("5xx test", &a.errors_test),
        ("slow-request test", &a.slow_test),
    ] {
        if let Some(t) = test {
            facts.push((
                label.into(),
                format!(
                    "e-value {} (rolls back at {:.0}); new {:.0}/{:.0}, old {:.0}/{:.0}; ratio upper bound {}",
                    short(t.e_value),
                    t.threshold,
                    t.new_bad,
                    t.new_total,
                    t.old_bad,
                    t.old_total,
                    short(t.upper_bound)
                ),
            ));
        }
    }
    facts
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}%", 100.0 * part / whole)
    } else {
        "n/a".into()
    }
}

fn short(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// One message waiting for Slack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: u64,
    pub created_at: Timestamp,
    /// Not sent before this time (429 `Retry-After`, back-off).
    pub not_before: Timestamp,
    pub attempts: u32,
    pub message: SlackMessage,
    pub last_error: Option<String>,
}

/// Messages not yet confirmed by Slack. Lives in the rollout's Durable Object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    next_id: u64,
    pub items: Vec<OutboxItem>,
    /// Set when Slack said the webhook is gone (403/404/410): nothing is sent until the
    /// webhook changes; shown on `/healthz` and the status API.
    pub dead_webhook: Option<String>,
    pub delivered: u64,
    /// Dropped: refused by Slack as invalid, or pushed out by `OUTBOX_CAP`.
    pub dropped: u64,
    /// Slack's code for the last message it refused as invalid.
    pub last_rejection: Option<String>,
}

impl Outbox {
    /// Queues a message for sending as soon as possible.
    pub fn push(&mut self, message: SlackMessage, now: Timestamp) {
        self.next_id += 1;
        self.items.push(OutboxItem {
            id: self.next_id,
            created_at: now,
            not_before: now,
            attempts: 0,
            message,
            last_error: None,
        });
        if self.items.len() > OUTBOX_CAP {
            self.items.remove(0);
            self.dropped += 1;
        }
    }

    /// Ids of the messages to send now, oldest first (none while the webhook is dead).
    pub fn due(&self, now: Timestamp) -> Vec<u64> {
        if self.dead_webhook.is_some() {
            return Vec::new();
        }
        self.items
            .iter()
            .filter(|item| item.not_before <= now)
            .take(SENDS_PER_FLUSH)
            .map(|item| item.id)
            .collect()
    }

    /// The message with this id.
    pub fn get(&self, id: u64) -> Option<&OutboxItem> {
        self.items.iter().find(|item| item.id == id)
    }

    /// Applies Slack's answer to message `id`. Returns false when sending should stop for
    /// this flush (rate limited or webhook dead).
    pub fn record(&mut self, id: u64, outcome: &SlackOutcome, now: Timestamp) -> bool {
        let Some(index) = self.items.iter().position(|item| item.id == id) else {
            return true;
        };
        match outcome {
            SlackOutcome::Delivered => {
                self.items.remove(index);
                self.delivered += 1;
                true
            }
            SlackOutcome::RetryAfter { secs } => {
                // A 429 limits the whole webhook, not one message.
                let until = Timestamp::from_millis(now.millis() + 1_000 * (*secs).max(1) as i64);
                for item in &mut self.items {
                    item.not_before = item.not_before.max(until);
                }
                self.note_failure(index, format!("rate limited for {secs} s"));
                false
            }
            SlackOutcome::Transient { status } => {
                let item = &mut self.items[index];
                let backoff = (30_i64 << item.attempts.min(5)).min(MAX_BACKOFF_SECS);
                item.not_before = Timestamp::from_millis(now.millis() + 1_000 * backoff);
                let why = status.map_or("no answer".to_string(), |s| format!("HTTP {s}"));
                self.note_failure(index, why);
                true
            }
            SlackOutcome::DeadWebhook { code } => {
                self.dead_webhook = Some(code.clone());
                self.note_failure(index, format!("dead webhook: {code}"));
                false
            }
            SlackOutcome::Rejected { code } => {
                self.items.remove(index);
                self.dropped += 1;
                self.last_rejection = Some(code.clone());
                true
            }
        }
    }

    fn note_failure(&mut self, index: usize, why: String) {
        let item = &mut self.items[index];
        item.attempts += 1;
        item.last_error = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::slack::Block;
    use crate::rollout::Phase;

    const T0: i64 = 1_795_773_600_000;

    fn notice(phase: Phase) -> Notice {
        Notice {
            at: at(60),
            script: "mauntic-gateway".into(),
            version_id: "11111111-1111-4111-8111-111111111111".into(),
            baseline_version_id: "22222222-2222-4222-8222-222222222222".into(),
            started_at: at(0),
            git_sha: None,
            dry_run: false,
            kind: EventKind::Started,
            phase,
            headline: "Rolling out mauntic-gateway".into(),
            details: Vec::new(),
            assessment: None,
            tail_command: String::new(),
        }
    }

    fn config() -> GateConfig {
        GateConfig::from_vars(|name| match name {
            "CLOUDFLARE_ACCOUNT_ID" => Some("acc".into()),
            "TARGET_BASE_URL" => Some("https://{script}.example.workers.dev".into()),
            _ => None,
        })
        .unwrap()
    }

    fn has_buttons(message: &SlackMessage) -> bool {
        message
            .fitted()
            .blocks
            .iter()
            .any(|b| matches!(b, Block::Actions { .. }))
    }

    #[test]
    fn buttons_come_only_with_slack_actions_on_and_a_rollout_still_running() {
        let running = render(&notice(Phase::Ramping { step: 0 }), &config(), true);
        assert!(has_buttons(&running));
        assert!(!running.text.is_empty(), "the fallback text stays");
        let value = crate::slack_actions::ButtonTarget {
            script: "mauntic-gateway".into(),
            version_id: "11111111-1111-4111-8111-111111111111".into(),
            started_ms: T0,
        }
        .value();
        assert!(serde_json::to_string(&running).unwrap().contains(&value));
        assert!(!has_buttons(&render(
            &notice(Phase::Ramping { step: 0 }),
            &config(),
            false
        )));
        assert!(!has_buttons(&render(
            &notice(Phase::Completed),
            &config(),
            true
        )));
        // Without buttons the message is what it was before Slack actions existed.
        let off = render(&notice(Phase::Preflight), &config(), false);
        let on = render(&notice(Phase::Preflight), &config(), true);
        assert_eq!(off.blocks[..], on.blocks[..on.blocks.len() - 1]);
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(T0 + secs * 1_000)
    }

    fn outbox_with(n: usize) -> Outbox {
        let mut outbox = Outbox::default();
        for i in 0..n {
            outbox.push(SlackMessage::new(format!("message {i}")), at(0));
        }
        outbox
    }

    #[test]
    fn delivered_messages_leave_the_outbox() {
        let mut outbox = outbox_with(2);
        let ids = outbox.due(at(0));
        assert_eq!(ids, [1, 2]);
        assert!(outbox.record(1, &SlackOutcome::Delivered, at(0)));
        assert_eq!(outbox.items.len(), 1);
        assert_eq!(outbox.delivered, 1);
    }

    #[test]
    fn a_429_holds_every_message_until_retry_after() {
        let mut outbox = outbox_with(3);
        assert!(!outbox.record(1, &SlackOutcome::RetryAfter { secs: 30 }, at(0)));
        assert!(outbox.due(at(29)).is_empty());
        assert_eq!(outbox.due(at(30)), [1, 2, 3]);
        assert_eq!(outbox.get(1).unwrap().attempts, 1);
    }

    #[test]
    fn server_errors_back_off_and_keep_the_message() {
        let mut outbox = outbox_with(1);
        outbox.record(1, &SlackOutcome::Transient { status: Some(500) }, at(0));
        assert!(outbox.due(at(29)).is_empty());
        assert_eq!(outbox.due(at(30)), [1]);
        outbox.record(1, &SlackOutcome::Transient { status: None }, at(30));
        assert!(outbox.due(at(89)).is_empty(), "second failure waits 60 s");
        assert_eq!(
            outbox.get(1).unwrap().last_error.as_deref(),
            Some("no answer")
        );
    }

    #[test]
    fn a_dead_webhook_stops_sending_and_is_reported() {
        let mut outbox = outbox_with(2);
        let dead = SlackOutcome::DeadWebhook {
            code: "channel_is_archived".into(),
        };
        assert!(!outbox.record(1, &dead, at(0)));
        assert_eq!(outbox.dead_webhook.as_deref(), Some("channel_is_archived"));
        assert!(outbox.due(at(3_600)).is_empty());
        assert_eq!(outbox.items.len(), 2, "messages are kept, not lost");
    }

    #[test]
    fn rejected_messages_are_dropped_and_counted() {
        let mut outbox = outbox_with(1);
        outbox.record(
            1,
            &SlackOutcome::Rejected {
                code: "invalid_blocks".into(),
            },
            at(0),
        );
        assert!(outbox.items.is_empty());
        assert_eq!(outbox.dropped, 1);
    }

    #[test]
    fn the_outbox_is_bounded_and_counts_what_it_drops() {
        let outbox = outbox_with(OUTBOX_CAP + 3);
        assert_eq!(outbox.items.len(), OUTBOX_CAP);
        assert_eq!(outbox.dropped, 3);
        assert_eq!(outbox.items[0].id, 4, "the oldest go first");
    }

    #[test]
    fn at_most_a_few_messages_go_per_flush() {
        assert_eq!(outbox_with(20).due(at(0)).len(), SENDS_PER_FLUSH);
    }
}

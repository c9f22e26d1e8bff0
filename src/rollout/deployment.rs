//! What is live versus what is only intended: the last split the API confirmed, the pending
//! deployment write (kept and retried until confirmed, forced only when it moves traffic
//! back to the stable version), and how a live read is classified (our write landed,
//! unchanged, or someone else changed the deployment, cohorts included).

use super::reads::StepRead;
use crate::observe::{LiveDeployment, VersionShare};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Prefix of every `workers/message` annotation the gate writes (how a read is told apart
/// from a human's change).
pub const MESSAGE_PREFIX: &str = "rollout-gate:";

/// `workers/message` was truncated at 100 bytes by older SDKs (platform reference §1).
const MESSAGE_MAX_BYTES: usize = 100;

/// Minutes to wait for an outcome before re-sending a write (the shell may have crashed).
const OUTCOME_TIMEOUT_MINUTES: i64 = 2;

/// A 429 without `Retry-After`: the API blocks all calls for 5 minutes (reference §0.16).
const DEFAULT_RATE_LIMIT_SECS: u32 = 300;

/// Longest backoff between retries of a failing write, in minutes.
const MAX_BACKOFF_MINUTES: i64 = 8;

/// Minutes between re-sends of a write that was refused (it waits for a human, but a
/// rollback keeps asking).
const REFUSED_RETRY_MINUTES: i64 = 5;

/// What the gate does when Cloudflare refuses to move traffic back to the stable version
/// because secrets changed since that version was deployed (code 10220), which only
/// `?force=true` gets past. Forcing brings back the secret values the stable version was
/// deployed with (a rotated credential returns), so it is the operator's choice
/// (`ROLLBACK_WHEN_SECRETS_CHANGED`). A step toward the new version is never forced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenSecretsChanged {
    /// Re-send the rollback with force, as wrangler's `rollback` does once a human confirms
    /// (cloudflare/workers-sdk `packages/wrangler/src/versions/api.ts`): restoring the
    /// known-good version is the gate's job.
    #[default]
    Force,
    /// Do not force: hold the rollback, alert Slack, and keep asking without force until a
    /// human rolls back by hand or the setting changes.
    Pause,
}

impl WhenSecretsChanged {
    /// The `[vars]` name of the setting.
    pub const VAR: &'static str = "ROLLBACK_WHEN_SECRETS_CHANGED";

    /// Reads the setting's value (`force` or `pause`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "force" => Some(WhenSecretsChanged::Force),
            "pause" => Some(WhenSecretsChanged::Pause),
            _ => None,
        }
    }

    /// The value as written in `[vars]`.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenSecretsChanged::Force => "force",
            WhenSecretsChanged::Pause => "pause",
        }
    }
}

/// The deployment as the gate knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// The last split the API confirmed (by a write's outcome or a read).
    pub live: Vec<VersionShare>,
    /// The split the current phase wants.
    pub intended: Vec<VersionShare>,
    /// A write of `intended` not yet confirmed. Invariant: its split equals `intended`.
    pub pending: Option<PendingWrite>,
    /// Splits this rollout has asked for (a late read of one of ours is not drift).
    pub own: Vec<Vec<VersionShare>>,
    /// Id for the next write.
    pub next_write: u64,
    /// Whether the step being applied read the live deployment (set and cleared by `step`;
    /// never stored): a write goes out only after a successful one (`reads::send`).
    #[serde(skip)]
    pub(super) step_read: StepRead,
}

/// A deployment write in flight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingWrite {
    /// Id echoed in `SetDeployment` and its outcome; stale outcomes are ignored.
    pub write: u64,
    /// The full split to create.
    pub split: Vec<VersionShare>,
    /// The `workers/message` annotation.
    pub message: String,
    /// When the write was first asked for.
    pub first_attempt_at: Timestamp,
    /// Attempts so far.
    pub attempts: u32,
    /// When to send it again if still unconfirmed.
    pub next_attempt_at: Timestamp,
    /// The last failure, for reports.
    pub last_failure: Option<WriteFailure>,
    /// Send with `?force=true`. Only ever set on a write that moves traffic back to the
    /// stable version alone (see [`DeploymentState::on_secrets_changed`]).
    pub force: bool,
    /// The secrets Cloudflare named when it refused this write until forced (code 10220);
    /// `None` until it did (the refusal is announced once per write).
    pub changed_secrets: Option<Vec<String>>,
}

/// The shell's report of a failed `POST .../deployments`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteFailure {
    /// HTTP status, `None` for a transport error.
    pub status: Option<u16>,
    /// `Retry-After` in seconds, when given.
    pub retry_after_secs: Option<u32>,
    /// The API's error message.
    pub message: String,
    /// The API refused the credential (401/403, or a 400 with code 6003/6111 for a
    /// malformed token): resumable once the token is fixed.
    pub credentials: bool,
}

/// What a write outcome means for the rollout.
#[derive(Clone, Debug, PartialEq)]
pub enum OutcomeEffect {
    /// Not the pending write (late or duplicate): nothing to do.
    Ignored,
    /// The split is live.
    Confirmed,
    /// Transient failure: retry at the given time.
    Retry { at: Timestamp },
    /// The API refused (auth or request): retrying will not help without a human.
    Refused { resumable: bool },
}

/// Cloudflare's refusal of a write until forced (code 10220), as the shell reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct UntilForced {
    /// The failure, for reports.
    pub failure: WriteFailure,
    /// The secret names Cloudflare gave.
    pub secrets: Vec<String>,
    /// The refused request was already sent with `?force=true`.
    pub sent_forced: bool,
}

/// What a refusal until forced (code 10220) means for the pending write.
#[derive(Clone, Debug, PartialEq)]
pub enum ForceEffect {
    /// Not the pending write (late or duplicate): nothing to do.
    Ignored,
    /// A write back to the stable version, and the setting says force: send this again now,
    /// with force (it was not forced before, so this happens once per write).
    Forced { write: PendingWrite },
    /// A write back to the stable version, and the setting says pause: not forced; asked
    /// again without force at `retry_at`. `first` says whether this write was already held.
    Held { first: bool, retry_at: Timestamp },
    /// A step toward the new version (never forced), or a forced write refused again.
    Refused,
}

/// How a live read compares with what the gate knows.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadEffect {
    /// The pending write is live.
    Confirmed,
    /// Matches the live split.
    Unchanged,
    /// A late view of an earlier write of ours: not evidence of anything.
    Stale,
    /// Someone else changed the split; our version still serves.
    Drifted,
    /// Someone else changed the split and our version no longer serves.
    Superseded,
}

impl DeploymentState {
    /// Starts from the stable version at 100% (what was live when the hook arrived).
    pub fn new(baseline_version_id: &str) -> Self {
        let live = vec![share(baseline_version_id, 100.0)];
        DeploymentState {
            intended: live.clone(),
            live,
            pending: None,
            own: Vec::new(),
            next_write: 1,
            step_read: StepRead::None,
        }
    }

    /// Intends `split`. Outside dry-run this makes it the pending write and returns it to
    /// send; in dry-run nothing is written and `None` is returned.
    pub fn request(
        &mut self,
        split: Vec<VersionShare>,
        message: String,
        now: Timestamp,
        dry_run: bool,
    ) -> Option<PendingWrite> {
        self.intended = split.clone();
        if dry_run {
            self.pending = None;
            return None;
        }
        if !self.own.iter().any(|s| same_split(s, &split)) {
            self.own.push(split.clone());
        }
        let write = PendingWrite {
            write: self.next_write,
            split,
            message: truncate(message, MESSAGE_MAX_BYTES),
            first_attempt_at: now,
            attempts: 1,
            next_attempt_at: now.plus_minutes(OUTCOME_TIMEOUT_MINUTES),
            last_failure: None,
            force: false,
            changed_secrets: None,
        };
        self.next_write += 1;
        self.pending = Some(write.clone());
        Some(write)
    }

    /// The pending write again, if it is due by `now` (counts the attempt).
    pub fn retry_due(&mut self, now: Timestamp) -> Option<PendingWrite> {
        let pending = self.pending.as_mut()?;
        if now < pending.next_attempt_at {
            return None;
        }
        pending.attempts += 1;
        pending.next_attempt_at = now.plus_minutes(OUTCOME_TIMEOUT_MINUTES);
        Some(pending.clone())
    }

    /// The pending write waits for a read of the live deployment before it is sent: the
    /// attempt `retry_due` (or `request`) counted is not made, and it is due again at `now`.
    pub fn hold_for_read(&mut self, now: Timestamp) {
        if let Some(pending) = self.pending.as_mut() {
            pending.attempts = pending.attempts.saturating_sub(1);
            pending.next_attempt_at = now;
        }
    }

    /// Makes a pending write due now (after a resume).
    pub fn make_due(&mut self, now: Timestamp) {
        if let Some(pending) = self.pending.as_mut() {
            pending.next_attempt_at = now;
        }
    }

    /// Applies the outcome of write `write`.
    pub fn on_confirmed(&mut self, write: u64) -> OutcomeEffect {
        match self.pending.take() {
            Some(p) if p.write == write => {
                self.live = p.split;
                OutcomeEffect::Confirmed
            }
            other => {
                self.pending = other;
                OutcomeEffect::Ignored
            }
        }
    }

    /// Applies a failure of write `write`: 429 waits `Retry-After` (default 5 min); 5xx and
    /// transport errors back off 1, 2, 4, 8 min; 401/403 and other credential refusals are
    /// refused but resumable (fix the token, then resume); other 4xx are refused for good.
    pub fn on_failed(
        &mut self,
        write: u64,
        failure: WriteFailure,
        now: Timestamp,
    ) -> OutcomeEffect {
        let Some(pending) = self.pending.as_mut().filter(|p| p.write == write) else {
            return OutcomeEffect::Ignored;
        };
        let effect = match failure.status {
            Some(429) => {
                let secs = failure.retry_after_secs.unwrap_or(DEFAULT_RATE_LIMIT_SECS);
                OutcomeEffect::Retry {
                    at: Timestamp::from_millis(now.millis() + i64::from(secs) * 1000),
                }
            }
            Some(401 | 403) => OutcomeEffect::Refused { resumable: true },
            _ if failure.credentials => OutcomeEffect::Refused { resumable: true },
            Some(status) if (400..500).contains(&status) => {
                OutcomeEffect::Refused { resumable: false }
            }
            _ => {
                let exp = pending.attempts.saturating_sub(1).min(3);
                let backoff = (1i64 << exp).min(MAX_BACKOFF_MINUTES);
                OutcomeEffect::Retry {
                    at: now.plus_minutes(backoff),
                }
            }
        };
        pending.next_attempt_at = match effect {
            OutcomeEffect::Retry { at } => at,
            // Refused writes wait for a human; a rollback keeps trying every 5 minutes.
            _ => now.plus_minutes(REFUSED_RETRY_MINUTES),
        };
        pending.last_failure = Some(failure);
        effect
    }

    /// Applies Cloudflare's refusal of write `write` until forced (code 10220: secrets
    /// changed since a version in the split was deployed). The decision: only a write that
    /// moves traffic back to `stable_version` alone is ever forced, and only when `setting`
    /// says so; a step toward the new version is refused (never forced), and so is a write
    /// refused even with force. A late refusal of the unforced send of a write already
    /// forced is ignored.
    pub fn on_secrets_changed(
        &mut self,
        write: u64,
        refusal: UntilForced,
        stable_version: &str,
        setting: WhenSecretsChanged,
        now: Timestamp,
    ) -> ForceEffect {
        let Some(pending) = self.pending.as_mut().filter(|p| p.write == write) else {
            return ForceEffect::Ignored;
        };
        if pending.force && !refusal.sent_forced {
            return ForceEffect::Ignored;
        }
        let first = pending.changed_secrets.is_none();
        pending.changed_secrets = Some(refusal.secrets);
        pending.last_failure = Some(refusal.failure);
        let backward = moves_back_to(&pending.split, stable_version);
        if !backward || pending.force {
            pending.next_attempt_at = now.plus_minutes(REFUSED_RETRY_MINUTES);
            return ForceEffect::Refused;
        }
        match setting {
            WhenSecretsChanged::Force => {
                pending.force = true;
                pending.attempts += 1;
                pending.next_attempt_at = now.plus_minutes(OUTCOME_TIMEOUT_MINUTES);
                ForceEffect::Forced {
                    write: pending.clone(),
                }
            }
            WhenSecretsChanged::Pause => {
                let retry_at = now.plus_minutes(REFUSED_RETRY_MINUTES);
                pending.next_attempt_at = retry_at;
                ForceEffect::Held { first, retry_at }
            }
        }
    }

    /// Classifies a live read. A read matching the pending write confirms it. A read with
    /// cohorts is never ours (the gate writes none): it is drift, or supersedes us when our
    /// version serves in none of its splits.
    pub fn on_read(&mut self, read: &LiveDeployment, our_version: &str) -> ReadEffect {
        if !read.cohorts.is_empty() {
            // As below: our version still in the deployment (any split) is drift.
            let has_ours =
                |split: &[VersionShare]| split.iter().any(|v| v.version_id == our_version);
            let present =
                has_ours(&read.versions) || read.cohorts.iter().any(|c| has_ours(&c.versions));
            return if present {
                ReadEffect::Drifted
            } else {
                ReadEffect::Superseded
            };
        }
        if let Some(p) = &self.pending {
            if same_split(&p.split, &read.versions) {
                let write = p.write;
                self.on_confirmed(write);
                return ReadEffect::Confirmed;
            }
        }
        if same_split(&self.live, &read.versions) {
            return ReadEffect::Unchanged;
        }
        let ours = read
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with(MESSAGE_PREFIX));
        if ours && self.own.iter().any(|s| same_split(s, &read.versions)) {
            return ReadEffect::Stale;
        }
        if read.versions.iter().any(|v| v.version_id == our_version) {
            ReadEffect::Drifted
        } else {
            ReadEffect::Superseded
        }
    }

    /// Takes over after drift: what is observed becomes live; nothing is pending.
    pub fn adopt(&mut self, observed: &LiveDeployment) {
        self.live = observed.versions.clone();
        self.pending = None;
    }

    /// Drops the pending write (drift: make no writes).
    pub fn abandon(&mut self) {
        self.pending = None;
    }
}

/// True when `split` serves `stable_version` alone (at 100%; a 0% entry serves nobody):
/// the only kind of write the gate ever forces.
pub fn moves_back_to(split: &[VersionShare], stable_version: &str) -> bool {
    same_split(split, &[share(stable_version, 100.0)])
}

/// A `VersionShare` for `version_id` at `percent`.
pub fn share(version_id: &str, percent: f64) -> VersionShare {
    VersionShare {
        version_id: version_id.to_string(),
        percent,
    }
}

/// Same versions at the same shares (order-insensitive; shares within 0.005 points, which
/// covers the API's float rendering of two-decimal percentages).
pub fn same_split(a: &[VersionShare], b: &[VersionShare]) -> bool {
    // A version at 0% serves nothing: pre-flight deploys the new version at 0% so that
    // version overrides can reach it, and that is still "the stable version at 100%".
    let serving = |s: &[VersionShare]| -> Vec<VersionShare> {
        s.iter().filter(|v| v.percent >= 0.005).cloned().collect()
    };
    let (a, b) = (serving(a), serving(b));
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .any(|y| y.version_id == x.version_id && (y.percent - x.percent).abs() < 0.005)
        })
}

fn truncate(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000);

    fn split(new: f64) -> Vec<VersionShare> {
        vec![share("new", new), share("old", 100.0 - new)]
    }

    fn read(versions: Vec<VersionShare>, message: &str) -> LiveDeployment {
        LiveDeployment {
            versions,
            message: Some(message.to_string()),
            ..LiveDeployment::default()
        }
    }

    fn failure(status: Option<u16>, retry_after_secs: Option<u32>) -> WriteFailure {
        WriteFailure {
            status,
            retry_after_secs,
            message: "x".into(),
            credentials: false,
        }
    }

    fn rollback(d: &mut DeploymentState) -> PendingWrite {
        d.request(vec![share("old", 100.0)], "back".into(), T0, false)
            .expect("write")
    }

    fn refused(d: &mut DeploymentState, w: u64, setting: WhenSecretsChanged) -> ForceEffect {
        let sent_forced = d.pending.as_ref().is_some_and(|p| p.force);
        refused_as_sent(d, w, setting, sent_forced)
    }

    fn refused_as_sent(
        d: &mut DeploymentState,
        w: u64,
        setting: WhenSecretsChanged,
        sent_forced: bool,
    ) -> ForceEffect {
        let refusal = UntilForced {
            failure: failure(Some(400), None),
            secrets: vec!["API_KEY".to_string()],
            sent_forced,
        };
        d.on_secrets_changed(w, refusal, "old", setting, T0)
    }

    #[test]
    fn failed_write_is_classified_by_status() {
        let cases = [
            (
                Some(429),
                Some(30),
                OutcomeEffect::Retry {
                    at: Timestamp::from_millis(T0.millis() + 30_000),
                },
            ),
            (
                Some(429),
                None,
                OutcomeEffect::Retry {
                    at: T0.plus_minutes(5),
                },
            ),
            (
                Some(503),
                None,
                OutcomeEffect::Retry {
                    at: T0.plus_minutes(1),
                },
            ),
            (
                None,
                None,
                OutcomeEffect::Retry {
                    at: T0.plus_minutes(1),
                },
            ),
            (Some(403), None, OutcomeEffect::Refused { resumable: true }),
            (Some(401), None, OutcomeEffect::Refused { resumable: true }),
            (Some(400), None, OutcomeEffect::Refused { resumable: false }),
        ];
        let credentials = WriteFailure {
            credentials: true,
            ..failure(Some(400), None)
        };
        let mut d = DeploymentState::new("old");
        let w = d
            .request(split(10.0), "m".into(), T0, false)
            .expect("write");
        assert_eq!(
            d.on_failed(w.write, credentials, T0),
            OutcomeEffect::Refused { resumable: true },
            "a malformed token (HTTP 400, 6003) is fixed by a human, then resumed"
        );
        for (status, retry_after, want) in cases {
            let mut d = DeploymentState::new("old");
            let w = d
                .request(split(10.0), "m".into(), T0, false)
                .expect("write");
            let got = d.on_failed(w.write, failure(status, retry_after), T0);
            assert_eq!(got, want, "{status:?}");
            assert!(d.pending.is_some(), "stays pending");
        }
    }

    #[test]
    fn a_rollback_refused_until_forced_is_sent_again_with_force_once() {
        let mut d = DeploymentState::new("old");
        let w = rollback(&mut d);
        assert!(!w.force);
        let ForceEffect::Forced { write } = refused(&mut d, w.write, WhenSecretsChanged::Force)
        else {
            panic!("not forced");
        };
        assert_eq!(write.write, w.write, "the same write, re-sent");
        assert!(write.force);
        assert_eq!(write.changed_secrets, Some(vec!["API_KEY".to_string()]));
        let again = d.retry_due(write.next_attempt_at).expect("due");
        assert!(again.force, "a lost answer is re-sent forced too");
        assert_eq!(
            refused_as_sent(&mut d, w.write, WhenSecretsChanged::Force, false),
            ForceEffect::Ignored,
            "a late answer to the unforced send changes nothing"
        );
        assert_eq!(
            refused(&mut d, w.write, WhenSecretsChanged::Force),
            ForceEffect::Refused,
            "refused even when forced: no loop of forced re-sends"
        );
    }

    #[test]
    fn a_step_toward_the_new_version_is_never_forced() {
        for to in [10.0, 50.0, 100.0] {
            for setting in [WhenSecretsChanged::Force, WhenSecretsChanged::Pause] {
                let mut d = DeploymentState::new("old");
                let w = d.request(split(to), "m".into(), T0, false).expect("write");
                assert_eq!(refused(&mut d, w.write, setting), ForceEffect::Refused);
                let pending = d.pending.as_ref().expect("still pending");
                assert!(!pending.force, "{to}% {setting:?}");
                assert!(d.retry_due(T0.plus_minutes(60)).is_some_and(|p| !p.force));
            }
        }
    }

    #[test]
    fn the_pause_setting_holds_a_refused_rollback_without_forcing() {
        let mut d = DeploymentState::new("old");
        let w = rollback(&mut d);
        let retry_at = T0.plus_minutes(REFUSED_RETRY_MINUTES);
        assert_eq!(
            refused(&mut d, w.write, WhenSecretsChanged::Pause),
            ForceEffect::Held {
                first: true,
                retry_at
            }
        );
        assert_eq!(
            refused(&mut d, w.write, WhenSecretsChanged::Pause),
            ForceEffect::Held {
                first: false,
                retry_at
            },
            "announced once"
        );
        assert!(!d.pending.as_ref().expect("pending").force);
        assert_eq!(
            refused(&mut d, w.write + 1, WhenSecretsChanged::Force),
            ForceEffect::Ignored,
            "a stale outcome changes nothing"
        );
    }

    #[test]
    fn only_the_stable_version_alone_counts_as_moving_back() {
        assert!(moves_back_to(&[share("old", 100.0)], "old"));
        assert!(moves_back_to(
            &[share("new", 0.0), share("old", 100.0)],
            "old"
        ));
        assert!(!moves_back_to(&split(10.0), "old"));
        assert!(!moves_back_to(&[share("new", 100.0)], "old"));
        assert!(!moves_back_to(&[share("other", 100.0)], "old"));
    }

    #[test]
    fn a_read_with_cohorts_is_never_ours() {
        use crate::observe::CohortSplit;
        let mut d = DeploymentState::new("old");
        let w = d
            .request(split(10.0), format!("{MESSAGE_PREFIX} s"), T0, false)
            .expect("write");
        let cohort = |versions| CohortSplit {
            name: "beta".into(),
            versions,
        };
        let mut live = read(split(10.0), &w.message);
        live.cohorts = vec![cohort(vec![share("new", 100.0)])];
        assert_eq!(
            d.on_read(&live, "new"),
            ReadEffect::Drifted,
            "same default split as our pending write, plus cohorts"
        );
        assert!(
            d.pending.is_some(),
            "not confirmed by someone else's deployment"
        );
        let mut human = read(vec![share("old", 100.0)], "manual");
        human.cohorts = vec![cohort(vec![share("new", 50.0), share("old", 50.0)])];
        assert_eq!(
            d.on_read(&human, "new"),
            ReadEffect::Drifted,
            "our version still serves in a cohort"
        );
        human.cohorts = vec![cohort(vec![share("old", 100.0)])];
        assert_eq!(d.on_read(&human, "new"), ReadEffect::Superseded);
    }

    #[test]
    fn a_version_at_zero_percent_does_not_change_the_split() {
        let stable = [share("old", 100.0)];
        assert!(same_split(
            &stable,
            &[share("new", 0.0), share("old", 100.0)]
        ));
        assert!(!same_split(
            &stable,
            &[share("new", 1.0), share("old", 99.0)]
        ));
    }

    #[test]
    fn stale_outcomes_are_ignored() {
        let mut d = DeploymentState::new("old");
        let first = d
            .request(split(10.0), "m".into(), T0, false)
            .expect("write");
        let second = d
            .request(split(50.0), "m".into(), T0, false)
            .expect("write");
        assert_eq!(d.on_confirmed(first.write), OutcomeEffect::Ignored);
        assert_eq!(d.on_confirmed(second.write), OutcomeEffect::Confirmed);
        assert!(same_split(&d.live, &split(50.0)));
        assert_eq!(d.on_confirmed(second.write), OutcomeEffect::Ignored);
    }

    #[test]
    fn reads_are_classified() {
        let mut d = DeploymentState::new("old");
        let ours = format!("{MESSAGE_PREFIX} step 1");
        let first = d
            .request(split(10.0), ours.clone(), T0, false)
            .expect("write");
        d.on_confirmed(first.write);
        d.request(split(50.0), ours.clone(), T0, false);
        let cases = [
            (
                "pending landed",
                split(50.0),
                ours.as_str(),
                ReadEffect::Confirmed,
            ),
            (
                "unchanged",
                split(50.0),
                ours.as_str(),
                ReadEffect::Unchanged,
            ),
            (
                "late read of ours",
                split(10.0),
                ours.as_str(),
                ReadEffect::Stale,
            ),
            ("human split", split(25.0), "manual", ReadEffect::Drifted),
            (
                "human replay of ours",
                split(10.0),
                "manual",
                ReadEffect::Drifted,
            ),
            (
                "manual rollback",
                vec![share("old", 100.0)],
                "manual",
                ReadEffect::Superseded,
            ),
        ];
        for (name, versions, message, want) in cases {
            assert_eq!(d.on_read(&read(versions, message), "new"), want, "{name}");
        }
    }

    #[test]
    fn retry_is_due_only_after_the_outcome_timeout() {
        let mut d = DeploymentState::new("old");
        d.request(split(10.0), "m".into(), T0, false);
        assert_eq!(d.retry_due(T0.plus_minutes(1)), None);
        let again = d.retry_due(T0.plus_minutes(2)).expect("due");
        assert_eq!(again.attempts, 2);
        assert_eq!(
            d.retry_due(T0.plus_minutes(2)),
            None,
            "not twice in one minute"
        );
    }

    #[test]
    fn dry_run_intends_without_writing() {
        let mut d = DeploymentState::new("old");
        assert_eq!(d.request(split(10.0), "m".into(), T0, true), None);
        assert!(same_split(&d.intended, &split(10.0)));
        assert!(same_split(&d.live, &[share("old", 100.0)]));
        assert!(d.pending.is_none());
    }

    #[test]
    fn message_is_cut_to_100_bytes_on_a_char_boundary() {
        let long = "é".repeat(80);
        let cut = truncate(long, MESSAGE_MAX_BYTES);
        assert!(cut.len() <= 100 && cut.chars().all(|c| c == 'é'));
    }
}
